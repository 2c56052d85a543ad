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
from ..levels import LUMBAR_LEVELS, THORACIC_LEVELS, TRANSITIONAL
from ..levels import morphometry as level_prior
from .body import Body
from .canal import Lumen
from .confidence import ramp
from .frame import LocalVertebra
from .terminus import TerminusFinding

#: The canal-depth chord is distrusted when it ends this far (mm) behind the lumen's back edge: it
#: has passed between the laminae [A].
CANAL_CHORD_LEAK_MM = 5.0
#: Depths (mm) under the superior endplate surface (on the body's vertical midline chord) between
#: which the body width is measured, as the widest transverse chord: the endplate with its rim
#: (ring apophysis), which flares out a few mm under a concave endplate's centre [A].
BODY_WIDTH_DEPTH_MM = (2.0, 4.0)
#: Where the body heights are measured: shares of the mid-sagittal body depth from the posterior
#: wall. The chords stay off the rounded rims and marginal osteophytes of the walls; the same
#: positions as TotalSegmentator's spine report (15 / 50 / 85 %) [V, wasserth/TotalSegmentator
#: spine_report/measure_verte_height.py], so its heights compare one to one.
HEIGHT_POSITIONS = {"posterior": 0.15, "middle": 0.5, "anterior": 0.85}
#: Depth (mm) of the normal endplate concavities at the centre, cranial + caudal: they make the
#: normal middle height this much less than the rim height there [V, Wang 2012 Eur Spine J:
#: 1.5 mm cranial, 0.7 mm caudal].
NORMAL_CONCAVITY_MM = 1.5 + 0.7
#: Genant semi-quantitative grades by height loss: grade 1 from 20 %, grade 2 from 25 %, grade 3
#: above 40 % [V, Genant et al. 1993 J Bone Miner Res 8:1137-48].
GENANT_GRADE_FROM = ((3, 0.40), (2, 0.25), (1, 0.20))
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
                        canal_centroid: np.ndarray, window: int = 0) -> dict[str, float]:
    """Body width, depth and heights and canal width and depth (mm, vertebra frame).

    Body heights: :func:`body_heights`; canal depth is the empty chord along the mid-sagittal AP line through the
    ``canal_centroid``; canal width (interpedicular distance) the transverse extent of the lumen,
    which the pedicles bound; body width (endplate width) the transverse chord through the body
    centre, widest BODY_WIDTH_DEPTH_MM under the superior endplate surface (lower down a sacrum's
    alae would join in)."""
    endplate_z = body.endplates.z_at
    canal_centre = canal_centroid * [0, 1, 1]
    depth_gap = gap_around(vertebra.crossings(canal_centre, np.array([0, 1.0, 0])), 0.0)
    if depth_gap is not None and canal_centre[1] + depth_gap[0] < lumen.y_range[0] - CANAL_CHORD_LEAK_MM:
        depth_gap = None  # the chord left through a gap between the laminae: use the lumen instead
    # Under the endplate surface itself, not its fitted plane: a concave or sunken (biconcave)
    # endplate dips below the plane, and a chord there would leave the bone at the midline.
    centre = np.array([0.0, body.centre[1], body.centre[2]])
    vertical = interval_around(vertebra.crossings(centre, np.array([0.0, 0.0, 1.0])), 0.0)
    z_top = centre[2] + vertical[1] if vertical else endplate_z(body.centre[1])[1]
    widths = [np.diff(span)[0] for depth in np.arange(BODY_WIDTH_DEPTH_MM[0], BODY_WIDTH_DEPTH_MM[1] + 0.25, 0.5)
              if (span := interval_around(vertebra.crossings(np.array([0.0, body.centre[1], z_top - depth]),
                                                             np.array([1.0, 0, 0])), 0.0))]
    return dict(
        body_width_mm=float(max(widths)) if widths else float("nan"),
        body_depth_mm=found.body_depth_mm,
        canal_width_mm=float(lumen.x_range[1] - lumen.x_range[0]),
        canal_depth_mm=(float(depth_gap[1] - depth_gap[0]) if depth_gap
                        else float(lumen.wall_y - lumen.y_range[0])),
        **body_heights(vertebra, body.centre, window))


