"""The ``bvn-plan`` command line. Each subcommand has its own ``--help``.

Exit codes: 0 success, 2 bad input, 3 anatomy not understood, 4 no safe plan, 1 internal error.
"""

from __future__ import annotations

import functools
import json
import sys
import warnings

import click

from .errors import BvnPlanError
from .mesh_io import UNITS_TO_MM, BvnPlanWarning

UNITS = click.Choice(sorted(UNITS_TO_MM))
FRAMES = click.Choice(["RAS", "LPS"], case_sensitive=False)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, BvnPlanWarning):
        click.secho(f"warning: {message}", fg="yellow", err=True)
    else:
        click.echo(warnings.formatwarning(message, category, filename, lineno, line), err=True, nl=False)


def friendly_errors(command):
    """Turn bvn-plan's typed errors into one line on stderr and a distinct exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        warnings.showwarning = _show_warning
        try:
            return command(*args, **kwargs)
        except BvnPlanError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bvn-plan")
def main():
    """Plan basivertebral nerve ablation on 3D vertebra anatomy.

    A research and teaching aid, not a medical device. Units are millimetres.
    """


@main.command()
@click.argument("mesh", type=click.Path(dir_okay=False))
@click.option("--level", help="Vertebral level, e.g. L4 (L1-L5, S1; L6 if transitional).")
@click.option("--units", type=UNITS, help="Units of the file's coordinates (detected from size if omitted).")
@click.option("--frame", type=FRAMES, help="Patient frame of the file's coordinates, if known.")
@friendly_errors
def info(mesh, level, units, frame):
    """Load a vertebra mesh, check it and print what was read (size, units, repairs)."""
    from .vertebra import Vertebra

    v = Vertebra.load(mesh, level=level, units=units, frame=frame)
    m = v.mesh
    click.echo(json.dumps({
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
    }, indent=2))


@main.command("labelmap")
@click.argument("labelmap", type=click.Path(exists=True))
@click.option("--level", "levels", multiple=True, help="Level(s) to mesh, e.g. --level L4 --level L5 (default: every L1-L6/S1 present).")
@click.option("--scheme", type=click.Choice(["auto", "totalseg", "verse"]), default="auto", show_default=True,
              help="Label numbering when the file carries no label names.")
@click.option("--smoothing", type=click.IntRange(0), default=20, show_default=True,
              help="Windowed-sinc smoothing iterations (0 = raw marching-cubes staircase).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write <level>.stl (RAS mm) here.")
@friendly_errors
def labelmap_command(labelmap, levels, scheme, smoothing, out_dir):
    """Mesh vertebra levels of a NIfTI labelmap (TotalSegmentator, VerSe, or a folder of masks)
    in RAS mm, check the level labelling and print a summary."""
    import os

    from .labelmap import load_labelmap

    lm = load_labelmap(labelmap, scheme=scheme)
    wanted = list(levels) or lm.levels()
    findings = lm.plausibility(wanted)
    summary = {"source": lm.source, "affine_determinant_sign": lm.determinant_sign,
               "labelled_levels": lm.spine_levels(), "levels": {},
               "findings": [{"kind": f.kind, "levels": list(f.levels), "message": f.message} for f in findings]}
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    for level in wanted:
        v = lm.vertebra(level, smoothing=smoothing)
        entry = {"source": v.source, "frame": "RAS", "units": "mm", "volume_mm3": round(float(v.mesh.volume), 1),
                 "voxel_volume_mm3": round(lm.voxel_count(level) * lm.voxel_volume_mm3, 1),
                 "centroid_ras_mm": [round(float(x), 2) for x in v.mesh.center_mass],
                 "watertight": bool(v.mesh.is_watertight), "notes": v.notes}
        if out_dir:
            entry["file"] = os.path.join(out_dir, f"{v.level}.ply")
            v.mesh.export(entry["file"])
        summary["levels"][v.level] = entry
    click.echo(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
