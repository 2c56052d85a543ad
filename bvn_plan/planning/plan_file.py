"""Writing a level's plan: ``plan.json`` (machine-readable) and ``summary.txt`` (for people).

Every point in the output is in the **input's frame and units** (``Vertebra.to_input_units`` of
the model coordinates), and the file names that frame. Lengths, depths and clearances stay in
millimetres and angles in degrees, as the file says. Both files are written atomically (temp file
and rename), both replaced or neither.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from .. import __version__
from ..atomic import write_files_atomic
from ..device import SOURCES
from ..errors import InputError
from .path_numbers import describe
from .planner import LevelPlan, PathPlan

DISCLAIMER = "bvn-plan is a research and teaching aid, not a medical device; every plan needs a clinician's review."

#: Keys of PathPlan.numbers that are points (converted to the input's frame and units).
POINT_KEYS = ("entry_point", "bone_entry_point", "tip", "target_terminus", "arc_start")


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
        "terminus_depth_in_lesion_mm": plan.coverage_mm,
        "min_clearance_beyond_margin_mm": plan.min_slack_mm,
        "score_mm": plan.score_mm,
        "clearances_mm": {key: {"clearance_mm": c.clearance_mm, "where": _points(vertebra, c.point),
                                "depth_along_path_mm": c.depth_mm}
                          for key, c in check.clearances.items()},
        "rules": [dataclasses.asdict(r) for r in check.rules],
        "intraosseous": check.intraosseous,
        "medial_breach_mm": check.medial_breach_mm,
        "gertzbein_robbins_grade": check.gertzbein_robbins_grade,
        "numbers": numbers,
    }
    return out


def plan_to_dict(level_plan: LevelPlan, vertebra) -> dict:
    """The whole plan as a JSON-ready dict, points in the input's frame and units."""
    lm = level_plan.landmarks
    frame = lm.frame
    rec = level_plan.recommendation
    return {
        "tool": f"bvn-plan {__version__}",
        "disclaimer": DISCLAIMER,
        "source": vertebra.source,
        "level": level_plan.level,
        "coordinates": {
            "frame": frame_name(vertebra),
            "units": vertebra.input_units,
            "lengths": "mm (depths, clearances, radii, distances)",
            "angles": "degrees, in the vertebra frame (x patient right, y anterior, z superior) unless named 'to_endplate'",
        },
        "vertebra_frame": {"origin": _points(vertebra, frame.origin), "right": frame.right.tolist(),
                           "anterior": frame.anterior.tolist(), "superior": frame.superior.tolist(),
                           "handedness_known": frame.handedness_known},
        "bvn_terminus": _points(vertebra, lm.bvn_terminus),
        "bvn_terminus_placement": dataclasses.asdict(lm.terminus),
        "device": level_plan.device.to_dict(),
        "device_sources": dict(SOURCES),
        "rules": [dataclasses.asdict(r) for r in level_plan.rules.rules],
        "planner_settings": dataclasses.asdict(level_plan.settings),
        "recommendation": None if rec is None else {"approach": rec.approach, "side": rec.side},
        "recommendation_reasons": list(level_plan.recommendation_reasons),
        "approaches": [{
            "approach": r.approach,
            "side": r.side,
            "status": "planned" if r.plan is not None else "no safe plan",
            "blocked_by": list(r.blocked),
            "candidates_screened": r.candidates,
            "plan": _plan_dict(r.plan, vertebra) if r.plan is not None else None,
            "alternatives": [_plan_dict(a, vertebra) for a in r.alternatives],
        } for r in level_plan.results],
        "notes": list(vertebra.notes) + list(level_plan.notes) + list(lm.notes),
    }


