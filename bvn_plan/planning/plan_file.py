"""The plan file: ``plan.json`` (machine-readable, one or more levels) and ``summary.txt`` (for people).

One format, written by ``bvn-plan plan`` (:func:`write_plan`, one level) and ``bvn-plan case``
(:func:`plan_document` with the case's fields), read by :func:`read_plan` (``bvn-plan show``), both checked against the plan schema
(:mod:`.plan_schema`, field reference docs/plan_json.md).
Its top level holds ``format`` and ``format_version`` (:data:`FORMAT_VERSION`), ``tool``,
``disclaimer`` and ``levels``: per level name one :func:`level_to_dict` record with

* ``source`` (where the vertebra came from) and ``mesh``, the surface file to reload (``path``
  absolute or relative to the plan file's folder, its ``units``, patient ``frame`` and ``faces``);
* ``coordinates``: the frame and units of every point of the level;
* ``landmarks``: :meth:`bvn_plan.landmarks.Landmarks.to_dict`, and ``anatomy_geometry``, the
  canal and body meshes and the face regions the landmarks leave out (see :func:`geometry_to_dict`);
* ``target_zone``: the BVN target zone (:func:`zone_record`);
* the device, rules and planner settings, the recommendation and every approach x side plan.

A case adds top-level fields (``case_id``, ``case``, ``eligibility``, ``summary``, ...) and per
level ``status``, ``chosen``, ``ct_hu`` (CT numbers), ``slicer_files``; a level it could not
plan holds only those.

Every point is in the **input's frame and units** (``Vertebra.to_input_units`` of the model
coordinates), and the file names that frame. Lengths, depths and clearances stay in millimetres
and angles in degrees, as the file says. :func:`write_plan` writes both files atomically (temp
file and rename), both replaced or neither.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from .._version import __version__
from .. import text
from ..atomic import write_files_atomic
from ..coordinates import convert_points
from ..device import SOURCES, DeviceProfile
from ..errors import InputError
from ..landmarks import Landmarks
from ..vertebra import Vertebra
from ..anatomy import HEIGHT_POSITIONS
from ..anatomy.target_zone import ZONE_SOURCES, TargetZone
from ..levels import normalise_level
from .adjust import InteractivePlanner, PlanOption
from .path_numbers import describe
from .plan_schema import check_written, schema_problems
from .planner import LevelPlan, PathPlan
from .safety import PASS, Rule, RuleSet
from .two_probes import PairOutcome

DISCLAIMER = "bvn-plan is a research and teaching aid, not a medical device; every plan needs a clinician's review."
#: What the ``format`` field of a plan file says, and the version of the layout described above.
FORMAT = "bvn-plan plan"
FORMAT_VERSION = 2

#: Keys of PathPlan.numbers that are points (converted to the input's frame and units).
POINT_KEYS = ("entry_point", "bone_entry_point", "tip", "target_terminus", "arc_start", "skin_entry_point")


def frame_name(vertebra) -> str:
    """How the output names the input's coordinates."""
    if vertebra.patient_frame:
        return vertebra.patient_frame
    return "the input file's own coordinates (no patient frame given)"


def _points(vertebra, points) -> list:
    return np.round(vertebra.to_input_units(np.asarray(points, float)), 6).tolist()


