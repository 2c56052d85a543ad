"""The ``bvn-plan`` command line. Each subcommand has its own ``--help``.

Exit codes: 0 success, 2 bad input, 3 anatomy not understood, 4 no safe plan (or a failing
check), 5 some cases of a batch failed, 6 only plans with warnings (the recommended one carries
them), 1 internal error (a bug: one line, the traceback with --debug).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from pathlib import Path

import click
import numpy as np

from .coordinates import PATIENT_FRAMES, RAS, UNITS_TO_MM
from .errors import AnatomyError, BvnPlanError, BvnPlanWarning, NoSafePlanError, note
from .landmarks import TerminusParameters

#: The levels --level takes, in its help.
LEVEL_CHOICES = "T12, L1-L5, S1; L6 if transitional; L3-S1 treated"
#: Exit code of ``bvn-plan batch`` when some cases failed (the summary says which).
BATCH_FAILURES_EXIT_CODE = 5
#: Lesion models of ``bvn-plan lesion``: the device's ellipsoid, the Pennes bioheat models.
LESION_MODELS = ("ellipsoid", "axisymmetric", "voxel")
#: Exit code of ``bvn-plan plan`` when the recommended plan carries warnings: no plan passes every rule.
WARNED_PLAN_EXIT_CODE = 6

UNITS = click.Choice(sorted(UNITS_TO_MM))
FRAMES = click.Choice(PATIENT_FRAMES, case_sensitive=False)


def vertebra_arguments(command):
    """The MESH argument with --level (required), --trust-level, --units and --frame: one vertebra
    file, its coordinates' units and patient frame (other coordinates on the command line use the same)."""
    command = trust_level_option(command)
    command = click.option("--frame", type=FRAMES,
                           help="Patient frame of the file's coordinates (RAS or LPS), if known.")(command)
    command = click.option("--units", type=UNITS,
                           help="Units of the file's coordinates (detected from size if omitted).")(command)
    command = click.option("--level", required=True,
                           help=f"Vertebral level, e.g. L4 ({LEVEL_CHOICES}).")(command)
    return click.argument("mesh", type=click.Path(dir_okay=False))(command)


def trust_level_option(command):
    """The --trust-level flag: plan as labelled even when the shape fits another level grossly better."""
    return click.option("--trust-level", is_flag=True,
                        help="Plan the vertebra as the level given even when its shape fits another level "
                             "grossly better (default: refuse, exit 2).")(command)


def terminus_options(command):
    """The --depth-fraction and --height-fraction options that place the BVN terminus [A]."""
    defaults = TerminusParameters()
    command = click.option("--height-fraction", type=float, default=defaults.height_fraction, show_default=True,
                           help="BVN terminus height between the inferior (0) and superior (1) endplates [A].")(command)
    return click.option("--depth-fraction", type=float, default=defaults.depth_fraction, show_default=True,
                        help="BVN terminus depth, as a fraction of the AP body depth from the posterior wall [A].")(command)


def organ_options(command):
    """The --organs, --fat and --ct options: real organs from a labelmap replace the modelled
    soft-tissue zones; the fat or the CT places the skin."""
    command = click.option("--ct", "skin_ct", type=click.Path(exists=True, dir_okay=False),
                           help="CT (NIfTI, HU) of the same scan, the mesh in mm in its RAS or LPS frame: the skin "
                                "entry on the outer edge of its body (the table left out) when no --fat is given; "
                                "with or without --organs.")(command)
    command = click.option("--fat", type=click.Path(exists=True, dir_okay=False),
                           help="Subcutaneous-fat mask (NIfTI, the organ labels' grid): the skin is its outer "
                                "edge (default: subcutaneous_fat.nii.gz in an --organs folder).")(command)
    return click.option("--organs", type=click.Path(exists=True),
                        help="Organ labels of the same scan: a multilabel NIfTI with TotalSegmentator 'total' "
                             "names or a folder of its masks (aorta, inferior_vena_cava, kidney_*, iliopsoas_* "
                             "...). The mesh must be in mm in that scan's RAS or LPS frame (--frame). Without "
                             "it the soft tissue is modelled from the bone.")(command)


def _safety_zones(vertebra, landmarks, organs, fat, skin_ct):
    """The SafetyZones of ``vertebra``, with the organs of --organs/--fat placed around it and the
    skin of --ct (when given)."""
    from .errors import InputError
    from .planning.safety import SafetyZones
    from .workflow.organs import load_organs, load_skin_ct, place_vertebra

    if fat is not None and organs is None:
        raise InputError("--fat gives the skin over organ labels: give --organs too (or --ct for the skin alone)")
    if (organs or skin_ct) and vertebra.input_units != "mm":
        raise InputError(f"--organs and --ct need the mesh in mm in the scan's world; {vertebra.source} is in "
                         f"{vertebra.input_units}")
    organ_zones = None if organs is None else load_organs(organs, fat, vertebra.patient_frame)
    if organ_zones is not None:
        place_vertebra(organ_zones, vertebra)
    skin = None if skin_ct is None else load_skin_ct(skin_ct, vertebra.patient_frame)
    return SafetyZones(vertebra.mesh, landmarks, organs=organ_zones, skin=skin)


def json_option(command):
    """The --json FILE option: the command's result for machines (the console shows the summary)."""
    return click.option("--json", "json_out", type=click.Path(dir_okay=False),
                        help="Also write the result here (JSON, written whole or not at all).")(command)


#: Placement-error samples per plan that plan, case and demo draw unless told otherwise
#: (planning.robustness.PlacementErrorModel.samples).
ROBUSTNESS_SAMPLES = 500


def robustness_option(command):
    """The --robustness-samples N option: placement-error samples per plan (0 turns robustness off)."""
    return click.option("--robustness-samples", type=click.IntRange(0), default=ROBUSTNESS_SAMPLES, show_default=True,
                        help="Placement-error samples per plan for its breach probability and angle tolerance "
                             "(0: off, faster).")(command)


