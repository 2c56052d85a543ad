"""Vertebral levels and their morphometry priors (mm, degrees).

The numbers are the synthetic generator's defaults and the anatomy recogniser's plausibility
priors. Sources (see ``docs/sources.md`` and the README):

* L5 body heights, endplate depth, pedicle height/width, canal AP/width: CT series quoted in
  docs/sources.md as [V, IJSS].
* Pedicle widths L1-L4 and transverse angles L1-L5: Zindrick/Panjabi values, marked [A] in
  docs/sources.md (assumptions, from memory of the tables).
* Interpedicular distance L1 20.4 -> L5 26.0 mm [V]; canal smallest at L3 [V, Griffith 2016].
* Endplate width 40 (L1) -> 50 (L5), depth 33-35 mm [A].
* S1: pedicle height 13.6 mm, transverse angle 41-43 deg, sagittal 19 deg [V, Okutan 2003]; S1
  pedicle width 22.3 +- 2.7 mm (30 dry sacra: 22.5 +- 2.6 female, 22.2 +- 2.8 male) [V, Okutan O et al.
  2003, Neuroanatomy 2:16-19]: the S1 pedicle joins the body to the ala, wide and short. The
  generator keeps 18 mm (its pedicle tube meets the ala when wider): see ``reference``.
* Everything else (body heights L1-L4, canal depths L1-L4, pedicle sagittal angles, S1 body) [A].
* T12 (a level the anatomy accepts, not a treated one; see ``THORACIC_LEVELS``): pedicle width
  8.3 +- 1.8 mm [V, Kaur 2016, CT]; transverse angle 4 deg [V, Chughtai, Pak J Neurol Surg, CT: 3.99 +- 2.16];
  canal AP depth 16.7 +- 1.2 mm [V, Korean J Spine 2012, CT]; anterior/posterior body height ratio
  0.90 [V, Surg Radiol Anat 2011;33:223, MRI]; body width, depth, heights, pedicle height, sagittal angle and
  interpedicular distance [A] (docs/sources.md, "T12 priors").

Standard deviations default to about 10% of the mean where no SD is published, and to at least
``ANGLE_MIN_SD_DEG`` for angles (whose mean may be near 0) [A].

Angles: ``pedicle_transverse_angle_deg`` is positive when the pedicle axis converges medially going
anteriorly; ``pedicle_sagittal_angle_deg`` is positive when it rises (cranially) going anteriorly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

from .errors import InputError

LUMBAR_LEVELS = ("L1", "L2", "L3", "L4", "L5")
#: The levels the level identity scores a vertebra against, the synthetic generator makes and a
#: case's numbering is judged on.
LEVELS = LUMBAR_LEVELS + ("S1",)
#: Thoracic levels the anatomy and the checker accept (beside L1: the aorta, vena cava, psoas and
#: kidneys lie beside T12 too), never treated (see TREATABLE_LEVELS) and not identity candidates.
THORACIC_LEVELS = ("T12",)
#: A transitional sixth lumbar vertebra is accepted and treated with L5's priors.
TRANSITIONAL = {"L6": "L5"}
#: Levels on the Intracept label (FDA K153272): L3-S1.
TREATABLE_LEVELS = ("L3", "L4", "L5", "S1")
#: Anatomical variants: a thirteenth thoracic and a sixth lumbar vertebra.
VARIANT_LEVELS = ("T13", "L6")
#: Every level a vertebra may be given, superior to inferior (the transitional L6 in its place).
ACCEPTED_LEVELS = THORACIC_LEVELS + LUMBAR_LEVELS + ("L6", "S1")
#: Every vertebra a labelmap may name, from superior to inferior, the variants in their places.
SPINE_ORDER = (tuple(f"C{i}" for i in range(1, 8)) + tuple(f"T{i}" for i in range(1, 13)) + ("T13",)
               + LUMBAR_LEVELS + ("L6", "S1"))


def normalise_level(level: str) -> str:
    """Return a canonical level name (``"L4"``, ``"S1"``, ``"L6"``, ``"T12"``) or raise :class:`InputError`."""
    text = str(level).strip().upper().replace("VERTEBRAE_", "")
    match = re.fullmatch(r"([TLS])\s*([0-9]{1,2})", text)
    name = "".join(match.groups()) if match else text
    if name in ACCEPTED_LEVELS:
        return name
    raise InputError(
        f"unknown vertebral level {level!r}: use one of {', '.join(THORACIC_LEVELS + LEVELS)} (or L6 for a "
        "transitional vertebra)"
    )


@dataclass(frozen=True)
class LevelMorphometry:
    """Typical dimensions of one level (mm, degrees). Angles are positive medial / cranial."""

    level: str
    body_width_mm: float            # endplate transverse width
    body_depth_mm: float            # endplate AP depth (mid-sagittal)
    body_height_anterior_mm: float
    body_height_posterior_mm: float
    pedicle_width_mm: float         # transverse isthmus width (outer cortex)
    pedicle_height_mm: float        # cranio-caudal isthmus height
    pedicle_transverse_angle_deg: float  # medial convergence of the pedicle axis, degrees
    pedicle_sagittal_angle_deg: float    # cranio-caudal tilt of the pedicle axis, degrees
    canal_width_mm: float           # interpedicular distance
    canal_depth_mm: float           # mid-sagittal AP depth of the vertebral foramen
    relative_sd: float = 0.10    # SD as a fraction of the mean where none is published [A]

    def sd(self, name: str) -> float:
        """Standard deviation used for the field ``name`` (published where known)."""
        published = _PUBLISHED_SD.get(self.level, {})
        if name in published:
            return published[name]
        sd = self.relative_sd * abs(getattr(self, name))
        return max(sd, ANGLE_MIN_SD_DEG) if name.endswith("_angle_deg") else sd

    def reference(self, name: str) -> tuple[float, float]:
        """(mean, SD) the anatomy's plausibility check compares a measured ``name`` with: the
        published values where they differ from the generator's default (_PUBLISHED_REFERENCE),
        otherwise the default and :meth:`sd`."""
        published = _PUBLISHED_REFERENCE.get(self.level, {})
        return published[name] if name in published else (getattr(self, name), self.sd(name))

    def with_overrides(self, **overrides: float) -> "LevelMorphometry":
        unknown = set(overrides) - {f.name for f in fields(self)}
        if unknown:
            raise InputError(f"unknown morphometry parameter(s): {', '.join(sorted(unknown))}")
        return replace(self, **overrides)


#: Smallest SD (degrees) of an angle without a published SD [A].
ANGLE_MIN_SD_DEG = 3.0

_PUBLISHED_SD = {
    "T12": {"pedicle_width_mm": 1.8, "canal_depth_mm": 1.2},
    "L5": {
        "body_height_anterior_mm": 1.9, "body_height_posterior_mm": 1.9, "body_depth_mm": 3.5,
        "pedicle_height_mm": 1.9, "pedicle_width_mm": 2.3, "canal_depth_mm": 2.1, "canal_width_mm": 3.1,
    },
}

#: Published (mean, SD) that the synthetic generator does not use as its default: an S1 pedicle tube
#: 22 mm wide meets the generator's ala, so its S1 keeps 18 mm [A], while measured S1 pedicles are
#: judged against the published width [V, Okutan 2003].
_PUBLISHED_REFERENCE = {
    "S1": {"pedicle_width_mm": (22.3, 2.7)},
}

MORPHOMETRY = {
    "T12": LevelMorphometry("T12", 38.0, 32.0, 22.5, 25.0, 8.3, 15.5, 4.0, 2.0, 19.5, 16.7),
    "L1": LevelMorphometry("L1", 40.0, 33.0, 24.0, 25.5, 8.7, 15.0, 11.0, 2.0, 20.4, 17.5),
    "L2": LevelMorphometry("L2", 42.5, 33.5, 25.0, 26.0, 8.9, 14.5, 12.0, 2.0, 21.8, 16.8),
    "L3": LevelMorphometry("L3", 45.0, 34.0, 26.5, 26.5, 10.3, 14.0, 14.0, 1.0, 23.2, 15.2),
    "L4": LevelMorphometry("L4", 47.5, 35.0, 28.0, 26.5, 12.9, 13.5, 18.0, 0.0, 24.6, 15.5),
    "L5": LevelMorphometry("L5", 50.0, 35.7, 30.3, 26.3, 16.1, 12.9, 30.0, -2.0, 26.0, 15.6),
    "S1": LevelMorphometry("S1", 50.0, 34.0, 28.0, 26.0, 18.0, 13.6, 42.0, 19.0, 30.0, 14.0),
}


def morphometry(level: str) -> LevelMorphometry:
    """Typical morphometry of ``level`` (L6 uses L5's)."""
    name = normalise_level(level)
    return MORPHOMETRY[TRANSITIONAL.get(name, name)]