def _plan_dict(plan: PathPlan, vertebra) -> dict:
    path, check = plan.path, plan.check
    numbers = {k: (_points(vertebra, v) if k in POINT_KEYS else v) for k, v in plan.numbers.items()}
    out = {
        "approach": plan.approach,
        "side": plan.side,
        "verdict": check.verdict,
        "reasons": list(check.reasons),
        "path": {
            "kind": path.kind,
            "polyline": _points(vertebra, path.vertices),
            "instrument_radius_mm": path.radius_mm,
            "arc_start": _points(vertebra, path.arc_start) if path.arc_start is not None else None,
            "arc_radius_mm": path.arc.radius_mm if path.arc else None,
            "arc_angle_deg": path.arc.angle_deg if path.arc else None,
            "length_mm": path.length,
        },
        "lesion": {
            "model": "ellipsoid",
            "centre": _points(vertebra, plan.lesion.centre),
            "axis": np.round(plan.lesion.axis, 6).tolist(),
            "length_mm": 2 * plan.lesion.half_length_mm,
            "diameter_mm": 2 * plan.lesion.radius_mm,
        },
        "tip_to_terminus_mm": plan.tip_to_terminus_mm,
        "terminus_depth_in_lesion_mm": plan.terminus_depth_mm,
        "target": {
            "kind": plan.target_kind,
            "point": _points(vertebra, plan.target_point),
            "depth_in_lesion_mm": plan.coverage_mm,
            "tip_to_target_mm": plan.tip_to_target_mm,
            "zone_coverage": plan.zone_coverage,
            "nerve_path_coverage": plan.nerve_path_coverage,
            "terminus_outside_lesion_mm": plan.terminus_outside_mm,
            "why_not_terminus": plan.why_not_terminus or None,
        },
        "min_clearance_beyond_margin_mm": plan.min_slack_mm,
        "score_mm": plan.score_mm,
        "clearances_mm": {key: {"clearance_mm": c.clearance_mm, "where": _points(vertebra, c.point),
                                "depth_along_path_mm": c.depth_mm}
                          for key, c in check.clearances.items()},
        "rules": [dataclasses.asdict(r) for r in check.rules],
        "intraosseous": check.intraosseous,
        "medial_breach_mm": check.medial_breach_mm,
        "gertzbein_robbins_grade": check.gertzbein_robbins_grade,
        "bone_entry": check.entry,
        "soft_tissue": list(check.notes),
        "numbers": numbers,
        "robustness": None if plan.robustness is None else plan.robustness.to_dict(),
        "canal_band_mm": plan.canal_band_mm,
    }
    return out


def mesh_reference(path: str, units: str, frame: str | None, faces: int) -> dict:
    """The ``mesh`` record of a level: the surface file ``path`` (absolute or relative to the plan
    file's folder) in ``units`` and patient ``frame`` (None: unknown), with ``faces`` faces."""
    return {"path": None if path is None else str(path), "units": units, "frame": frame, "faces": int(faces)}


def zone_record(zone: TargetZone, vertebra) -> dict:
    """The ``target_zone`` record of a level: the depth fractions used, volume, sample count, the
    samples' extent and the nerve path (points in the input's frame and units), the sources."""
    points = np.asarray(vertebra.to_input_units(zone.points))
    return {"depth_fractions": list(zone.depth_fractions), "volume_mm3": zone.volume_mm3, "samples": len(zone.points),
            "bounds": {"min": np.round(points.min(axis=0), 6).tolist(), "max": np.round(points.max(axis=0), 6).tolist()},
            "nerve_path": {"foramen": _points(vertebra, zone.foramen), "terminus": _points(vertebra, zone.terminus)},
            "sources": dict(ZONE_SOURCES)}


def two_probes_record(outcome: PairOutcome | None, vertebra) -> dict | None:
    """The ``two_probes`` record of a level (:mod:`.two_probes`): one probe or two and why, the
    single transpedicular plan weighed, and the pair when one passed: both probes' plans (points in
    the input's frame and units), each path's check with the union lesion, the union's zone and
    nerve-path coverage and the tips' separation (mm). None when the level was planned without it."""
    if outcome is None:
        return None
    single, pair = outcome.single, outcome.pair
    return {
        "recommendation": outcome.probes,
        "planned": outcome.planned,
        "reasons": list(outcome.reasons),
        "single": None if single is None else {"approach": single.approach, "side": single.side,
                                               "zone_coverage": single.zone_coverage},
        "pair": None if pair is None else {
            "recommended": pair.recommended,
            "zone_coverage": pair.zone_coverage,
            "nerve_path_coverage": pair.nerve_path_coverage,
            "single_zone_coverage": pair.single_zone_coverage,
            "tip_separation_mm": pair.tip_separation_mm,
            "robustness": None if pair.robustness is None else pair.robustness.to_dict(),
            "right": _plan_dict(pair.right, vertebra),
            "left": _plan_dict(pair.left, vertebra),
            "union_checks": [{"side": probe.side, "verdict": check.verdict, "reasons": list(check.reasons),
                              "lesion_to_canal_mm": check.clearances["spinal_canal:lesion"].clearance_mm,
                              "rules": [dataclasses.asdict(r) for r in check.rules]}
                             for probe, check in zip((pair.right, pair.left), pair.checks)],
        },
    }


