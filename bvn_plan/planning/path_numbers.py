"""The clinician's numbers of one trajectory: points, depths, angles and fluoroscopic positions.

Angles are degrees in the vertebra frame (x patient right, y anterior, z superior):

* medial (transverse) angle: in the axial projection, the angle of the direction from the
  anterior axis, positive toward the midline (the side is taken from where the path starts);
* cranio-caudal (sagittal) angle: in the sagittal projection, positive cranial;
* "to the endplate" variants use the superior endplate instead of the frame: the medial angle
  measured inside the endplate plane and the tilt out of that plane (the angle a C-arm squared
  on the superior endplate shows).

Fluoroscopic positions: on the AP view, the tip's distance from the midline (mm and % of the half
body width, positive toward the entry side) and its height between the endplates (% from the
inferior endplate); on the lateral view, the tip's depth as % of the AP body depth forward from the
posterior wall at the midline, and its height. Lengths mm, points mm in model coordinates.

Skin entry: ``SKIN_TO_BONE_MM`` [A] before the bone entry along the introducer line (the mesh does
not show the skin; ``skin_entry_source`` says so), its distance from the mid-sagittal plane, its
cranio-caudal offset from the tip (vertebra frame, positive cranial) and the needle length from the
skin to the tip.
"""

from __future__ import annotations

import numpy as np

from .. import text
from ..landmarks import Landmarks
from ..paths import InstrumentPath
from .approach import SKIN_TO_BONE_MM, introducer_angles
from .safety import CheckResult


def _endplateintroducer_angles(direction: np.ndarray, lm: Landmarks, side_sign: float) -> tuple[float, float]:
    n = lm.superior_endplate.normal / np.linalg.norm(lm.superior_endplate.normal)
    anterior = lm.frame.anterior - (lm.frame.anterior @ n) * n
    anterior /= np.linalg.norm(anterior)
    right = np.cross(anterior, n)
    tilt = float(np.degrees(np.arcsin(np.clip(direction @ n, -1, 1))))
    medial = float(np.degrees(np.arctan2(-side_sign * (direction @ right), direction @ anterior)))
    return medial, tilt


def body_measures(lm: Landmarks) -> dict[str, float]:
    """Posterior-wall and anterior-cortex positions on the anterior axis, body depth and half width
    (mm, vertebra frame), from the landmarks."""
    wall = float(lm.frame.to_local(lm.basivertebral_foramen)[1])
    depth = float(lm.morphometry.get("body_depth_mm", np.nan))
    half_width = np.nan
    if lm.body_mesh is not None:
        half_width = float(np.ptp(lm.frame.to_local(lm.body_mesh.vertices)[:, 0]) / 2)
    elif np.isfinite(lm.morphometry.get("body_width_mm", np.nan)):
        half_width = float(lm.morphometry["body_width_mm"] / 2)
    return {"posterior_wall_y_mm": wall, "body_depth_mm": depth, "body_half_width_mm": half_width}


def height_fraction(point: np.ndarray, lm: Landmarks) -> float:
    """Height of ``point`` between the endplates: 0 at the inferior, 1 at the superior endplate plane."""
    below = -float(lm.inferior_endplate.signed_distance(point[None])[0])
    above = -float(lm.superior_endplate.signed_distance(point[None])[0])
    return below / (below + above)