def body_heights(vertebra: LocalVertebra, body_centre: np.ndarray, window: int = 0) -> dict[str, float]:
    """Anterior, middle and posterior body heights (mm): the bone chords along the vertebra's
    cranio-caudal axis (the canal axis of the provisional frame, which a wedged body does not tilt)
    at HEIGHT_POSITIONS of the mid-sagittal AP chord through the ``body_centre`` (y, z used). The
    chords run from endplate surface to endplate surface (concavities included, as on a sagittal CT
    image). None for the S1 segment of a whole sacrum (``window``): it is fused below, there is no
    inferior endplate (NaN where a chord is missing)."""
    names = [f"body_height_{where}_mm" for where in HEIGHT_POSITIONS]
    centre = np.array([0.0, body_centre[1], body_centre[2]])
    depth = interval_around(vertebra.crossings(centre, np.array([0.0, 1.0, 0.0])), 0.0)
    if window:
        return {}
    if depth is None:
        return dict.fromkeys(names, float("nan"))
    out = {}
    for name, share in zip(names, HEIGHT_POSITIONS.values()):
        point = centre + [0.0, depth[0] + share * (depth[1] - depth[0]), 0.0]
        chord = interval_around(vertebra.crossings(point, np.array([0.0, 0.0, 1.0])), 0.0)
        out[name] = float(chord[1] - chord[0]) if chord else float("nan")
    return out


def normal_heights(level: str) -> dict[str, float]:
    """The level's normal body heights (mm) at HEIGHT_POSITIONS: linear between the prior's
    posterior and anterior wall heights (:mod:`bvn_plan.levels`: L5 30.3 / 26.3 mm [V, IJSS], L1-L4
    [A]), the middle one less NORMAL_CONCAVITY_MM. Their ratios are the level's normal shape: lower
    lumbar bodies are taller in front (L5 anterior/posterior 1.15)."""
    prior = level_prior(level)
    front, back = prior.body_height_anterior_mm, prior.body_height_posterior_mm
    heights = {where: back + share * (front - back) for where, share in HEIGHT_POSITIONS.items()}
    heights["middle"] -= NORMAL_CONCAVITY_MM
    return heights


def height_loss(heights: dict[str, float], level: str) -> tuple[float, str]:
    """Largest body-height loss (share, 0..1) and where ("anterior", "middle" or "posterior"),
    judged against the level's normal shape (:func:`normal_heights`): the least compressed position
    sets the body's size, every other height is compared with the normal height scaled to it.
    ``heights`` maps the positions to mm. NaN when a height is missing."""
    normal = normal_heights(level)
    scaled = {where: heights[where] / normal[where] for where in normal}
    if not all(np.isfinite(v) and v > 0 for v in scaled.values()):
        return float("nan"), ""
    size = max(scaled.values())
    where = min(scaled, key=scaled.get)
    return float(1.0 - scaled[where] / size), where


def genant_grade(loss: float) -> int:
    """Genant semi-quantitative grade (0-3) of a height loss (share, 0..1; GENANT_GRADE_FROM)."""
    return next((grade for grade, start in GENANT_GRADE_FROM if loss >= start), 0)


def grade_body(found: Landmarks, level: str) -> list[str]:
    """Add the body's height loss (``body_height_loss_percent``) and Genant grade
    (``body_genant_grade``) to ``found.morphometry`` (T12 and lumbar levels with three heights only); return a note when the body reads compressed
    (grade 1 or more) with the heights, the loss and the fracture-risk fact, else no note."""
    m = found.morphometry
    if level not in THORACIC_LEVELS + LUMBAR_LEVELS + tuple(TRANSITIONAL):  # vertebrae (Genant: T4-L4), not the sacrum
        return []
    loss, where = height_loss({w: m.get(f"body_height_{w}_mm", np.nan) for w in HEIGHT_POSITIONS}, level)
    if not np.isfinite(loss):
        return []
    m["body_height_loss_percent"] = 100 * loss
    m["body_genant_grade"] = float(genant_grade(loss))
    if m["body_genant_grade"] < 1:
        return []
    heights = ", ".join(f"{w} {m[f'body_height_{w}_mm']:.1f}" for w in HEIGHT_POSITIONS)
    return [f"the {level} body reads compressed: Genant grade {m['body_genant_grade']:.0f}, {100 * loss:.0f} % "
            f"height loss {where} against the level's normal shape (heights {heights} mm); an existing "
            "vertebral fracture marks fragile bone, and fractures after BVNA are more frequent with "
            "osteoporosis (4.64 % vs 0.37 %): confirm on the images"]


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