def level_to_dict(level_plan: LevelPlan, vertebra, mesh: dict | None = None) -> dict:
    """One level of the plan file as a JSON-ready dict, points in the input's frame and units.

    ``mesh``: the :func:`mesh_reference` to reload (default: the vertebra's source file as given)."""
    lm = level_plan.landmarks
    unit_mm = vertebra.scale_to_mm
    rec = level_plan.recommendation
    return {
        "level": level_plan.level,
        "source": vertebra.source,
        "mesh": mesh or mesh_reference(vertebra.source, vertebra.input_units, vertebra.patient_frame,
                                       len(vertebra.mesh.faces)),
        "coordinates": {
            "frame": frame_name(vertebra),
            "units": vertebra.input_units,
            "lengths": "mm (depths, clearances, radii, distances)",
            "angles": "degrees, in the vertebra frame (x patient right, y anterior, z superior) unless named 'to_endplate'",
        },
        "landmarks": lm.to_dict(unit_mm),
        "vertebral_body": body_record(lm),
        "target_zone": zone_record(level_plan.zone, vertebra),
        "anatomy_geometry": geometry_to_dict(lm, unit_mm),
        "device": level_plan.device.to_dict(),
        "device_sources": dict(SOURCES),
        "rules": [dataclasses.asdict(r) for r in level_plan.rules.rules],
        "planner_settings": dataclasses.asdict(level_plan.settings),
        "label_sensitivity": (None if level_plan.label_sensitivity is None
                              else [alt.to_dict() for alt in level_plan.label_sensitivity]),
        "recommendation": None if rec is None else {"approach": rec.approach, "side": rec.side},
        "recommendation_reasons": list(level_plan.recommendation_reasons),
        "soft_tissue": level_plan.soft_tissue,
        "two_probes": two_probes_record(level_plan.two_probes, vertebra),
        "approaches": [{
            "approach": r.approach,
            "side": r.side,
            "status": "planned" if r.plan is not None else "no safe plan",
            "blocked_by": list(r.blocked),
            "candidates_screened": r.candidates,
            "zone_refusal": r.zone_refusal,
            "plan": _plan_dict(r.plan, vertebra) if r.plan is not None else None,
            "alternatives": [_plan_dict(a, vertebra) for a in r.alternatives],
        } for r in level_plan.results],
        "notes": list(vertebra.notes) + list(level_plan.notes) + list(lm.notes),
    }


def two_probes_summary_line(outcome: PairOutcome) -> str:
    """One line on one probe or two: the verdict and why; for a pair, both tips (mm on the input's
    axes, as the summary's other points) and, when assessed, a second line with its robustness."""
    line = f"PROBES: {outcome.words()}"
    if outcome.pair is not None:
        tips = (f"{p.side} tip {text.point(p.numbers['tip'])}"
                for p in (outcome.pair.right, outcome.pair.left))
        line += f" ({'; '.join(tips)}; nerve path {100 * outcome.pair.nerve_path_coverage:.0f} % covered)"
        if outcome.pair.robustness is not None:
            line += f"\n    pair robustness: {outcome.pair.robustness.words()}"
    return line


def body_record(landmarks: Landmarks) -> dict:
    """The body heights (mm, at the named shares of the mid-sagittal depth from the posterior
    wall), the height loss against the level's normal shape and the Genant grade (None where not
    measured: the sacrum), and whether the level reads compressed (grade 1 or more)."""
    m = landmarks.morphometry

    def value(name: str, digits: int = 1):
        v = m.get(name, float("nan"))
        return round(float(v), digits) if np.isfinite(v) else None

    grade = value("body_genant_grade", 0)
    return {
        "heights_mm": {where: value(f"body_height_{where}_mm") for where in HEIGHT_POSITIONS},
        "height_positions": dict(HEIGHT_POSITIONS),
        "height_loss_percent": value("body_height_loss_percent"),
        "genant_grade": None if grade is None else int(grade),
        "compressed": bool(grade is not None and grade >= 1),
        "sources": "grades: Genant et al. 1993 J Bone Miner Res 8:1137-48; normal shape: the level priors "
                   "(bvn_plan.levels) and the endplate concavities of Wang 2012 Eur Spine J",
    }


