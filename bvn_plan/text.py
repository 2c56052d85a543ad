"""How bvn-plan's numbers read for people (console, summary.txt, HTML report): fixed decimals
per kind (mm 1, degrees 0 or 1, fractions 2), never "-0", never exponent notation, points in mm,
and plain-word labels for the field names of plan.json (docs/plan_json.md)."""

from __future__ import annotations

import math

#: Plain words for field names whose snake_case does not read well; every other name is read by
#: :func:`label` (underscores to spaces, the unit suffix to "(mm)", "(degrees)", ...).
LABELS = {
    "entry_point": "Path start, skin side",
    "bone_entry_point": "Bone entry",
    "tip": "Probe tip",
    "target_terminus": "Target (BVN terminus)",
    "bvn_terminus": "BVN terminus (target)",
    "basivertebral_foramen": "Basivertebral foramen",
    "arc_start": "Cannula starts bending at",
    "tip_to_terminus_mm": "Tip to terminus (mm)",
    "depth_skin_side_to_bone_entry_mm": "Soft-tissue part of the drawn path, to bone entry (mm)",
    "depth_introducer_in_bone_mm": "Straight introducer in bone (mm)",
    "depth_arc_mm": "Curved cannula arc length (mm)",
    "depth_total_mm": "Whole drawn path length (mm)",
    "depth_bone_entry_to_tip_mm": "Bone entry to tip (mm)",
    "introducer_medial_angle_deg": "Introducer medial angle (degrees, + toward the midline)",
    "introducer_craniocaudal_angle_deg": "Introducer cranio-caudal angle (degrees, + cranial)",
    "introducer_medial_angle_to_endplate_deg": "Introducer medial angle in the superior endplate plane (degrees)",
    "introducer_craniocaudal_angle_to_endplate_deg": "Introducer tilt to the superior endplate (degrees, + cranial)",
    "tip_medial_angle_deg": "Direction at the tip, medial (degrees, + toward the midline)",
    "tip_craniocaudal_angle_deg": "Direction at the tip, cranio-caudal (degrees, + cranial)",
    "ap_tip_from_midline_mm": "AP view: tip from the midline (mm, + toward the entry side)",
    "ap_tip_from_midline_percent_half_width": "AP view: tip from the midline (% of the half body width)",
    "tip_height_percent": "Tip height between the endplates (% from the inferior)",
    "lateral_tip_depth_percent": "Lateral view: tip depth (% of the body depth from the posterior wall)",
    "lateral_tip_past_posterior_wall_mm": "Lateral view: tip in front of the posterior wall (mm)",
    "arc_start_depth_from_bone_entry_mm": "Cannula bends after, in bone (mm)",
    "arc_start_past_posterior_wall_mm": "Cannula bends in front of the posterior wall (mm)",
    "lateral_arc_start_depth_percent": "Lateral view: where the cannula bends (% of the body depth)",
    "arc_radius_mm": "Cannula arc radius (mm)",
    "arc_angle_deg": "Cannula arc angle (degrees)",
    "gertzbein_robbins_grade": "Medial breach grade (Gertzbein-Robbins, 0 = none)",
    "min_clearance_beyond_margin_mm": "Smallest clearance beyond its margin (mm)",
    "terminus_depth_in_lesion_mm": "Terminus depth inside the lesion (mm)",
    "odi": "Oswestry Disability Index (0-100)",
    "nrs": "Pain, numeric rating scale (0-10)",
    "t_score": "T-score",
}
_UNITS = (("_percent_half_width", " (% of the half width)"), ("_percent", " (%)"), ("_mm3", " (mm³)"), ("_mm", " (mm)"),
          ("_deg", " (degrees)"), ("_days", " (days)"), ("_months", " (months)"), ("_hu", " (HU)"), ("_c", " (°C)"),
          ("_s", " (s)"))


def label(key: str) -> str:
    """Plain words for a field name: :data:`LABELS`, else 'snake_case_mm' -> 'Snake case (mm)';
    a dotted name ('bone_density.t_score') reads part by part ('Bone density: T-score')."""
    if "." in key:
        first, *rest = key.split(".")
        rest = [LABELS.get(part) or (label(part) if part[:1].isupper() else label(part)[:1].lower() + label(part)[1:])
                for part in rest]
        return ": ".join([label(first), *rest])
    if key in LABELS:
        return LABELS[key]
    unit = ""
    for suffix, words in _UNITS:
        if key.endswith(suffix):
            key, unit = key[: -len(suffix)], words
            break
    words = key.replace("_", " ").strip()
    return (words[:1].upper() + words[1:] + unit) if words else key


def number(value, digits: int = 1) -> str:
    """``value`` with ``digits`` decimals, never "-0" (a value that rounds to zero is "0"),
    never exponent notation; "n/a" for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, str)):
        return str(value)
    rounded = round(float(value), digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{rounded:.{digits}f}"


def signed(value, digits: int = 1) -> str:
    """:func:`number` with its sign always written ("+3", "-2"), except for zero ("0")."""
    text = number(value, digits)
    return text if text.startswith("-") or text == "n/a" or float(text) == 0 else "+" + text


def point(point_mm, digits: int = 1) -> str:
    """A point given in mm as '(x, y, z) mm'."""
    return "(" + ", ".join(number(x, digits) for x in point_mm) + ") mm"


def parameter(item) -> str:
    """A parameter as it was set: up to 3 decimals, trailing zeros dropped (1.65, 900, 0.35)."""
    if isinstance(item, float):
        return number(item, 3).rstrip("0").rstrip(".")
    if isinstance(item, (list, tuple)):
        return ", ".join(parameter(x) for x in item)
    return value(item)


def value(item, digits: int = 1) -> str:
    """Any field value for people: numbers by :func:`number`, lists joined, None "not given",
    True/False "yes"/"no"."""
    if item is None:
        return "not given"
    if isinstance(item, bool):
        return "yes" if item else "no"
    if isinstance(item, (list, tuple)):
        return ", ".join(value(x, digits) for x in item) if item else "none"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        return number(item, digits)
    return str(item)