def path_numbers(path: InstrumentPath, lm: Landmarks, check: CheckResult, skin=None) -> dict:
    """The clinician's numbers of ``path`` (mm, model coordinates) judged by ``check``; ``skin``:
    the :class:`bvn_plan.planning.zones.SkinSurface` (subcutaneous fat or a CT's body) that places
    the skin entry, None to assume it SKIN_TO_BONE_MM before the bone.

    Returns a JSON-ready dict: points (model coordinates, mm), depths (mm along the path),
    angles (degrees) and fluoroscopic positions (mm and %), named as in the module docstring.
    """
    frame = lm.frame
    start_local = frame.to_local(path.start)
    side_sign = 1.0 if start_local[0] >= 0 else -1.0
    if path.arc_start is not None:
        introducer_dir = (path.arc_start - path.start) / np.linalg.norm(path.arc_start - path.start)
        arc_length = float(np.radians(path.arc.angle_deg) * path.arc.radius_mm)
        straight_length = float(np.linalg.norm(path.arc_start - path.start))
    else:
        introducer_dir = path.tip_direction
        arc_length = 0.0
        straight_length = path.length
    bone_entry_depth = float(check.bone_entry_depth_mm)
    medial, cc = introducer_angles(frame.direction_to_local(introducer_dir), side_sign)
    medial_ep, cc_ep = _endplateintroducer_angles(introducer_dir, lm, side_sign)
    tip_medial, tip_cc = introducer_angles(frame.direction_to_local(path.tip_direction), side_sign)
    body = body_measures(lm)
    tip_local = frame.to_local(path.tip)
    tip_height = height_fraction(path.tip, lm)
    numbers = {
        "entry_point": path.start.tolist(),
        "bone_entry_point": list(check.bone_entry),
        "tip": path.tip.tolist(),
        "target_terminus": np.asarray(lm.bvn_terminus, float).tolist(),
        "tip_to_terminus_mm": float(np.linalg.norm(path.tip - lm.bvn_terminus)),
        "depth_skin_side_to_bone_entry_mm": bone_entry_depth,
        "depth_introducer_in_bone_mm": straight_length - bone_entry_depth,
        "depth_arc_mm": arc_length,
        "depth_total_mm": path.length,
        "depth_bone_entry_to_tip_mm": path.length - bone_entry_depth,
        "introducer_medial_angle_deg": medial,
        "introducer_craniocaudal_angle_deg": cc,
        "introducer_medial_angle_to_endplate_deg": medial_ep,
        "introducer_craniocaudal_angle_to_endplate_deg": cc_ep,
        "tip_medial_angle_deg": tip_medial,
        "tip_craniocaudal_angle_deg": tip_cc,
        "ap_tip_from_midline_mm": float(side_sign * tip_local[0]),
        "ap_tip_from_midline_percent_half_width": float(100 * side_sign * tip_local[0] / body["body_half_width_mm"]),
        "tip_height_percent": float(100 * tip_height),
        "lateral_tip_depth_percent": float(100 * (tip_local[1] - body["posterior_wall_y_mm"]) / body["body_depth_mm"]),
        "lateral_tip_past_posterior_wall_mm": float(tip_local[1] - body["posterior_wall_y_mm"]),
    }
    bone_entry = np.asarray(check.bone_entry, float)
    surface = skin
    skin = None if surface is None else surface.entry(bone_entry, introducer_dir)
    if skin is None:
        skin = bone_entry - SKIN_TO_BONE_MM * introducer_dir
        source = (f"assumed: {SKIN_TO_BONE_MM:.0f} mm before the bone entry along the introducer line "
                  "[A, planning.approach.SKIN_TO_BONE_MM]; no subcutaneous-fat label or CT given")
    else:
        source = f"on the skin: {surface.source} on the introducer line"
    numbers.update({
        "skin_entry_point": skin.tolist(),
        "skin_entry_source": source,
        "skin_entry_from_midline_mm": float(abs(lm.midsagittal_plane.signed_distance(skin[None])[0])),
        "skin_entry_craniocaudal_from_tip_mm": float(frame.to_local(skin)[2] - tip_local[2]),
        "needle_length_skin_to_tip_mm": float(np.linalg.norm(bone_entry - skin) + path.length - bone_entry_depth),
    })
    if path.arc_start is not None:
        arc_local = frame.to_local(path.arc_start)
        numbers.update({
            "arc_start": path.arc_start.tolist(),
            "arc_start_depth_from_bone_entry_mm": straight_length - bone_entry_depth,
            "arc_start_past_posterior_wall_mm": float(arc_local[1] - body["posterior_wall_y_mm"]),
            "lateral_arc_start_depth_percent": float(100 * (arc_local[1] - body["posterior_wall_y_mm"]) / body["body_depth_mm"]),
            "arc_radius_mm": float(path.arc.radius_mm),
            "arc_angle_deg": float(path.arc.angle_deg),
        })
    return numbers


def describe(numbers: dict) -> str:
    """The fluoroscopic positions in one sentence, e.g. for the summary (no "-0")."""
    num = text.number
    ap = numbers["ap_tip_from_midline_mm"]
    where = "at the midline" if abs(ap) < 2.0 else (f"{num(abs(ap))} mm {'toward the entry side' if ap > 0 else 'past the midline'}")
    sentence = (f"AP: tip {where} ({num(numbers['ap_tip_from_midline_percent_half_width'], 0)}% of the half width), "
                f"{num(numbers['tip_height_percent'], 0)}% of the body height; lateral: tip at "
                f"{num(numbers['lateral_tip_depth_percent'], 0)}% of the body depth from the posterior wall")
    if "arc_start_past_posterior_wall_mm" in numbers:
        sentence += (f", cannula starts bending {num(numbers['arc_start_past_posterior_wall_mm'])} mm past the posterior "
                     f"wall ({num(numbers['lateral_arc_start_depth_percent'], 0)}% of the depth)")
    return sentence