def _robustness(samples: int):
    """The robustness settings of ``samples`` placement-error samples per plan (None when 0)."""
    from .planning.robustness import PlacementErrorModel, RobustnessSettings

    return RobustnessSettings(PlacementErrorModel(samples=samples)) if samples else None


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, BvnPlanWarning):
        click.secho(f"warning: {message}", fg="yellow", err=True)
    else:
        click.echo(warnings.formatwarning(message, category, filename, lineno, line), err=True, nl=False)


def friendly_errors(command):
    """Typed errors -> one line and their exit code; any other exception -> exit 1 and a bug-report
    hint (the traceback only with --debug or BVN_PLAN_DEBUG=1)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        warnings.showwarning = _show_warning
        try:
            return command(*args, **kwargs)
        except BvnPlanError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("BVN_PLAN_DEBUG") or click.get_current_context().find_root().params.get("debug"):
                raise
            click.secho(f"internal error: {type(exc).__name__}: {exc}. This is a bug in bvn-plan: please report it "
                        "with the command line and input files; rerun with --debug (or BVN_PLAN_DEBUG=1) to see "
                        "the traceback", fg="red", err=True)
            sys.exit(1)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bvn-plan")
@click.option("--debug", is_flag=True, help="Show the full traceback of internal errors.")
def main(debug):
    """Plan basivertebral nerve ablation on 3D vertebra anatomy.

    A research and teaching aid, not a medical device. Units are millimetres.
    """


@main.command()
@click.argument("mesh", type=click.Path(dir_okay=False))
@click.option("--level", help=f"Vertebral level, e.g. L4 ({LEVEL_CHOICES}).")
@click.option("--units", type=UNITS, help="Units of the file's coordinates (detected from size if omitted).")
@click.option("--frame", type=FRAMES, help="Patient frame of the file's coordinates, if known.")
@json_option
@friendly_errors
def info(mesh, level, units, frame, json_out):
    """Load a vertebra mesh, check it and print what was read (size, units, repairs)."""
    from .vertebra import Vertebra

    from .console import emit

    v = Vertebra.load(mesh, level=level, units=units, frame=frame)
    m = v.mesh
    emit("info", {
        "source": v.source,
        "level": v.level,
        "patient_frame": v.patient_frame,
        "input_units": v.input_units,
        "faces": int(len(m.faces)),
        "vertices": int(len(m.vertices)),
        "watertight": bool(m.is_watertight),
        "genus": int(round(1 - m.euler_number / 2)) if m.is_watertight else None,
        "extents_mm": [round(float(x), 2) for x in m.extents],
        "volume_mm3": round(float(m.volume), 1) if m.is_watertight else None,
        "notes": v.notes,
    }, json_out)


@main.command("labelmap")
@click.argument("labelmap", type=click.Path(exists=True))
@click.option("--level", "levels", multiple=True, help="Level(s) to mesh, e.g. --level L4 --level L5 (default: every L1-L6/S1 present).")
@click.option("--scheme", type=click.Choice(["auto", "totalseg", "verse"]), default="auto", show_default=True,
              help="Label numbering when the file carries no label names.")
@click.option("--smoothing", type=click.IntRange(0), default=20, show_default=True,
              help="Windowed-sinc smoothing iterations (0 = raw marching-cubes staircase).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write <level>.ply (RAS mm) here.")
@json_option
@friendly_errors
def labelmap_command(labelmap, levels, scheme, smoothing, out_dir, json_out):
    """Mesh vertebra levels of a NIfTI labelmap (TotalSegmentator, VerSe, or a folder of masks)
    in RAS mm, check the level labelling and print a summary."""
    import os

    from .atomic import write_bytes_atomic
    from .console import emit
    from .workflow.labelmap import load_labelmap

    lm = load_labelmap(labelmap, scheme=scheme)
    wanted = list(levels) or lm.levels()
    findings = lm.plausibility(wanted)
    summary = {"source": lm.source, "affine_determinant_sign": lm.determinant_sign,
               "labelled_levels": lm.spine_levels(), "levels": {},
               "findings": [{"kind": f.kind, "levels": list(f.levels), "message": f.message} for f in findings]}
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    for level in wanted:
        v = lm.vertebra(level, smoothing=smoothing, cut_ok=True)  # exported to look at; findings say it is cut
        entry = {"source": v.source, "frame": RAS, "units": "mm", "volume_mm3": round(float(v.mesh.volume), 1),
                 "voxel_volume_mm3": round(lm.voxel_count(level) * lm.voxel_volume_mm3, 1),
                 "centroid_ras_mm": [round(float(x), 2) for x in v.mesh.center_mass],
                 "watertight": bool(v.mesh.is_watertight), "notes": v.notes}
        if out_dir:
            entry["file"] = os.path.join(out_dir, f"{v.level}.ply")
            write_bytes_atomic(entry["file"], v.mesh.export(file_type="ply"))
        summary["levels"][v.level] = entry
    emit("labelmap", summary, json_out)


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="meshes", show_default=True,
              help="Folder for <level>.ply, <level>_landmarks.json and manifest.json.")
@click.option("--level", "levels", multiple=True, help="Level to generate (repeatable); default L1-S1.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed used with --vary.")
@click.option("--osteoporotic", is_flag=True, help="Osteoporotic bone metadata (thinner cortex, lower BV/TV).")
@click.option("--vary", is_flag=True, help="Random anatomy within published SDs (clipped to 2 SD).")
@json_option
@friendly_errors
def synth(out_dir, levels, seed, osteoporotic, vary, json_out):
    """Generate synthetic vertebrae with ground-truth landmarks (mm, each level in its own vertebra
    frame: +x right, +y anterior, +z superior, origin at the body centre).

    With no options this regenerates the bundled meshes/ byte-for-byte."""
    from .atomic import write_json_atomic
    from .levels import LEVELS
    from .synthetic import write_spine

    manifest = write_spine(out_dir, levels or LEVELS, seed=seed, vary=vary, osteoporotic=osteoporotic)
    for level, entry in manifest["levels"].items():
        click.echo(f"{level}: {entry['faces']} faces -> {out_dir}/{entry['files']['mesh']}")
    click.echo(f"manifest: {out_dir}/manifest.json")
    if json_out:
        write_json_atomic(json_out, manifest)
        click.echo(f"wrote {json_out}")


def _bundled_meshes() -> Path | None:
    """The bundled synthetic spine (meshes/ beside the package, or in the current folder)."""
    for folder in (Path(__file__).resolve().parents[1] / "meshes", Path.cwd() / "meshes"):
        if (folder / "manifest.json").is_file():
            return folder
    return None


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="bvn_demo", show_default=True,
              help="Folder for the outputs (one subfolder per level).")
@click.option("--level", "levels", multiple=True, help="Level(s) to plan (repeatable); default L3-S1.")
@click.option("--images/--no-images", default=True, show_default=True,
              help="Put the 3D scenes and the AP, lateral and en-face fluoroscopy of each plan in the report.")
@robustness_option
@json_option
@friendly_errors
def demo(out_dir, levels, images, robustness_samples, json_out):
    """The main job on the toolkit's own synthetic spine: for each level L3-S1, find the anatomy
    (and compare it with the generator's ground truth), plan every approach and side, check them,
    and write plan.json and summary.txt per level and one HTML report with pictures."""
    import time

    from .anatomy.find import find_anatomy
    from .atomic import write_json_atomic
    from .landmarks import Landmarks
    from .levels import TREATABLE_LEVELS, normalise_level
    from .planning.plan_file import write_plan
    from .planning.planner import plan_level
    from .planning.settings import PlannerSettings
    from .synthetic import write_default_spine
    from .workflow.case import LevelOutcome
    from .workflow.report import ReportContext, write_report
    from .vertebra import Vertebra

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meshes = _bundled_meshes()
    if meshes is None:
        meshes = out / "meshes"
        click.echo(f"bundled meshes not found: regenerating the default synthetic spine in {meshes}")
        meshes.mkdir(exist_ok=True)
        write_default_spine(meshes)
    click.echo(f"bvn-plan demo: synthetic spine from {meshes} (vertebra frame, RAS-like, mm)")
    click.echo("research and teaching aid, not a medical device\n")
    rows, planned = [], []
    for level in [normalise_level(x) for x in (levels or TREATABLE_LEVELS)]:
        started = time.perf_counter()
        vertebra = Vertebra.load(meshes / f"{level}.ply", level=level, frame=RAS)
        truth = Landmarks.from_dict(json.loads((meshes / f"{level}_landmarks.json").read_text()))
        found = find_anatomy(vertebra)
        terminus_error = float(np.linalg.norm(found.bvn_terminus - truth.bvn_terminus))
        level_plan = plan_level(vertebra, found, settings=PlannerSettings(robustness=_robustness(robustness_samples)))
        written = write_plan(level_plan, vertebra, out / level)
        planned.append(LevelOutcome.planned(vertebra, level_plan))
        best = level_plan.recommendation
        rows.append({"level": level, "seconds": round(time.perf_counter() - started, 1),
                     "terminus_error_mm": round(terminus_error, 3), "plan": str(written["plan"]),
                     "recommendation": None if best is None else {"approach": best.approach, "side": best.side,
                                                                  "verdict": best.verdict}})
        click.echo(f"{level}: terminus found {terminus_error:.2f} mm from the ground truth; "
                   + (f"recommended {best.side} {best.approach}, verdict {best.verdict.upper()}, tip "
                      f"{best.tip_to_terminus_mm:.1f} mm from the terminus, target zone {100 * best.zone_coverage:.0f} % "
                      f"covered, smallest clearance beyond its margin {best.min_slack_mm:.1f} mm" + _fragility(best)
                      + _probes(level_plan.two_probes) if best else "NO SAFE PLAN"))
        if best is None:
            for reason in level_plan.recommendation_reasons:
                click.echo(f"    {reason}")
        for name, path in written.items():
            click.echo(f"    {name}: {path}")
    report = write_report(out / "report.html", planned, ReportContext("bvn-plan demo: synthetic spine", images=images))
    click.echo(f"\nreport (open in a browser): {report}")
    click.echo(f"planned {len(rows)} level(s) in {sum(r['seconds'] for r in rows):.1f} s; outputs in {out.resolve()}")
    if json_out:
        write_json_atomic(json_out, {"levels": rows, "report": str(report)})
        click.echo(f"wrote {json_out}")


def _probes(outcome) -> str:
    """'; one probe' or '; two probes (pair P % of the target zone)' for the demo's level line."""
    if outcome is None:
        return ""
    pair = outcome.pair
    return f"; {outcome.probes}" + (f" (pair {100 * pair.zone_coverage:.0f} % of the target zone)"
                                    if pair is not None and pair.recommended else "")


def _fragility(plan) -> str:
    """', breach probability P % (FRAGILE)' of an assessed plan, '' when not assessed."""
    rob = plan.robustness
    if rob is None:
        return ""
    return f", breach probability {100 * rob.breach_probability:.0f} %" + (" (FRAGILE)" if rob.fragile else "")


#: Files larger than this (bytes; ~500k faces as binary STL) are announced before they are read.
LARGE_FILE_BYTES = 25_000_000


def _load(mesh, level, units, frame, trust_level=False):
    from .vertebra import Vertebra
    from .workflow.eligibility import untreated_levels_message

    if os.path.isfile(mesh) and os.path.getsize(mesh) > LARGE_FILE_BYTES:
        click.echo(f"reading {mesh} ({os.path.getsize(mesh) / 1e6:.0f} MB) ...", err=True)
    vertebra = Vertebra.load(mesh, level=level, units=units, frame=frame)
    vertebra.trust_level = trust_level
    untreated = untreated_levels_message([vertebra.level]) if vertebra.level else None
    if untreated:  # planned and checked all the same (the geometry is judged alike), never silently
        note(vertebra.notes, untreated)  # so plan.json and summary.txt say it too
    return vertebra


def _require_in_bone(vertebra, point_mm, what: str) -> None:
    """Refuse (exit 2) a probe or instrument tip (mm, model coordinates) that lies outside the bone."""
    import trimesh

    from .errors import InputError

    inside_mm = float(trimesh.proximity.signed_distance(vertebra.mesh, np.asarray(point_mm, float)[None])[0])
    if inside_mm < 0:
        raise InputError(f"the {what} lies {-inside_mm:.1f} mm outside the vertebra ({vertebra.source}): it must lie "
                         "in the bone; check its coordinates, their frame and units")


def _find_anatomy(vertebra, terminus=None):
    """find_anatomy, with a progress bar of its stages on stderr for a dense mesh (more than
    mesh_io.DENSE_MESH_FACES faces, about a minute per million faces)."""
    from .anatomy.find import ANATOMY_STAGES, find_anatomy
    from .console import progress
    from .mesh_io import DENSE_MESH_FACES

    terminus = terminus or TerminusParameters()
    if len(vertebra.mesh.faces) <= DENSE_MESH_FACES:
        return find_anatomy(vertebra, terminus)
    with progress(ANATOMY_STAGES, f"anatomy of {Path(str(vertebra.source or 'the mesh')).name}") as advance:
        started = []  # the stage running; it is done when the next one starts

        def tell(stage):
            if started:
                advance(started.pop())
            started.append(stage)
        found = find_anatomy(vertebra, terminus, tell)
        advance(started.pop())
    return found


@main.command()
@vertebra_arguments
@terminus_options
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the landmarks here (JSON).")
@click.option("--export", "export_dir", type=click.Path(file_okay=False),
              help="Also write the canal volume, body and posterior wall meshes (input frame and units) here.")
@friendly_errors
def anatomy(mesh, level, units, frame, trust_level, depth_fraction, height_fraction, json_out, export_dir):
    """Find the anatomy of one vertebra: frame, symmetry plane, endplates, posterior wall, canal,
    pedicles, basivertebral foramen, BVN terminus and morphometry."""
    from .anatomy.find import anatomy_report, export_landmark_meshes
    from .console import emit
    from .landmarks import TerminusParameters
    from .planning.plan_schema import ANATOMY_RECORD, check_written

    terminus = TerminusParameters(depth_fraction=depth_fraction, height_fraction=height_fraction)
    vertebra = _load(mesh, level, units, frame, trust_level)
    landmarks = _find_anatomy(vertebra, terminus)
    report = anatomy_report(vertebra, terminus, landmarks)
    if export_dir:
        report["exported_meshes"] = [str(p) for p in export_landmark_meshes(vertebra, export_dir, landmarks=landmarks)]
    emit("anatomy", check_written(report, ANATOMY_RECORD), json_out)


@main.command()
@vertebra_arguments
@click.option("--point", "points", type=(float, float, float), multiple=True,
              help="A trajectory point X Y Z in the mesh's frame and units; repeat, start first, tip last.")
@click.option("--markups", type=click.Path(dir_okay=False, exists=True),
              help="A Slicer .mrk.json file holding the trajectory as a Line or Curve (start first).")
@click.option("--name", help="Which Line/Curve of the markups file (default: the first).")
@click.option("--radius", type=float, default=None, help="Instrument radius in mm (default: the device's introducer).")
@click.option("--lesion/--no-lesion", default=True, show_default=True,
              help="Also check the device's ellipsoid lesion placed at the tip.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the full result here (JSON).")
@organ_options
@friendly_errors
def check(mesh, level, units, frame, trust_level, points, markups, name, radius, lesion, json_out, organs, fat,
          skin_ct):
    """Judge a trajectory against the safety zones: clearances, breach grade, verdict and reasons.

    Exit code 0 for pass or warn, 4 for fail."""
    from .console import emit
    from .device import DeviceProfile
    from .errors import InputError
    from .lesion import EllipsoidLesion
    from .paths import InstrumentPath
    from .planning.safety import check_path

    if not points and not markups:
        raise InputError("no trajectory given: use --point X Y Z (repeated, start first) or --markups FILE")
    if points and markups:
        raise InputError("give the trajectory as --point or as --markups, not both")
    vertebra = _load(mesh, level, units, frame, trust_level)
    coords = np.asarray(points, float) if points else _markups_path(markups, name, vertebra)
    device = DeviceProfile()
    path = InstrumentPath.polyline(coords * vertebra.scale_to_mm,
                                   device.introducer_radius_mm if radius is None else radius)
    landmarks = _find_anatomy(vertebra)
    zones = _safety_zones(vertebra, landmarks, organs, fat, skin_ct)
    ablation = EllipsoidLesion.from_probe(path.tip, path.tip_direction, device) if lesion else None
    result = check_path(zones, path, lesion=ablation)
    document = result.to_dict()
    document["frame"] = ((vertebra.patient_frame or "model coordinates of the input file") +
                         f", {vertebra.input_units}")
    _to_input(document, vertebra)
    colour = {"pass": "green", "warn": "yellow", "fail": "red"}[result.verdict]
    click.secho(f"{level}: {result.verdict.upper()}", fg=colour, bold=True)
    for reason in result.reasons:
        click.echo(f"  - {reason}")
    click.echo(f"  {zones.soft_tissue}")
    emit("check", document, json_out)
    if result.verdict == "fail":
        sys.exit(NoSafePlanError.exit_code)


@main.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("--level", help=f"Vertebral level of a mesh ({LEVEL_CHOICES}); of a plan file: the level "
                              "to draw (default the first planned).")
@click.option("--units", type=UNITS, help="Units of a mesh's coordinates (detected from size if omitted).")
@click.option("--frame", type=FRAMES, help="Patient frame of a mesh's coordinates (RAS or LPS), if known.")
@click.option("--start", nargs=3, type=float, help="Instrument start X Y Z (the mesh's frame and units); with --tip.")
@click.option("--tip", nargs=3, type=float, help="Instrument tip X Y Z (the mesh's frame and units).")
@click.option("--radius", type=float, default=1.7, show_default=True, help="Instrument radius (mm).")
@click.option("--ct", type=click.Path(exists=True, dir_okay=False),
              help="CT (NIfTI, HU) in the mesh's RAS mm: fluoroscopy from its attenuation.")
@click.option("--pedicle", type=click.Choice(["right", "left"]), default="right", show_default=True,
              help="Pedicle of the en-face (down-the-pedicle) view (a plan file's: its side).")
@click.option("--pixel-mm", type=float, default=0.5, show_default=True, help="Fluoroscopy pixel size (mm).")
@click.option("--camera", type=click.Choice(["oblique", "ap", "lateral", "axial"]), multiple=True,
              default=("oblique", "axial"), show_default=True, help="3D scene camera(s); repeat for several.")
@click.option("--transparent/--opaque", default=None,
              help="Bone translucent or opaque (default: translucent whenever an instrument is drawn).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", show_default=True)
@json_option
@trust_level_option
@friendly_errors
def render(source, level, units, frame, trust_level, start, tip, radius, ct, pedicle, pixel_mm, camera, transparent, out_dir,
           json_out):
    """Render the 3D scene (one PNG per camera) and the AP, lateral and en-face fluoroscopy (PNG) of
    SOURCE: a plan.json (its recommended path, lesion and check) or a vertebra mesh (with --level;
    an instrument from --start/--tip)."""
    from .console import emit
    from .errors import InputError
    from .paths import InstrumentPath
    from .viz import FluoroSettings, ScenePlan, plan_file_pictures, write_pictures

    if source.lower().endswith(".json"):
        if start or tip or ct or units or frame:
            raise InputError("a plan file carries its own path, frame and units: --start, --tip, --ct, --units and "
                             "--frame are for meshes")
        written = plan_file_pictures(source, out_dir, level, camera, pixel_mm, transparent)
    else:
        if not level:
            raise InputError("rendering a mesh needs its --level (e.g. --level L4)")
        if bool(start) != bool(tip):
            raise InputError("give both --start and --tip for an instrument, or neither")
        v = _load(source, level, units, frame, trust_level)
        if tip:
            _require_in_bone(v, np.asarray(tip) * v.scale_to_mm, "instrument tip")
        paths = ([InstrumentPath.straight(np.asarray(start) * v.scale_to_mm, np.asarray(tip) * v.scale_to_mm,
                                          radius)] if start else [])
        written = write_pictures(v, _find_anatomy(v), ScenePlan(paths), out_dir, camera,
                                 FluoroSettings(pedicle, pixel_mm, ct=ct), transparent)
    emit("render", {"written": [str(file) for file in written.values()]}, json_out)


@main.command()
@click.argument("mesh", type=click.Path(dir_okay=False))
@click.option("--tip", nargs=3, type=float, help="Probe tip X Y Z (the mesh's frame and units).")
@click.option("--direction", nargs=3, type=float, help="Probe direction (shaft -> tip).")
@click.option("--from", "lesion_file", type=click.Path(exists=True, dir_okay=False),
              help="Run the lesion a --json file of 'bvn-plan lesion' describes again: its probe tip, direction "
                   "and model (instead of --tip and --direction).")
@click.option("--model", type=click.Choice(LESION_MODELS),
              help="Device ellipsoid, or the Pennes model (homogeneous axisymmetric, or 3D voxel with the cortical "
                   "shell of this mesh) [default: a --from file's model, else ellipsoid].")
@click.option("--tissue", "tissue_set", type=click.Choice(["normal", "osteoporotic"]), default="normal", show_default=True)
@click.option("--damage", type=click.Choice(["cem43", "arrhenius"]), default="cem43", show_default=True)
@click.option("--heating", type=click.Choice(["rf", "temperature-clamped"]),
              help="Bioheat heating: RF current with a temperature controller, or electrodes held at the set "
                   "temperature (default: the device profile's, rf).")
@click.option("--temperature", type=float, help="Set temperature, C (default: the device profile's).")
@click.option("--duration", type=float, help="Heating time, s (default: the device profile's).")
@click.option("--units", type=UNITS, help="Units of the file's coordinates (detected from size if omitted).")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Write the lesion surface (.stl/.ply/.obj) in the mesh's frame and units.")
@click.option("--field", type=click.Path(dir_okay=False),
              help="Write the temperature/dose field (.vti, mm, model coordinates) for slicing (thermal models).")
@json_option
@friendly_errors
def lesion(mesh, tip, direction, lesion_file, model, tissue_set, damage, heating, temperature, duration, units, out,
           field, json_out):
    """Predict the ablation zone of one probe and print its size."""
    from .atomic import write_bytes_atomic
    from .console import emit, steps_bar
    from .device import DeviceProfile
    from .errors import InputError
    from .lesion import EllipsoidLesion
    from .thermal import ThermalSettings, simulate_axisymmetric, simulate_voxel
    from .vertebra import Vertebra

    overrides = {k: v for k, v in (("set_temperature_c", temperature), ("duration_s", duration)) if v is not None}
    device = DeviceProfile().replace(**overrides)
    v = Vertebra.load(mesh, units=units)
    tip, direction, model = _probe(tip, direction, model, lesion_file, v)
    tip_mm = np.asarray(tip, float) * v.scale_to_mm
    _require_in_bone(v, tip_mm, "probe tip")
    heating = None if model == "ellipsoid" else heating or device.heating_model
    result = None
    if model == "ellipsoid":
        zone = EllipsoidLesion.from_probe(tip_mm, direction, device)
    else:
        settings = ThermalSettings(tissue_set, damage, heating)
        if model == "axisymmetric":
            result = simulate_axisymmetric(tip_mm, direction, device, settings)
        else:
            with steps_bar("voxel bioheat") as step:  # a minute or more
                result = simulate_voxel(v.mesh, [(tip_mm, direction)], device, settings, progress=step)
        zone = result.lesion
    ext = os.path.splitext(out)[1].lower() if out else None
    if out and ext not in (".stl", ".ply", ".obj"):
        raise InputError(f"--out {out}: write the lesion as .stl, .ply or .obj")
    if field and os.path.splitext(field)[1].lower() != ".vti":
        raise InputError(f"--field {field}: the temperature field is written as .vti")
    if field and result is None:
        raise InputError("--field needs a thermal model (--model axisymmetric or voxel): the ellipsoid has no field")
    written = []
    if out:
        surface = zone.surface_mesh().copy()
        surface.apply_scale(1.0 / v.scale_to_mm)
        written.append(str(write_bytes_atomic(out, surface.export(file_type=ext[1:]))))
    if field:
        partial = Path(field).with_name(f".{Path(field).name}.tmp.vti")
        result.to_pyvista().save(partial)
        os.replace(partial, field)  # whole or not at all
        written.append(field)
    emit("lesion", {
        "model": model, "tissue": tissue_set, "damage": damage,
        "probe_tip": [float(x) for x in tip], "probe_direction": [float(x) for x in direction],
        "units": v.input_units, "frame": "the mesh's own coordinates and units", "mesh": str(mesh),
        "heating": heating,
        "volume_mm3": round(zone.volume, 1),
        "extent_along_mm": round(zone.extent_along(), 2), "extent_across_mm": round(zone.extent_across(), 2),
        "device": device.to_dict(), "written": written,
    }, json_out)


def _probe(tip, direction, model, lesion_file, vertebra) -> tuple:
    """The probe tip, direction (the mesh's coordinates and units) and lesion model: from the
    options, or from ``lesion_file`` (a --json of ``bvn-plan lesion``), whose model --model must not
    contradict."""
    from .errors import InputError

    if lesion_file is None:
        if tip is None or direction is None:
            raise InputError("give the probe as --tip X Y Z and --direction X Y Z, or --from a lesion JSON file")
        return tip, direction, model or "ellipsoid"
    if tip is not None or direction is not None:
        raise InputError(f"--from {lesion_file} gives the probe: leave out --tip and --direction")
    try:
        record = json.loads(Path(lesion_file).read_text())
        saved = (record["model"], record["probe_tip"], record["probe_direction"], record["units"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{lesion_file} is not a lesion JSON of 'bvn-plan lesion --json' (model, probe_tip, "
                         f"probe_direction, units): {exc!r}") from exc
    if saved[0] not in LESION_MODELS:
        raise InputError(f"{lesion_file} names the lesion model {saved[0]!r}; bvn-plan knows {', '.join(LESION_MODELS)}")
    if model is not None and model != saved[0]:
        raise InputError(f"{lesion_file} holds a lesion of the {saved[0]} model but --model {model} was asked: run it with "
                         f"--model {saved[0]} (or leave --model out), or give the probe with --tip/--direction")
    if saved[3] != vertebra.input_units:
        raise InputError(f"{lesion_file} gives the probe in {saved[3]}, {vertebra.source} is in "
                         f"{vertebra.input_units}: give --units {saved[3]} or the mesh it was run on")
    return tuple(saved[1]), tuple(saved[2]), saved[0]


@main.command()
@vertebra_arguments
@terminus_options
@click.option("--approach", "approaches", multiple=True,
              type=click.Choice(["transpedicular", "transpedicular-straight", "extrapedicular"]),
              help="Approach(es) to plan (repeatable; default: all three).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for plan.json and summary.txt (created if missing).")
@click.option("--images", is_flag=True,
              help="Also draw the recommended plan: OUT/pictures/ (3D scenes and AP, lateral, en-face fluoroscopy).")
@robustness_option
@click.option("--label-sensitivity", is_flag=True,
              help="Also plan as if the level label were one level off and say whether the recommendation changes "
                   "(finds the anatomy twice more).")
@json_option
@organ_options
@friendly_errors
def plan(mesh, level, units, frame, trust_level, depth_fraction, height_fraction, approaches, out_dir, images,
         robustness_samples, label_sensitivity, json_out, organs, fat, skin_ct):
    """Plan every approach on both sides to the BVN target zone, judge each path with the safety
    checker and recommend one; write OUT/plan.json (input frame and units) and OUT/summary.txt
    (with --images, OUT/pictures/ too).

    Exit code 0 with a passing recommendation, 6 when only plans with warnings remain (the first line
    says so), 4 when no approach gives a safe plan (the files say why)."""
    from .console import emit
    from .landmarks import TerminusParameters
    from .planning.plan_file import write_plan
    from .planning.planner import APPROACHES, plan_level
    from .planning.settings import PlannerSettings

    terminus = TerminusParameters(depth_fraction=depth_fraction, height_fraction=height_fraction)
    vertebra = _load(mesh, level, units, frame, trust_level)
    landmarks = _find_anatomy(vertebra, terminus)
    zones = _safety_zones(vertebra, landmarks, organs, fat, skin_ct)
    level_plan = plan_level(vertebra, landmarks, zones=zones, approaches=tuple(approaches) or APPROACHES,
                            settings=PlannerSettings(robustness=_robustness(robustness_samples)))
    if label_sensitivity:
        from .planning.label_sensitivity import label_sensitivity as one_level_off

        level_plan.label_sensitivity = one_level_off(vertebra, level_plan)
    written = write_plan(level_plan, vertebra, out_dir)
    rec = level_plan.recommendation
    if rec is None:
        click.secho(f"{level_plan.level}: NO SAFE PLAN", fg="red", bold=True)
    elif rec.verdict != "pass":
        click.secho(f"{level_plan.level}: ONLY PLANS WITH WARNINGS: {rec.side} {rec.approach} ({rec.verdict}); "
                    "no plan passes every rule", fg="yellow", bold=True)
    else:
        click.secho(f"{level_plan.level}: {rec.side} {rec.approach} ({rec.verdict}{_fragility(rec)})",
                    fg="yellow" if rec.robustness is not None and rec.robustness.fragile else "green", bold=True)
    for reason in level_plan.recommendation_reasons:
        click.echo(f"  - {reason}")
    emit("plan", _plan_record(level_plan, written), json_out)
    click.echo(f"wrote {written['plan']} and {written['summary']}")
    if images:
        from .viz import FluoroSettings, ScenePlan, write_pictures

        shown = ScenePlan([rec.path], [rec.lesion], rec.check) if rec else ScenePlan()
        pictures = write_pictures(vertebra, landmarks, shown, os.path.join(out_dir, "pictures"),
                                  settings=FluoroSettings(pedicle=rec.side if rec else "right"))
        click.echo(f"wrote {len(pictures)} pictures in {os.path.join(out_dir, 'pictures')}")
    if rec is None:
        sys.exit(NoSafePlanError.exit_code)
    if rec.verdict != "pass":
        sys.exit(WARNED_PLAN_EXIT_CODE)


@main.command()
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--png", type=click.Path(dir_okay=False), help="Render off-screen to this PNG instead of opening a window.")
@click.option("--approach", type=click.Choice(["transpedicular", "transpedicular-straight", "extrapedicular"]),
              help="Approach to show first (default: the recommendation).")
@click.option("--side", type=click.Choice(["right", "left"]), help="Side to show first (default: the recommendation's).")
@click.option("--camera", type=click.Choice(["oblique", "ap", "lateral", "axial"]), default="oblique", show_default=True)
@click.option("--level", help="Level of a case's plan.json to show (default: the first planned level).")
@json_option
@friendly_errors
def show(plan_file, png, approach, side, camera, level, json_out):
    """Show a plan.json of 'bvn-plan plan' or 'bvn-plan case': reload the level's mesh with its
    saved anatomy and draw the planned path, lesion and clearances. In the window drag the green
    sphere (entry) or the red one (target) to re-check the path live; 'a' cycles the approach,
    's' switches the side.

    Exit code 0 when the path re-checks as pass or warn, 4 when it fails (its reasons are printed),
    2 when the file's path cannot be checked on its mesh (e.g. it never enters the vertebra)."""
    from .console import emit
    from .errors import InputError
    from .viz.window import show_plan  # pyvista stays out of the CLI until a window is asked for

    if not png and sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise InputError("no display to open the window on (DISPLAY is not set): render off-screen with --png FILE, "
                         "or run show where a display is available (e.g. ssh -X)")
    shown = show_plan(plan_file, png=png, approach=approach, side=side, camera=camera, level=level)
    emit("show", {"plan": str(plan_file), "level": shown.level, "approach": shown.approach, "side": shown.side,
                  "verdict": shown.verdict, "reasons": list(shown.reasons), "png": None if png is None else str(png)},
         json_out)
    if shown.verdict == "fail":  # drawn, but the path as the file holds it fails its re-check
        for reason in shown.reasons:
            click.echo(f"  - {reason}")
        sys.exit(NoSafePlanError.exit_code)


@main.command("case")
@click.argument("case_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output folder; a re-run replaces it whole (plan.json, summary.csv, report.html, slicer/).")
@click.option("--images/--no-images", default=None,
              help="Render the report's pictures (default: the case file's plan.images, else yes).")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Worker processes planning the levels side by side, at most one per level and core "
                   "[default: 2].")  # workflow.case.CASE_WORKERS, checked by tests/test_cli.py
@trust_level_option
@robustness_option
@json_option
@friendly_errors
def case_command(case_file, out_dir, images, workers, trust_level, robustness_samples, json_out):
    """Plan every level of a case file (YAML/JSON, see examples/case_example.yaml): eligibility
    checklist, plans, HTML report and 3D Slicer files.

    Exit code 0 when every level has a plan, 3 when a level's anatomy was refused, 4 when a level
    has no safe plan."""
    import dataclasses

    from .console import emit, progress, typed_row
    from .workflow.case import load_case, plan_case

    case = load_case(case_file)
    if images is not None:
        case.images = images
    case.trust_level = case.trust_level or trust_level
    case.settings = dataclasses.replace(case.settings, robustness=_robustness(robustness_samples))
    with progress(len(case.levels) + 1, f"case {case.case_id}") as advance:
        result = plan_case(case, out_dir, progress=advance, **({} if workers is None else {"workers": workers}))
    emit("case", {
        "out": str(result.out_dir),
        "eligibility": None if result.eligibility is None else {"verdict": result.eligibility.verdict,
                                                                "reasons": result.eligibility.reasons},
        "levels": [typed_row(row) for row in result.rows],
    }, json_out)
    statuses = {row["status"] for row in result.rows}
    if "refused" in statuses:
        sys.exit(AnatomyError.exit_code)
    if "no safe plan" in statuses:
        sys.exit(NoSafePlanError.exit_code)


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Batch folder: one case folder per input and summary.csv.")
@click.option("--workers", type=click.IntRange(1),
              help="Worker processes of a local Dask cluster (default: one per core; 1: in this process, no cluster).")
@click.option("--scheduler", help="Run on an existing Dask cluster: its scheduler address (tcp://HOST:8786) or "
              "scheduler file; its workers must see the inputs and OUT at the same paths (docs/cohorts.md).")
@click.option("--level", help="Level of every mesh input (default: from each file name, e.g. patient7_L4.stl).")
@click.option("--units", type=UNITS, help="Units of the mesh inputs (detected from size if omitted).")
@click.option("--frame", type=FRAMES, help="Patient frame of the mesh inputs, if known.")
@click.option("--stage", type=click.Choice(["plan", "anatomy"]), default="plan", show_default=True,
              help="For mesh inputs: plan, or find the anatomy only (morphometry cohorts).")
@click.option("--images/--no-images", default=False, show_default=True,
              help="For mesh inputs: render the report pictures (case files follow their own plan.images).")
@click.option("--redo", is_flag=True, help="Plan finished cases again (default: resume, skipping them).")
@trust_level_option
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Dask's progress bar and the dashboard address on stderr.")
@json_option
@friendly_errors
def batch(inputs, out_dir, workers, scheduler, level, units, frame, stage, images, redo, trust_level, progress,
          json_out):
    """Plan many case files and/or meshes (or folders of them) into OUT in parallel on Dask;
    resumable (finished cases are skipped), with OUT/summary.csv (one row per case and level),
    OUT/cohort_report.html and OUT/attempts/. An input that cannot be planned (e.g. a mesh whose
    name does not tell its level) fails alone. Exit code 5 when some cases failed (their rows say why)."""
    from .console import emit
    from .workflow.batch import batch_cases, run_batch

    inputs = batch_cases(list(inputs), level=level, units=units, frame=frame, stage=stage, images=images,
                         trust_level=trust_level)
    result = run_batch(inputs, out_dir, workers=workers, scheduler=scheduler, progress=progress, redo=redo)
    emit("batch", {
        "out": out_dir, "summary": f"{out_dir}/summary.csv", "report": f"{out_dir}/cohort_report.html",
        "planned": len(result.planned),
        "skipped_as_done": len(result.skipped), "failed": result.failed,
        "seconds": round(result.seconds, 1), "vertebrae_per_minute": round(result.vertebrae_per_minute, 1),
        "dask_dashboard": result.dashboard,
    }, json_out)
    if result.failed:
        sys.exit(BATCH_FAILURES_EXIT_CODE)


def _plan_record(level_plan, written: dict) -> dict:
    """What `plan` reports for machines (--json) and people: the recommendation with its reasons,
    every approach and side (verdict, mm figures, what blocked it) and the files written."""
    rec = level_plan.recommendation
    options = []
    for r in level_plan.results:
        p = r.plan
        options.append({"side": r.side, "approach": r.approach, "verdict": None if p is None else p.verdict,
                        "min_clearance_beyond_margin_mm": None if p is None else p.min_slack_mm,
                        "tip_to_terminus_mm": None if p is None else p.tip_to_terminus_mm,
                        "zone_coverage_percent": None if p is None else 100 * p.zone_coverage,
                        "terminus_outside_lesion_mm": None if p is None else p.terminus_outside_mm,
                        "needle_length_skin_to_tip_mm": None if p is None else p.numbers["needle_length_skin_to_tip_mm"],
                        "breach_probability": None if p is None or p.robustness is None else p.robustness.breach_probability,
                        "fragile": None if p is None or p.robustness is None else p.robustness.fragile,
                        "why_not": "" if p is not None else "; ".join(r.blocked)})
    return {"level": level_plan.level, "recommendation": None if rec is None else {
        "approach": rec.approach, "side": rec.side, "verdict": rec.verdict},
        "reasons": list(level_plan.recommendation_reasons), "options": options,
        "label_sensitivity": (None if level_plan.label_sensitivity is None
                              else [alt.to_dict() for alt in level_plan.label_sensitivity]),
        "two_probes": _two_probes_record(level_plan.two_probes),
        **{k: str(v) for k, v in written.items()}}


def _two_probes_record(outcome) -> dict | None:
    """One probe or two for `plan`'s record: the words, and the pair's figures when one passed."""
    if outcome is None:
        return None
    pair = outcome.pair
    return {"recommendation": outcome.probes, "words": outcome.words(), "pair": None if pair is None else {
        "verdicts": [c.verdict for c in pair.checks], "zone_coverage_percent": 100 * pair.zone_coverage,
        "single_zone_coverage_percent": 100 * pair.single_zone_coverage, "tip_separation_mm": pair.tip_separation_mm,
        "min_clearance_beyond_margin_mm": min(p.min_slack_mm for p in (pair.right, pair.left)),
        "breach_probability": None if pair.robustness is None else pair.robustness.breach_probability,
        "fragile": None if pair.robustness is None else pair.robustness.fragile,
        "tip_to_terminus_mm": [p.tip_to_terminus_mm for p in (pair.right, pair.left)],
        "needle_lengths_skin_to_tip_mm": [p.numbers["needle_length_skin_to_tip_mm"] for p in (pair.right, pair.left)]}}


def _markups_path(markups_file, name, vertebra):
    from .errors import InputError
    from .workflow.markups import read_markups

    if vertebra.patient_frame is None:
        click.secho("warning: the mesh has no patient frame (--frame); the markups' coordinates are taken "
                    "in the mesh's own coordinates", fg="yellow", err=True)
    nodes = [m for m in read_markups(markups_file, frame=vertebra.patient_frame or RAS)
             if m.type in ("Line", "Curve") and (name is None or m.name == name)]
    if not nodes:
        raise InputError(f"{markups_file} has no Line or Curve{f' named {name!r}' if name else ''}")
    return np.asarray(nodes[0].points, float) / vertebra.scale_to_mm


def _to_input(document: dict, vertebra) -> None:
    """Convert the result's model coordinates (mm) to the input's units, in place."""
    scale = 1.0 / vertebra.scale_to_mm
    for key in ("bone_entry", "tip"):
        if document.get(key) is not None:
            document[key] = (np.asarray(document[key]) * scale).tolist()
    for clearance in document["clearances"].values():
        clearance["point"] = (np.asarray(clearance["point"]) * scale).tolist()


if __name__ == "__main__":
    main()
