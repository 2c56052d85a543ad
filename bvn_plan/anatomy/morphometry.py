"""Morphometry of a found vertebra, read off the mesh, and its plausibility against the level priors.

:func:`measure_morphometry` works in the provisional vertebra frame (mm) with exact mesh crossings
(:mod:`bvn_plan.geometry.crossings`); :func:`morphometry_confidence` compares the measures
(mm, degrees; names as :class:`~bvn_plan.levels.LevelMorphometry`, sided for the pedicles) with
the priors of :mod:`bvn_plan.levels` and lowers the confidences of implausible findings.
"""

from __future__ import annotations

import numpy as np

from ..geometry.crossings import gap_around, interval_around
from ..landmarks import Landmarks
from ..levels import morphometry as level_prior
from .body import Body
from .canal import Lumen
from .confidence import ramp
from .frame import LocalVertebra
from .terminus import TerminusFinding

#: The canal-depth chord is distrusted when it ends this far (mm) behind the lumen's back edge: it
#: has passed between the laminae [A].
CANAL_CHORD_LEAK_MM = 5.0
#: Depth (mm) under the superior endplate at which the body width is measured [A].
BODY_WIDTH_DEPTH_MM = 2.0
#: Morphometry z-score (against the level prior) at which a measure counts as implausible.
MORPHOMETRY_MAX_Z = 3.0
#: An implausibly tall pedicle lowers its confidence at most to this share: surfaces that fill the
#: vertebral notches (shrink-wrapped meshes, smoothed segmentations) read tall pedicles, and the
#: height does not limit the introducer's fit as the width does; the safety checker still judges
#: every path on the surface as given [A].
PEDICLE_HEIGHT_CONFIDENCE_FLOOR = 0.5
#: Without the alae an S1 pedicle ends laterally at the label's edge and reads narrower than the
#: published S1 pedicle; that lowers its confidence at most to this share: the width is then a lower
#: bound of the bone's (a path inside it is inside the bone), and the planner still refuses an isthmus
#: narrower than the introducer and judges every path on the surface as given [A].
S1_WITHOUT_ALAE_WIDTH_CONFIDENCE_FLOOR = 0.5


def measure_morphometry(vertebra: LocalVertebra, lumen: Lumen, body: Body, found: TerminusFinding,
                        canal_centroid: np.ndarray) -> dict[str, float]:
    """Body width, depth and heights and canal width and depth (mm, vertebra frame).

    Body heights are between the endplate planes at the anterior and posterior walls
    (mid-sagittal); canal depth is the empty chord along the mid-sagittal AP line through the
    ``canal_centroid``; canal width (interpedicular distance) the transverse extent of the lumen,
    which the pedicles bound; body width (endplate width) the transverse chord through the body
    centre just under the superior endplate (lower down a sacrum's alae would join in)."""
    endplate_z = body.endplates.z_at
    heights = {name: float(np.diff(endplate_z(point[1]))[0]) for name, point in
               (("body_height_anterior_mm", found.front_point), ("body_height_posterior_mm", found.wall_point))}
    canal_centre = canal_centroid * [0, 1, 1]
    depth_gap = gap_around(vertebra.crossings(canal_centre, np.array([0, 1.0, 0])), 0.0)
    if depth_gap is not None and canal_centre[1] + depth_gap[0] < lumen.y_range[0] - CANAL_CHORD_LEAK_MM:
        depth_gap = None  # the chord left through a gap between the laminae: use the lumen instead
    z_under = endplate_z(body.centre[1])[1] - BODY_WIDTH_DEPTH_MM
    width_span = interval_around(vertebra.crossings(np.array([0.0, body.centre[1], z_under]),
                                                    np.array([1.0, 0, 0])), 0.0)
    return dict(
        body_width_mm=float(width_span[1] - width_span[0]) if width_span else float("nan"),
        body_depth_mm=found.body_depth_mm,
        canal_width_mm=float(lumen.x_range[1] - lumen.x_range[0]),
        canal_depth_mm=(float(depth_gap[1] - depth_gap[0]) if depth_gap
                        else float(lumen.wall_y - lumen.y_range[0])),
        **heights)


def morphometry_confidence(found: Landmarks, level: str, without_alae: bool = False) -> list[str]:
    """Set the morphometry confidence (share of measures within MORPHOMETRY_MAX_Z SD of the level
    prior), lower the confidence of pedicles, canal and body with implausible sizes, and return a
    note per implausible measure. ``without_alae``: an S1 segment without its alae, whose pedicles
    may read narrow (S1_WITHOUT_ALAE_WIDTH_CONFIDENCE_FLOOR)."""
    prior = level_prior(level)
    z = {}
    for name, value in found.morphometry.items():
        base = name.replace("_left_", "_").replace("_right_", "_")  # sided measures, one prior
        if not hasattr(prior, base) or not np.isfinite(value):
            continue
        mean, sd = prior.reference(base)
        if "angle" in base:
            sd = max(sd, 5.0)  # angle priors from memory [A]: at least 5 deg SD
        z[name] = (value - mean) / sd
    outliers = [n for n, v in z.items() if abs(v) > MORPHOMETRY_MAX_Z]
    found.confidence["morphometry"] = 1.0 - len(outliers) / max(len(z), 1)

    def plausible(prefix: str) -> float:  # 1 within MORPHOMETRY_MAX_Z SD, 0 at twice that
        worst = max((abs(v) for n, v in z.items() if n.startswith(prefix)), default=0.0)
        return ramp(worst, MORPHOMETRY_MAX_Z, 2 * MORPHOMETRY_MAX_Z)

    # Implausible sizes make a finding doubtful; for the body and canal (which planning cannot do
    # without) only down to half, so that an unusual but clear vertebra is not refused for its size.
    notes = []
    for side in found.pedicles:
        height = plausible(f"pedicle_height_{side}")
        width = plausible(f"pedicle_width_{side}")
        if without_alae and z[f"pedicle_width_{side}_mm"] < 0:
            width = max(S1_WITHOUT_ALAE_WIDTH_CONFIDENCE_FLOOR, width)
        found.confidence[f"{side}_pedicle"] *= min(width,
                                                   plausible(f"pedicle_transverse_angle_{side}"),
                                                   max(PEDICLE_HEIGHT_CONFIDENCE_FLOOR, height))
        if height < 1.0 and z[f"pedicle_height_{side}_mm"] > 0:
            notes.append(f"the {side} pedicle reads too tall: the surface may fill the vertebral notches "
                         "(shrink-wrapped or smoothed), so its cranio-caudal centre is uncertain; paths are "
                         "still checked against the surface as given")
    found.confidence["canal"] *= max(0.5, plausible("canal_"))
    found.confidence["body"] *= max(0.5, plausible("body_"))
    return [f"{n} = {found.morphometry[n]:.1f} is {z[n]:+.1f} SD from the {prior.level} prior"
            for n in outliers] + notes