def body_summary_line(landmarks: Landmarks) -> str:
    """One line on the vertebral body: heights, height loss and Genant grade."""
    body = body_record(landmarks)
    heights = ", ".join(f"{where} {h:.1f}" if h is not None else f"{where} -" for where, h in body["heights_mm"].items())
    if body["genant_grade"] is None:
        return f"BODY: heights {heights} mm; no Genant grade (a sacrum, or not measured)"
    verdict = "COMPRESSED, fracture risk: see the notes" if body["compressed"] else "not compressed"
    return (f"BODY: heights {heights} mm; height loss {body['height_loss_percent']:.0f} % against the level's "
            f"normal shape; Genant grade {body['genant_grade']} ({verdict})")


def plan_document(levels: dict[str, dict], **case_fields) -> dict:
    """The whole plan file: :func:`level_to_dict` records (or a case's records of unplanned
    levels) by level name, with the case-level fields a case adds; checked against the plan
    schema (:mod:`.plan_schema`: a field it does not describe is a bug, RuntimeError)."""
    return check_written({"format": FORMAT, "format_version": FORMAT_VERSION, "tool": f"bvn-plan {__version__}",
                          "disclaimer": DISCLAIMER, **case_fields, "levels": levels})


def geometry_to_dict(landmarks: Landmarks, unit_mm: float) -> dict:
    """The canal and body meshes (vertices in units of ``unit_mm`` mm) and the face regions of
    ``landmarks``, each array zlib-compressed and base64-encoded, exactly (float64, int64).

    Stored rather than recomputed: they come out of the anatomy's voxel pipeline in a provisional
    frame, so recomputing them means running :func:`bvn_plan.anatomy.find.find_anatomy` again
    (a second to a minute) and the reloaded safety zones would have to trust it to repeat itself.
    They cost about 0.5 MB per level (mostly the canal volume)."""
    meshes = {name: None if mesh is None else {"vertices": _array_to_dict(mesh.vertices / unit_mm),
                                               "faces": _array_to_dict(mesh.faces)}
              for name, mesh in (("canal_mesh", landmarks.canal_mesh), ("body_mesh", landmarks.body_mesh))}
    regions = {name: _array_to_dict(np.asarray(faces, np.int64)) for name, faces in landmarks.face_regions.items()}
    return {**meshes, "face_regions": regions}


def geometry_from_dict(data: dict, unit_mm: float) -> dict:
    """The inverse of :func:`geometry_to_dict`: ``canal_mesh``, ``body_mesh`` (mm, model
    coordinates) and ``face_regions``, as :class:`~bvn_plan.landmarks.Landmarks` fields."""
    meshes = {name: None if data[name] is None else trimesh.Trimesh(
        _array_from_dict(data[name]["vertices"]) * unit_mm, _array_from_dict(data[name]["faces"]), process=False)
        for name in ("canal_mesh", "body_mesh")}
    return {**meshes, "face_regions": {name: _array_from_dict(a) for name, a in data["face_regions"].items()}}


def _array_to_dict(array) -> dict:
    array = np.ascontiguousarray(array, dtype=np.int64 if np.issubdtype(np.asarray(array).dtype, np.integer)
                                 else np.float64)
    return {"dtype": array.dtype.str, "shape": list(array.shape),
            "zlib_base64": base64.b64encode(zlib.compress(array.tobytes(), 6)).decode("ascii")}


def _array_from_dict(data: dict) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(data["zlib_base64"]))
    return np.frombuffer(raw, dtype=np.dtype(data["dtype"])).reshape(data["shape"]).copy()


