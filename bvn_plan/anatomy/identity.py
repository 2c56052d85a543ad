"""The level's identity: how well a found vertebra fits each level L1-S1, and the refusal of a gross
mislabel.

:func:`score_identity` compares the measured morphometry (mm, degrees; :mod:`.morphometry`) with
every level's prior (:data:`bvn_plan.levels.MORPHOMETRY`): per measure a z-score against the
prior's population SD widened by the measure's own reading error on real surfaces
(:data:`READING_SD`), capped at :data:`Z_CAP` so that one broken measure cannot decide, summed
into a squared distance per level; the levels' relative likelihoods are ``exp(-distance / 2)``.
Size-free ratios (body and canal shape, the anterior/posterior wedge) stand beside the widths:
people differ in size more than neighbouring levels do. A whole sacrum (found by the frame, whatever
the label) is S1.

:func:`check_identity` refuses (:class:`LevelMismatchError`, exit 2) a label two or more levels from
the clearly better-fitting level, or across the lumbar/sacral line, unless the user trusts the label.

A case with several labelled levels (a labelmap, or one mesh per level) is also judged as a whole:
:func:`score_numbering` scores every labelled level together under each shift of the numbering
(:data:`NUMBERING_SHIFTS`), with the neighbours' places as facts (a whole sacrum is S1, so nothing
labelled above it can move past it; no vertebra lies below S1), and :func:`check_numbering` refuses
a numbering that is off by two or more levels, or that moves a label across the lumbar/sacral line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import LevelMismatchError
from ..levels import LEVELS, LUMBAR_LEVELS, THORACIC_LEVELS, TRANSITIONAL, morphometry as level_prior

#: Reading error (SD, in the measure's unit) that measuring on a real surface (3 mm CT staircases,
#: smoothed or shrink-wrapped meshes, a body width cut near a notch) adds to the prior's population
#: SD [A: about the spread seen between independent meshes of the same level].
READING_SD = {
    "body_height_ratio": 0.08,          # anterior / posterior body height
    "body_aspect": 0.08,                # body width / body depth
    "canal_aspect": 0.15,               # canal width / canal depth
    "body_width_mm": 3.0,
    "canal_width_mm": 2.0,
    "pedicle_width_mm": 2.5,            # mean of both sides
    "pedicle_transverse_angle_deg": 6.0,  # mean of both sides
}
#: A measure's z-score counts at most this much: a broken reading (a body width cut short by a
#: notch) then weighs the same against every level instead of choosing one [A].
Z_CAP = 3.0
#: A label is grossly wrong when a level two or more away (or across the lumbar/sacral line) fits at
#: least this many times better (likelihood ratio) [A].
MISMATCH_LIKELIHOOD_RATIO = 20.0
#: An adjacent level that fits at least this many times better makes the label "uncertain" [A].
UNCERTAIN_LIKELIHOOD_RATIO = 5.0
#: When L5 and S1 fit within this likelihood ratio of each other and one of them is best, the
#: vertebra may be a lumbosacral transitional one (sacralised L5, lumbarised S1) [A].
TRANSITIONAL_LIKELIHOOD_RATIO = 3.0
#: Shifts of a case's whole numbering that :func:`score_numbering` weighs against the labels as given
#: (levels; +1: every label names the level above its vertebra, the vertebrae are one level lower).
#: Three covers a count started from the wrong end of a short lumbar field of view [A].
NUMBERING_SHIFTS = (-3, -2, -1, 1, 2, 3)
#: The lumbar levels between T12 and S1 of the commonest spine, with 24 presacral vertebrae (7
#: cervical, 12 thoracic, 5 lumbar) [V, Yun et al. 2018 Korean J Radiol 19:1140].
NORMAL_LUMBAR_COUNT = 5


@dataclass
class LevelIdentity:
    """Fit of one vertebra to each level: ``distance`` (squared, capped z-sum per level),
    ``likelihood`` (relative to the best level, 0-1), the measures used (value per feature), the
    ``label`` it was given and the two shape facts it was scored with (see :func:`score_identity`)."""

    label: str
    distance: dict[str, float]
    measures: dict[str, float]
    whole_sacrum: bool = False
    without_alae: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> str:
        return min(self.distance, key=self.distance.get)

    def likelihood(self, level: str) -> float:
        """Likelihood of ``level`` relative to the best-fitting level (1 for the best)."""
        return math.exp(-(self.distance[_prior_name(level)] - self.distance[self.best]) / 2)

    @property
    def verdict(self) -> str:
        """``"gross"`` (refuse), ``"uncertain"`` (an adjacent level fits better) or ``"consistent"``."""
        ratio = 1.0 / max(self.likelihood(self.label), 1e-300)
        if _apart(self.best, self.label) and ratio >= MISMATCH_LIKELIHOOD_RATIO:
            return "gross"
        return "uncertain" if ratio >= UNCERTAIN_LIKELIHOOD_RATIO else "consistent"

    def summary(self) -> str:
        fits = ", ".join(f"{level} {self.likelihood(level):.2g}" for level in self.distance)
        used = ", ".join(f"{name} {value:.2f}" for name, value in self.measures.items())
        return f"level fit (likelihood relative to the best): {fits}; measures used: {used}"


def score_identity(label: str, morphometry: dict[str, float], whole_sacrum: bool = False,
                   without_alae: bool = False) -> LevelIdentity:
    """Score measured ``morphometry`` (mm, degrees; sided pedicle measures) against every level;
    ``whole_sacrum``: the frame found a whole sacrum, which is S1 whatever it measures;
    ``without_alae``: the surface is no wider than an S1 segment without its alae
    (:func:`.frame.s1_without_alae`), so against S1 its pedicle width is only a lower bound.
    The candidates are L1-S1 (:data:`~bvn_plan.levels.LEVELS`); a thoracic label (T12) is scored
    against its own prior too, beside them."""
    measures = _measures(morphometry)
    distance = {}
    for level in [lv for lv in THORACIC_LEVELS if lv == label] + list(LEVELS):
        if whole_sacrum:
            distance[level] = 0.0 if level == "S1" else math.inf
            continue
        prior = _prior_measures(level)
        z = {name: (value - prior[name][0]) / prior[name][1] for name, value in measures.items()}
        if without_alae and level == "S1" and "pedicle_width_mm" in z:
            z["pedicle_width_mm"] = max(z["pedicle_width_mm"], 0.0)
        distance[level] = float(sum(min(v ** 2, Z_CAP ** 2) for v in z.values()))
    identity = LevelIdentity(label, distance, measures, whole_sacrum, without_alae)
    identity.notes = _notes(identity)
    return identity


def check_identity(identity: LevelIdentity, trust_level: bool = False) -> list[str]:
    """Raise :class:`LevelMismatchError` on a gross mislabel (unless ``trust_level``); return the
    notes to report (uncertain label, transitional vertebra, a trusted gross mismatch)."""
    if identity.verdict != "gross":
        return identity.notes
    message = f"this looks like {identity.best}, not {identity.label} ({_why(identity)})"
    if trust_level:
        return [f"{message}; planned as labelled ({identity.label}) because the level is trusted; "
                + identity.summary()] + identity.notes
    raise LevelMismatchError(f"{message}: pass --level {identity.best}, or --trust-level to plan it as "
                             f"labelled. {identity.summary()}")


def _why(identity: LevelIdentity) -> str:
    """Why the best level was named: a whole sacrum, or how much better it fits and which other
    levels fit within UNCERTAIN_LIKELIHOOD_RATIO of it."""
    if identity.whole_sacrum:
        return "a whole sacrum"
    alike = [lv for lv in identity.distance if lv != identity.best and identity.likelihood(lv) >= 1 / UNCERTAIN_LIKELIHOOD_RATIO]
    why = f"{identity.best} fits {1 / identity.likelihood(identity.label):.3g} times better"
    return why + (f"; {', '.join(alike)} fit nearly as well, within {UNCERTAIN_LIKELIHOOD_RATIO:g} times"
                  if alike else "")


def _notes(identity: LevelIdentity) -> list[str]:
    notes = []
    label, best = identity.label, identity.best
    if identity.verdict == "uncertain":
        notes.append(f"level uncertain: {best} fits {1 / identity.likelihood(label):.3g} times better than "
                     f"the label {label} (neighbouring levels differ little in shape; check the count "
                     "on an image of the whole lumbar spine)")
    if label in TRANSITIONAL:
        notes.append(f"{label}: a transitional (sixth lumbar) vertebra, judged with "
                     f"{TRANSITIONAL[label]}'s priors; count the levels from the sacrum and from the "
                     "last rib-bearing vertebra")
    elif best in ("L5", "S1") and not identity.whole_sacrum and math.exp(
            abs(identity.distance["L5"] - identity.distance["S1"]) / 2) < TRANSITIONAL_LIKELIHOOD_RATIO:
        notes.append("L5 and S1 fit about equally: possibly a lumbosacral transitional vertebra "
                     "(sacralised L5 or lumbarised S1); count the levels on an image of the whole spine")
    return notes


def _measures(morphometry: dict[str, float]) -> dict[str, float]:
    """The identity's measures (READING_SD names) from a found vertebra's morphometry; a measure
    whose inputs were not read is left out."""
    m = morphometry

    def mean_of_sides(name: str) -> float:
        return float(np.mean([m.get(f"pedicle_{name}_{side}_{unit}", np.nan) for side in ("left", "right")
                              for unit in (("deg",) if "angle" in name else ("mm",))]))

    values = {
        "body_height_ratio": m.get("body_height_anterior_mm", np.nan) / m.get("body_height_posterior_mm", np.nan),
        "body_aspect": m.get("body_width_mm", np.nan) / m.get("body_depth_mm", np.nan),
        "canal_aspect": m.get("canal_width_mm", np.nan) / m.get("canal_depth_mm", np.nan),
        "body_width_mm": m.get("body_width_mm", np.nan),
        "canal_width_mm": m.get("canal_width_mm", np.nan),
        "pedicle_width_mm": mean_of_sides("width"),
        "pedicle_transverse_angle_deg": mean_of_sides("transverse_angle"),
    }
    return {name: float(v) for name, v in values.items() if name in READING_SD and np.isfinite(v)}


def _prior_measures(level: str) -> dict[str, tuple[float, float]]:
    """(mean, SD) of each identity measure at ``level``: the prior's (a ratio's SD from its two
    relative SDs) widened by READING_SD."""
    prior = level_prior(level)

    def ratio(top: str, bottom: str) -> tuple[float, float]:
        (a, sa), (b, sb) = prior.reference(top), prior.reference(bottom)
        return a / b, a / b * math.hypot(sa / a, sb / b)

    population = {
        "body_height_ratio": ratio("body_height_anterior_mm", "body_height_posterior_mm"),
        "body_aspect": ratio("body_width_mm", "body_depth_mm"),
        "canal_aspect": ratio("canal_width_mm", "canal_depth_mm"),
        **{name: prior.reference(name) for name in READING_SD if hasattr(prior, name)},
    }
    return {name: (mean, math.hypot(sd, READING_SD[name])) for name, (mean, sd) in population.items()
            if name in READING_SD}


def _prior_name(level: str) -> str:
    return TRANSITIONAL.get(level, level)


def _apart(best: str, label: str) -> bool:
    """Two or more levels apart, or one lumbar (or thoracic) and the other sacral."""
    order = THORACIC_LEVELS + LEVELS
    a, b = order.index(_prior_name(best)), order.index(_prior_name(label))
    return abs(a - b) >= 2 or (best == "S1") != (_prior_name(label) == "S1")


@dataclass
class NumberingIdentity:
    """A case's labelled levels scored together: ``identities`` (label -> :class:`LevelIdentity`,
    superior to inferior), ``log_ratio`` (shift -> natural log of how much better that numbering fits
    than the labels as given; ``-inf``: impossible, ``inf``: the labels as given are impossible) and
    ``notes`` (transitional or unusual counts)."""

    identities: dict[str, LevelIdentity]
    log_ratio: dict[int, float]
    notes: list[str] = field(default_factory=list)

    @property
    def best_shift(self) -> int:
        """The shift that fits best (0, the labels as given, on a tie)."""
        return max([0, *self.log_ratio], key=lambda s: (self.log_ratio.get(s, 0.0), s == 0))

    @property
    def ratio(self) -> float:
        """How many times better the best numbering fits than the labels as given."""
        log_ratio = self.log_ratio.get(self.best_shift, 0.0)
        return math.inf if math.isinf(log_ratio) else math.exp(min(log_ratio, 700.0))

    def relabelled(self, shift: int) -> dict[str, str]:
        """Label -> the level it names under ``shift`` (labels moved past L1 are left out)."""
        return {label: LEVELS[LEVELS.index(label) + shift] for label in self.identities
                if 0 <= LEVELS.index(label) + shift < len(LEVELS)}

    @property
    def verdict(self) -> str:
        """``"gross"`` (refuse: the best numbering is two or more levels off, or moves a label across the
        lumbar/sacral line, and fits MISMATCH_LIKELIHOOD_RATIO times better), ``"uncertain"`` (another
        numbering fits UNCERTAIN_LIKELIHOOD_RATIO times better) or ``"consistent"``."""
        shift = self.best_shift
        if shift == 0:
            return "consistent"
        crosses = any((label == "S1") != (level == "S1") for label, level in self.relabelled(shift).items())
        if (abs(shift) >= 2 or crosses) and self.ratio >= MISMATCH_LIKELIHOOD_RATIO:
            return "gross"
        return "uncertain" if self.ratio >= UNCERTAIN_LIKELIHOOD_RATIO else "consistent"

    def summary(self) -> str:
        fits = ", ".join(f"{s:+d}: {_ratio_text(v)}" for s, v in sorted(self.log_ratio.items()))
        return (f"numbering fit, each shift against the labels as given (times better): {fits}; levels scored: "
                f"{', '.join(self.identities)}")


def score_numbering(identities: dict[str, LevelIdentity], spine_levels: Sequence[str] = ()) -> NumberingIdentity:
    """Score a case's labelled levels together (``identities``: label -> its :class:`LevelIdentity`,
    L1-S1 labels) under each of NUMBERING_SHIFTS against the labels as given. Under a shift each level
    is compared with the prior of the level it would be, and the likelihoods multiply; a level that a
    shift moves above L1 (a thoracic level, no prior here) weighs nothing in that comparison; a shift
    that moves a label past S1 (no vertebra lies below it), or a whole sacrum off S1, is impossible.
    ``spine_levels``: every vertebra the input labels (thoracic ones included, superior to inferior),
    for the notes on an unusual lumbar count."""
    scored = {label: identities[label] for label in LEVELS if label in identities}
    log_ratio = {}
    for shift in NUMBERING_SHIFTS:
        given = moved = 0.0
        for label, identity in scored.items():
            index = LEVELS.index(label) + shift
            if index >= len(LEVELS):
                given, moved = 0.0, math.inf
                break
            if index >= 0:
                given += identity.distance[label]
                moved += identity.distance[LEVELS[index]]
        log_ratio[shift] = _log_ratio(given, moved)
    return NumberingIdentity(scored, log_ratio, _count_notes(list(spine_levels) or list(scored)))


def check_numbering(numbering: NumberingIdentity, trust_level: bool = False) -> list[str]:
    """Raise :class:`LevelMismatchError` when the numbering is grossly off (unless ``trust_level``);
    return the notes to report (an uncertain numbering, an unusual lumbar count, a trusted gross one)."""
    verdict, shift = numbering.verdict, numbering.best_shift
    if verdict == "consistent":
        return numbering.notes
    moved = ", ".join(f"{label} looks like {level}" for label, level in numbering.relabelled(shift).items())
    way = f"{abs(shift)} level{'s' if abs(shift) > 1 else ''} {'down' if shift > 0 else 'up'}"
    message = (f"the labelled levels fit the numbering moved {way} {_ratio_text(numbering.log_ratio[shift])} "
               f"times better than as labelled ({moved})")
    if verdict == "uncertain":
        return [f"numbering uncertain: {message}; count the levels on an image of the whole spine"] + numbering.notes
    if trust_level:
        return [f"{message}; planned as labelled because the levels are trusted; {numbering.summary()}"] + numbering.notes
    raise LevelMismatchError(f"{message}: relabel the levels, or pass --trust-level to plan them as labelled. "
                             f"{numbering.summary()}")


def _log_ratio(given: float, moved: float) -> float:
    """log(likelihood of the moved numbering / of the labels as given) from their squared distances."""
    if math.isinf(moved):
        return -math.inf
    if math.isinf(given):
        return math.inf
    return -(moved - given) / 2


def _ratio_text(log_ratio: float) -> str:
    if math.isinf(log_ratio):
        return "infinitely" if log_ratio > 0 else "0 (impossible)"
    return f"{math.exp(min(log_ratio, 700.0)):.3g}"


def _count_notes(spine_levels: list[str]) -> list[str]:
    """Notes on a transitional lumbar count: an L6, or fewer than NORMAL_LUMBAR_COUNT lumbar levels
    between a labelled T12 and a labelled S1."""
    lumbar = [level for level in spine_levels if level in LUMBAR_LEVELS or level in TRANSITIONAL]
    if any(level in TRANSITIONAL for level in spine_levels):
        return [f"{len(lumbar)} lumbar levels are labelled ({', '.join(lumbar)}): a transitional sixth lumbar "
                "vertebra (lumbarised S1) or a miscount; count from the last rib-bearing vertebra"]
    if "T12" in spine_levels and "S1" in spine_levels and len(lumbar) < NORMAL_LUMBAR_COUNT:
        return [f"only {len(lumbar)} lumbar levels lie between T12 and S1 ({', '.join(lumbar)}): a sacralised L5, "
                "a thoracolumbar variant or a missing label; count the levels on an image of the whole spine"]
    return []