def summary_text(level_plan: LevelPlan, vertebra) -> str:
    """A readable summary: recommendation, then every approach and side with its verdict and numbers."""
    units = vertebra.input_units
    lines = [f"bvn-plan {__version__}: {level_plan.level} from {vertebra.source}", DISCLAIMER,
             f"Points in {frame_name(vertebra)}, {units}; lengths mm; angles degrees.", ""]
    rec = level_plan.recommendation
    lines.append("RECOMMENDATION: " + (f"{rec.side} {rec.approach}" if rec else "none: no safe plan"))
    lines += [f"  - {r}" for r in level_plan.recommendation_reasons]
    lines.append("")

    def fmt(point):
        return "(" + ", ".join(f"{x:.5g}" for x in vertebra.to_input_units(np.asarray(point, float))) + f") {units}"

    for r in level_plan.results:
        head = f"{r.side.upper()} {r.approach}"
        if r.plan is None:
            lines.append(f"{head}: NO SAFE PLAN ({r.candidates} candidates screened)")
            lines += [f"    blocked: {b}" for b in r.blocked]
            lines.append("")
            continue
        p, n = r.plan, r.plan.numbers
        lines.append(f"{head}: verdict {p.verdict.upper()}")
        lines.append(f"    entry {fmt(n['entry_point'])}; bone entry {fmt(n['bone_entry_point'])}; tip {fmt(n['tip'])}")
        lines.append(f"    tip {p.tip_to_terminus_mm:.1f} mm from the terminus; terminus {p.coverage_mm:.1f} mm inside the "
                     f"lesion; lesion {p.check.clearances['spinal_canal:lesion'].clearance_mm:.1f} mm from the canal; "
                     f"smallest clearance beyond its margin {p.min_slack_mm:.1f} mm")
        depths = (f"    depths: skin side to bone {n['depth_skin_side_to_bone_entry_mm']:.1f} mm, introducer in bone "
                  f"{n['depth_introducer_in_bone_mm']:.1f} mm")
        if "arc_angle_deg" in n:
            depths += f", cannula arc {n['depth_arc_mm']:.1f} mm (R {n['arc_radius_mm']:.0f} mm, {n['arc_angle_deg']:.0f} deg)"
        lines.append(depths)
        lines.append(f"    angles: medial {n['introducer_medial_angle_deg']:.1f}, cranio-caudal "
                     f"{n['introducer_craniocaudal_angle_deg']:.1f} (to the superior endplate: "
                     f"{n['introducer_medial_angle_to_endplate_deg']:.1f}, {n['introducer_craniocaudal_angle_to_endplate_deg']:.1f})")
        lines.append(f"    fluoroscopy: {describe(n)}")
        lines.append(f"    Gertzbein-Robbins grade {p.check.gertzbein_robbins_grade}; "
                     f"{'intraosseous' if p.check.intraosseous else 'LEAVES THE BONE'} from bone entry to tip")
        lines += [f"    - {reason}" for reason in p.check.reasons]
        for a in r.alternatives:
            lines.append(f"    runner-up: verdict {a.verdict}, tip {a.tip_to_terminus_mm:.1f} mm from the terminus, "
                         f"smallest clearance beyond its margin {a.min_slack_mm:.1f} mm, medial "
                         f"{a.numbers['introducer_medial_angle_deg']:.1f} deg, cranio-caudal "
                         f"{a.numbers['introducer_craniocaudal_angle_deg']:.1f} deg")
        lines.append("")
    notes = list(vertebra.notes) + list(level_plan.notes) + list(level_plan.landmarks.notes)
    if notes:
        lines.append("NOTES")
        lines += [f"  - {note}" for note in notes]
    return "\n".join(lines) + "\n"


def write_plan(level_plan: LevelPlan, vertebra, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``out_dir/plan.json`` and ``out_dir/summary.txt`` (folder created if missing).

    Both documents are built before either file is written; each file is replaced atomically.
    Returns the written paths by name ("plan", "summary").
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {out}: {exc}") from exc
    document = plan_to_dict(level_plan, vertebra)
    text = summary_text(level_plan, vertebra)
    plan_path, summary_path = write_files_atomic({out / "plan.json": json.dumps(document, indent=2).encode("utf-8"),
                                                  out / "summary.txt": text.encode("utf-8")})
    return {"plan": plan_path, "summary": summary_path}