def summary_text(level_plan: LevelPlan, vertebra) -> str:
    """A readable summary: recommendation, then every approach and side with its verdict and
    numbers (points in mm on the input's axes; :mod:`bvn_plan.text` rounding, no "-0")."""
    lines = [f"bvn-plan {__version__}: {level_plan.level} from {vertebra.source}", DISCLAIMER,
             f"Points in mm, frame: {frame_name(vertebra)} (plan.json holds them in {vertebra.input_units}); "
             "lengths mm; angles degrees (medial + toward the midline, cranio-caudal + cranial).", ""]
    rec = level_plan.recommendation
    warnings_first = []  # the most serious first: no passing plan, then a fragile recommendation
    if rec is not None and rec.verdict != PASS:
        warnings_first.append(f"ONLY PLANS WITH WARNINGS at {level_plan.level}: no plan passes every rule; the "
                              f"recommended {rec.side} {rec.approach} carries warnings (below)")
    if rec is not None and rec.robustness is not None and rec.robustness.fragile:
        warnings_first.append(f"FRAGILE PLAN at {level_plan.level}: the recommended {rec.side} {rec.approach} breaks a "
                              f"rule that fails the plan in {100 * rec.robustness.breach_probability:.0f} % of sampled "
                              f"placements (fragile above {100 * rec.robustness.fragile_breach_probability:.0f} %; below)")
    lines[:0] = warnings_first
    lines.append("RECOMMENDATION: " + (f"{rec.side} {rec.approach}" if rec else "none: no safe plan"))
    lines += [f"  - {r}" for r in level_plan.recommendation_reasons]
    if level_plan.label_sensitivity is not None:
        changed = any(alt.changed for alt in level_plan.label_sensitivity)
        lines.append(f"LEVEL LABEL ONE OFF ({'the recommendation CHANGES' if changed else 'the same recommendation'}): "
                     + ("; ".join(alt.words() for alt in level_plan.label_sensitivity) or "no neighbouring level"))
    if level_plan.two_probes is not None:
        lines.append(two_probes_summary_line(level_plan.two_probes))
    lines += [body_summary_line(level_plan.landmarks), f"Soft tissue: {level_plan.soft_tissue}", ""]
    for r in level_plan.results:
        head = f"{r.side.upper()} {r.approach}"
        if r.plan is None:
            lines.append(f"{head}: NO SAFE PLAN ({r.candidates} candidates screened)")
            lines += [f"    blocked: {b}" for b in r.blocked]
            lines.append("")
            continue
        lines += _plan_lines(head, r.plan, level_plan.settings.approach_mm) + [_runner_up(a) for a in r.alternatives] + [""]
    notes = list(vertebra.notes) + list(level_plan.notes) + list(level_plan.landmarks.notes)
    if notes:
        lines.append("NOTES")
        lines += [f"  - {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _plan_lines(head: str, p: PathPlan, approach_mm: float) -> list[str]:
    n, num = p.numbers, text.number
    canal = p.check.clearances["spinal_canal:lesion"].clearance_mm
    depths = (f"    depths: skin side to bone {num(n['depth_skin_side_to_bone_entry_mm'])} mm, introducer in bone "
              f"{num(n['depth_introducer_in_bone_mm'])} mm")
    if "arc_angle_deg" in n:
        depths += (f", cannula arc {num(n['depth_arc_mm'])} mm (R {num(n['arc_radius_mm'], 0)} mm, "
                   f"{num(n['arc_angle_deg'], 0)} deg)")
    return [
        f"{head}: verdict {p.verdict.upper()}",
        f"    path start {text.point(n['entry_point'])} ({num(approach_mm, 0)} mm before the bone); bone entry "
        f"{text.point(n['bone_entry_point'])}; tip {text.point(n['tip'])}",
        f"    tip {num(p.tip_to_terminus_mm)} mm from the terminus; " + (
            f"terminus {num(p.terminus_depth_mm)} mm inside the lesion" if p.terminus_depth_mm >= 0 else
            f"TERMINUS {num(p.terminus_outside_mm)} mm OUTSIDE the lesion") +
        f"; lesion {num(canal)} mm from the canal; smallest clearance beyond its margin {num(p.min_slack_mm)} mm",
        f"    target zone {num(100 * p.zone_coverage, 0)} % covered, nerve path (foramen to terminus) "
        f"{num(100 * p.nerve_path_coverage, 0)} %; aimed at the " + (
            "nominal terminus" if p.target_kind == "terminus" else
            f"zone point nearest the terminus the canal margin allows ({p.why_not_terminus})"),
        depths,
        f"    skin entry {text.point(n['skin_entry_point'])} ({n['skin_entry_source']}): "
        f"{num(n['skin_entry_from_midline_mm'], 0)} mm from the midline, "
        f"{text.signed(n['skin_entry_craniocaudal_from_tip_mm'], 0)} mm cranio-caudal from the tip; needle length skin "
        f"to tip {num(n['needle_length_skin_to_tip_mm'], 0)} mm",
        f"    angles: medial {num(n['introducer_medial_angle_deg'])}, cranio-caudal "
        f"{num(n['introducer_craniocaudal_angle_deg'])} (to the superior endplate: "
        f"{num(n['introducer_medial_angle_to_endplate_deg'])}, {num(n['introducer_craniocaudal_angle_to_endplate_deg'])})",
        f"    fluoroscopy: {describe(n)}",
        f"    Gertzbein-Robbins grade {p.check.gertzbein_robbins_grade}; "
        f"{'intraosseous' if p.check.intraosseous else 'LEAVES THE BONE'} from bone entry to tip",
        *([f"    robustness: {p.robustness.words()}" + (f"; the search kept the lesion {num(p.canal_band_mm)} mm beyond "
                                                      "the canal margin" if p.canal_band_mm > 0 else "")]
          if p.robustness is not None else []),
        *[f"    - {reason}" for reason in p.check.reasons]]


def _runner_up(a: PathPlan) -> str:
    num = text.number
    return (f"    runner-up: verdict {a.verdict}, tip {num(a.tip_to_terminus_mm)} mm from the terminus, smallest "
            f"clearance beyond its margin {num(a.min_slack_mm)} mm, medial {num(a.numbers['introducer_medial_angle_deg'])} "
            f"deg, cranio-caudal {num(a.numbers['introducer_craniocaudal_angle_deg'])} deg")


def write_plan(level_plan: LevelPlan, vertebra, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``out_dir/plan.json`` (one level) and ``out_dir/summary.txt`` (folder created if missing).

    A relative mesh path (taken from the working folder) is written relative to ``out_dir``.
    Both documents are built before either file is written; each file is replaced atomically.
    Returns the written paths by name ("plan", "summary").
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {out}: {exc}") from exc
    source = vertebra.source
    if source is not None and not os.path.isabs(source):
        source = os.path.relpath(source, out)
    mesh = mesh_reference(source, vertebra.input_units, vertebra.patient_frame, len(vertebra.mesh.faces))
    document = plan_document({level_plan.level: level_to_dict(level_plan, vertebra, mesh)})
    text = summary_text(level_plan, vertebra)
    plan_path, summary_path = write_files_atomic({out / "plan.json": json.dumps(document, indent=2).encode("utf-8"),
                                                  out / "summary.txt": text.encode("utf-8")})
    return {"plan": plan_path, "summary": summary_path}


# -------------------------------------------------------------------------------------------------
# Reading


@dataclass
class LoadedPlan:
    """One level of a plan file reloaded: the vertebra, the file's landmarks, its planned options
    (mm, model coordinates), the device, rules and the recommended (approach, side)."""

    level: str
    vertebra: object
    landmarks: Landmarks
    options: list[PlanOption]
    device: DeviceProfile
    rules: RuleSet
    recommended: tuple[str, str] | None

    def planner(self) -> InteractivePlanner:
        """An interactive planner on these options (safety zones built here, once)."""
        return InteractivePlanner(self.vertebra, self.landmarks, self.options, self.device, self.rules)


def read_plan(plan_file: str | os.PathLike, level: str | None = None) -> LoadedPlan:
    """Read one level of a ``plan.json`` written by ``bvn-plan plan`` or ``bvn-plan case``
    (``level``: default the first level with a planned path), reload its mesh (see
    :func:`mesh_reference`) with the file's landmarks: the anatomy is not found again.
    Points of the file (input frame and units) become model coordinates (mm)."""
    plan_file = Path(plan_file)
    try:
        doc = json.loads(plan_file.read_text())
    except OSError as exc:
        raise InputError(f"cannot read the plan file {plan_file}: {exc}") from exc
    except ValueError as exc:
        raise InputError(f"{plan_file} is not a bvn-plan plan.json: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
        version = doc.get("format_version") if isinstance(doc, dict) else None
        raise InputError(f"{plan_file} is not a bvn-plan plan.json of format_version {FORMAT_VERSION} (it has "
                         f"{version}): write it again with 'bvn-plan plan' or 'bvn-plan case'")
    levels = doc.get("levels")
    name, entry = _choose_level(levels if isinstance(levels, dict) else {}, level, plan_file)
    problems = schema_problems({**doc, "levels": {name: entry}})  # the level read (a second per level)
    if problems:
        raise InputError(f"{plan_file} does not follow the plan schema (docs/plan_json.md): " + "; ".join(problems) +
                         ". Write it again with 'bvn-plan plan' or 'bvn-plan case', or fix those fields")
    try:
        vertebra = _load_vertebra(entry, plan_file.parent)
        unit_mm = vertebra.scale_to_mm
        landmarks = dataclasses.replace(Landmarks.from_dict(entry["landmarks"], unit_mm),
                                        **geometry_from_dict(entry["anatomy_geometry"], unit_mm))
        options = [_option(item, unit_mm) for item in entry["approaches"] if item.get("plan") is not None]
        rec = entry["recommendation"]
        return LoadedPlan(name, vertebra, landmarks, options, DeviceProfile.from_dict(entry["device"]),
                          RuleSet(tuple(Rule(**r) for r in entry["rules"])),
                          (rec["approach"], rec["side"]) if rec else None)
    except (KeyError, TypeError, ValueError, zlib.error) as exc:
        raise InputError(f"{plan_file}: level {name} is not a readable bvn-plan plan: {exc!r}") from exc


def _choose_level(levels: dict, level: str | None, plan_file: Path) -> tuple[str, dict]:
    """The requested level's record, or the first one with a planned path."""
    if level is None:
        planned = [n for n, e in levels.items() if isinstance(e, dict) and isinstance(e.get("approaches"), list)
                   and any(isinstance(a, dict) and a.get("plan") for a in e["approaches"])]
        level = (planned or list(levels) or [None])[0]
        if level is None:
            raise InputError(f"{plan_file} holds no level")
    level = normalise_level(level)
    if level not in levels:
        raise InputError(f"{plan_file} holds no level {level}; it holds {', '.join(levels)}")
    entry = levels[level]
    if not isinstance(entry, dict):
        raise InputError(f"{plan_file}: level {level} is not a level record (docs/plan_json.md)")
    if "approaches" not in entry:
        why = entry.get("error") or entry.get("status") or "not planned"
        raise InputError(f"{plan_file}: level {level} has no plan ({why})")
    return level, entry


def _load_vertebra(entry: dict, folder: Path):
    """The level's surface from its ``mesh`` record, in the frame and units of the level's points."""
    mesh, coordinates = entry["mesh"], entry["coordinates"]
    if mesh["path"] is None:
        raise InputError(f"level {entry['level']} was planned on a surface with no file ({entry['source']}): "
                         "nothing to reload")
    path = folder / mesh["path"]
    if not path.is_file():
        raise InputError(f"the plan's mesh {path} was not found (mesh.path {mesh['path']!r} is taken relative to "
                         f"the plan file's folder): put the mesh there or fix mesh.path in the file")
    frame = coordinates["frame"] if coordinates["frame"] in ("RAS", "LPS") else None
    vertebra = Vertebra.load(path, level=entry["level"], units=mesh["units"], frame=mesh["frame"])
    if len(vertebra.mesh.faces) != mesh["faces"]:
        raise InputError(f"the plan's mesh {path} has {len(vertebra.mesh.faces)} faces, the plan was made on "
                         f"{mesh['faces']}: not the planned surface")
    if (vertebra.patient_frame, vertebra.input_units) == (frame, coordinates["units"]):
        return vertebra
    if None in (vertebra.patient_frame, frame) and vertebra.patient_frame != frame:
        raise InputError(f"the plan's mesh {path} is in frame {vertebra.patient_frame}, its points in {frame}: "
                         "cannot tell how the two lie")
    surface = trimesh.Trimesh(convert_points(vertebra.mesh.vertices, vertebra.patient_frame, frame),
                              vertebra.mesh.faces, process=False)  # mm; RAS <-> LPS is a rotation
    return Vertebra(surface, entry["level"], frame, coordinates["units"], entry["source"], vertebra.notes)


def _option(item: dict, unit_mm: float) -> PlanOption:
    path = item["plan"]["path"]
    polyline = np.asarray(path["polyline"], float) * unit_mm
    arc_start = None if path["arc_start"] is None else np.asarray(path["arc_start"], float) * unit_mm
    return PlanOption(item["approach"], item["side"], polyline[0], arc_start, polyline[-1], item["plan"]["verdict"])
