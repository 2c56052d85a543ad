"""How forgiving a plan is: its paths re-judged under sampled placement errors.

A planned path is placed by hand under fluoroscopy, not exactly. :class:`PlacementErrorModel` names
that error: the bone entry point is missed by a Gaussian offset in the plane normal to the
introducer, and the introducer's direction by a Gaussian tilt with a medial-lateral and a
cranio-caudal component, drawn with a fixed seed. The whole instrument (introducer and cannula
arc) moves with the introducer as one rigid body: the tilt turns it about the planned bone entry
point, the entry offset then shifts it, and the lesion moves with the tip. Every sample is judged
by :func:`bvn_plan.planning.safety.check_paths` with the same rules. Depth errors and a roll of
the cannula's bend about the introducer are not modelled.

:func:`assess_path` reports, per rule, the share of samples that break its margin with a 95 %
Wilson score interval (Wilson 1927, J Am Stat Assoc 22:209), the share that fail the check (any
"fail" rule broken, or a sample the checker refuses: a path that misses the bone), and the
**angle tolerance**: along each of :data:`TOLERANCE_DIRECTIONS` (every 45 deg about the introducer,
medial, medial-cranial, ... in the vertebra frame), with no entry offset, the smallest tilt (deg)
at which the check fails, found on a grid of ``tolerance_step_deg`` up to ``tolerance_max_deg`` and
refined by bisection to ``tolerance_resolution_deg``; the tolerance is the least of these over the
directions, with its direction. Tilts below it in every one of those directions pass (at the grid's
resolution: a failure between two grid angles that both pass is not seen). When no direction fails
up to ``tolerance_max_deg`` the tolerance is that maximum and ``tolerance_bounded`` is False.

Sources of the default model (docs/sources.md "Placement error"): no study found gives the
per-axis spread of fluoroscopy-guided pedicle access in mm and degrees, so the defaults are
assumptions [A] placed between what was found: a robot-guided system deviated 1.5 +- 0.8 mm from its
plans while freehand fluoroscopy placed fewer screws fully inside the pedicle (86.1 % against
95.3 % Gertzbein-Robbins grade A; Han X et al. 2019, J Neurosurg Spine 30:615) [V-secondary, abstract];
a robot's screws deviated 2.1 mm at the tip, 3.2 mm at the tail and 2.4 deg in angle (Chin Neurosurg J
2018;4:23) [V, abstract], 1.9 mm, 2.0 mm and 2.6 deg in 326 screws (Oper Neurosurg 2023;24:242)
[V-secondary, abstract]; freehand needles in a lumbar phantom deviated 12.0 +- 4.8
deg in angle against 5.6 +- 3.3 deg robot-placed (PMC10676186, phantom study) [V, abstract]; in a
simulated freehand series half of the misplaced screws came from the entry point and half from the
trajectory angle (Xu YF et al., one-time accuracy of simulated freehand and navigation pedicle screw
insertion) [V, abstract]; a needle guided by 3D rotational X-ray navigation in percutaneous vertebroplasty
reached 2.5 +- 1.5 mm of its displayed position in patients (3DRX vertebroplasty needle-guidance accuracy
study, abstract) [V-secondary, abstract]: the order of the assumed entry spread (Rayleigh mean 1.9 mm),
with navigation, not plain fluoroscopy. None gives per-axis spreads, so the defaults stay [A].

All points are mm in model coordinates; angles are degrees in the vertebra frame.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from statistics import NormalDist
from typing import Callable

import numpy as np
import trimesh

from ..errors import InputError
from ..lesion import EllipsoidLesion, UnionLesion
from ..paths import Arc, InstrumentPath
from .safety import FAIL, PASS, CheckResult, RuleSet, SafetyZones, check_paths, lesion_check_points

#: z of the two-sided 95 % interval.
Z_95 = 1.959963984540054

#: The tilt directions of the angle tolerance, (medial, cranial) components, every 45 deg.
TOLERANCE_DIRECTIONS = {
    "medial": (1.0, 0.0), "medial-cranial": (1.0, 1.0), "cranial": (0.0, 1.0), "lateral-cranial": (-1.0, 1.0),
    "lateral": (-1.0, 0.0), "lateral-caudal": (-1.0, -1.0), "caudal": (0.0, -1.0), "medial-caudal": (1.0, -1.0),
}


@dataclass(frozen=True)
class PlacementErrorModel:
    """A named, configurable model of how far a placed path lies from its plan (see the module).

    * ``entry_sd_mm``: standard deviation (mm) of the bone entry point's miss along each of the two
      axes of the plane normal to the introducer (isotropic: the miss distance is Rayleigh) [A, 1.5 mm];
    * ``medial_sd_deg`` / ``craniocaudal_sd_deg``: standard deviation (deg) of the introducer's tilt
      toward the midline and toward the head [A, 3 deg each; equal values give a Rayleigh tilt];
    * ``samples``: perturbed paths per plan (at least 500 for the issue's acceptance; 0 turns the
      assessment off); ``seed``: the random generator's seed (the same samples for every plan, so
      that mirror-image plans get mirror-image errors).
    """

    name: str = "fluoroscopy-guided pedicle access (assumed spread)"
    entry_sd_mm: float = 1.5
    medial_sd_deg: float = 3.0
    craniocaudal_sd_deg: float = 3.0
    samples: int = 500
    seed: int = 0
    source: str = ("[A] between robot-guided deviations of 1.5 mm and 2.4 deg (Han 2019 J Neurosurg Spine 30:615; "
                   "Chin Neurosurg J 2018;4:23) and freehand needle angle errors of 12 deg in a phantom "
                   "(PMC10676186); docs/sources.md 'Placement error'")

    def __post_init__(self):
        for name in ("entry_sd_mm", "medial_sd_deg", "craniocaudal_sd_deg"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InputError(f"placement error {name} must be a non-negative number, got {value!r}")
        if not isinstance(self.samples, int) or self.samples < 0:
            raise InputError(f"placement error samples must be a non-negative whole number, got {self.samples!r}")

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """The seeded errors: entry offsets (samples, 2; mm) and tilts (samples, 2; deg), columns
        (medial, cranial)."""
        rng = np.random.default_rng(self.seed)
        entry = rng.normal(0.0, 1.0, (self.samples, 2)) * self.entry_sd_mm
        tilt = rng.normal(0.0, 1.0, (self.samples, 2)) * np.array([self.medial_sd_deg, self.craniocaudal_sd_deg])
        return entry, tilt


@dataclass(frozen=True)
class RobustnessSettings:
    """How robustness enters the plan (named assumptions, [A]).

    * ``model``: the :class:`PlacementErrorModel`;
    * ``fragile_breach_probability``: a plan whose failed-check probability exceeds this is called
      fragile [A, 0.10: one placement in ten would break a rule that fails the plan];
    * ``breach_weight_mm``: the recommendation ranks plans by ``score_mm - breach_weight_mm x breach
      probability`` (mm; a certain breach costs this much clearance) after passing and not fragile
      come first [A, 2 mm, the planner's clearance cap];
    * ``tolerance_max_deg`` / ``tolerance_step_deg`` / ``tolerance_resolution_deg``: the angle
      tolerance's search (module docstring) [A].
    * ``canal_band_mm``: the planner's search keeps the lesion this much beyond the canal margin
      where it can (the checker's rule is unchanged; where no plan keeps the band, the approach is
      planned at the margin itself): the robustness-aware search, trading zone and terminus
      coverage for a lower breach probability. None (default): :attr:`band_mm`, the entry offset's
      one-sided quantile at the fragile threshold, z(1 - fragile_breach_probability) x entry_sd_mm
      (1.28 x 1.5 = 1.9 mm) [A: the entry offset moves the lesion rigidly, and the canal lies
      behind the lesion along the introducer, across which the tilt moves it least]; 0 turns it off.
    """

    model: PlacementErrorModel = field(default_factory=PlacementErrorModel)
    fragile_breach_probability: float = 0.10
    breach_weight_mm: float = 2.0
    tolerance_max_deg: float = 16.0
    tolerance_step_deg: float = 2.0
    tolerance_resolution_deg: float = 0.125
    canal_band_mm: float | None = None

    def __post_init__(self):
        if not 0.0 <= self.fragile_breach_probability <= 1.0:
            raise InputError(f"fragile_breach_probability must lie in [0, 1], got {self.fragile_breach_probability}")
        if not (0 < self.tolerance_resolution_deg <= self.tolerance_step_deg <= self.tolerance_max_deg):
            raise InputError("robustness tolerance search: need 0 < resolution <= step <= max (deg)")
        if not math.isfinite(self.breach_weight_mm) or self.breach_weight_mm < 0:
            raise InputError(f"breach_weight_mm must be a non-negative number, got {self.breach_weight_mm}")
        if self.canal_band_mm is not None and not (math.isfinite(self.canal_band_mm) and self.canal_band_mm >= 0):
            raise InputError(f"canal_band_mm must be a non-negative number (or None), got {self.canal_band_mm}")

    @property
    def band_mm(self) -> float:
        """The search's band beyond the canal margin (mm; ``canal_band_mm``, or its default)."""
        if self.canal_band_mm is not None:
            return float(self.canal_band_mm)
        return NormalDist().inv_cdf(1.0 - self.fragile_breach_probability) * self.model.entry_sd_mm \
            if 0.0 < self.fragile_breach_probability < 1.0 else 0.0


@dataclass(frozen=True)
class Proportion:
    """``count`` of ``total`` samples with the 95 % Wilson score interval of the probability."""

    count: int
    total: int

    @property
    def probability(self) -> float:
        return self.count / self.total if self.total else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.count, self.total)

    def to_dict(self) -> dict:
        lo, hi = self.interval
        return {"count": self.count, "samples": self.total, "probability": round(self.probability, 4),
                "interval_95": [round(lo, 4), round(hi, 4)]}


def wilson_interval(count: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (two-sided, ``z`` = 1.96 for 95 %) of a probability seen ``count``
    times in ``total`` independent trials."""
    if total <= 0:
        raise InputError("a proportion needs at least one sample")
    p = count / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class ErrorAxes:
    """Where the placement error acts (mm, model coordinates): the ``pivot`` the tilt turns about,
    the unit introducer ``direction`` and the unit ``medial`` and ``cranial`` axes normal to it."""

    pivot: np.ndarray
    direction: np.ndarray
    medial: np.ndarray
    cranial: np.ndarray

    @classmethod
    def of(cls, pivot, direction, medial_hint, superior_hint) -> "ErrorAxes":
        """Axes from a pivot, the introducer direction and rough medial and superior directions
        (made orthonormal to the introducer in that order)."""
        d = np.asarray(direction, float) / np.linalg.norm(direction)
        m = np.asarray(medial_hint, float) - (np.asarray(medial_hint, float) @ d) * d
        if np.linalg.norm(m) < 1e-6:
            raise InputError("the medial direction is parallel to the introducer: no medial-lateral tilt can be told")
        m /= np.linalg.norm(m)
        c = np.cross(d, m)
        if np.asarray(superior_hint, float) @ c < 0:
            c = -c
        return cls(np.asarray(pivot, float), d, m, c)

    @classmethod
    def of_plan(cls, path: InstrumentPath, check: CheckResult, frame, side: str) -> "ErrorAxes":
        """The axes of a planned path: pivot at its bone entry, medial toward the mid-sagittal plane
        from ``side``, cranial toward the vertebra frame's superior axis."""
        direction = path.vertices[1] - path.vertices[0]
        sign = 1.0 if side == "right" else -1.0
        pivot = np.asarray(check.bone_entry if check.bone_entry is not None else path.start, float)
        return cls.of(pivot, direction, -sign * np.asarray(frame.right), frame.superior)

    def rotations(self, tilt_deg: np.ndarray) -> np.ndarray:
        """(N, 3, 3) rotations that tilt the introducer by ``tilt_deg`` ((N, 2): medial, cranial; the
        angle between the planned and the tilted direction is the vector's length)."""
        t = np.radians(np.asarray(tilt_deg, float))
        angle = np.linalg.norm(t, axis=1)
        toward = t[:, :1] * self.medial + t[:, 1:] * self.cranial   # direction of the tilt, length = angle
        axis = np.cross(self.direction, toward)
        with np.errstate(invalid="ignore", divide="ignore"):
            axis = np.where(angle[:, None] > 0, axis / angle[:, None], 0.0)
        k = np.zeros((len(t), 3, 3))
        k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
        k[:, 1, 0], k[:, 2, 0], k[:, 2, 1] = axis[:, 2], -axis[:, 1], axis[:, 0]
        s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
        return np.eye(3)[None] + s * k + (1 - c) * (k @ k)

    def perturb(self, path: InstrumentPath, lesion: EllipsoidLesion | None, entry_mm: np.ndarray,
                tilt_deg: np.ndarray) -> tuple[list[InstrumentPath], list]:
        """The path (and its lesion) moved rigidly by each error: turned by the tilt about the pivot,
        then shifted by the entry offset ((N, 2) mm along medial, cranial)."""
        rot = self.rotations(tilt_deg)
        shift = self.pivot + entry_mm[:, :1] * self.medial + entry_mm[:, 1:] * self.cranial   # (N, 3)

        def move(points):  # (..., 3) -> (N, ..., 3)
            rel = np.asarray(points, float) - self.pivot
            return np.einsum("nij,...j->n...i", rot, rel) + shift.reshape((len(rot),) + (1,) * (rel.ndim - 1) + (3,))

        vertices = move(path.vertices)
        arc_starts = None if path.arc_start is None else move(path.arc_start)
        bends = None if path.arc is None else np.einsum("nij,j->ni", rot, path.arc.bend_direction)
        paths = [InstrumentPath(vertices[n], path.radius_mm, path.kind,
                                None if arc_starts is None else arc_starts[n],
                                None if bends is None else Arc(path.arc.radius_mm, path.arc.angle_deg, bends[n]))
                 for n in range(len(rot))]
        if lesion is None:
            return paths, [None] * len(paths)
        centres, axes = move(lesion.centre), np.einsum("nij,j->ni", rot, lesion.axis)
        lesions = [EllipsoidLesion(centres[n], axes[n], 2 * lesion.half_length_mm, 2 * lesion.radius_mm)
                   for n in range(len(rot))]
        return paths, lesions


@dataclass
class Robustness:
    """How forgiving one path is under a placement-error model (see the module docstring)."""

    model: PlacementErrorModel
    failed: Proportion                  # samples failing the check (a fail rule broken, or refused)
    refused: int                        # samples the checker refused (counted as failed)
    rules: dict[str, Proportion]        # per rule: samples breaking its margin (status not pass)
    severities: dict[str, str]
    terminus_uncovered: Proportion | None   # samples whose moved lesion no longer holds the terminus
    tolerance_deg: float
    tolerance_direction: str | None     # None when no direction failed up to the search's maximum
    tolerance_bounded: bool
    fragile: bool
    fragile_breach_probability: float
    seconds: float
    cpu_seconds: float

    @property
    def breach_probability(self) -> float:
        return self.failed.probability

    def words(self) -> str:
        """One line for people."""
        lo, hi = self.failed.interval
        fails = {k: v for k, v in self.rules.items() if self.severities[k] == FAIL} or self.rules
        worst = max(fails.items(), key=lambda kv: kv[1].count) if fails else ("", Proportion(0, 1))
        tol = (f"{self.tolerance_deg:.1f} deg ({self.tolerance_direction})" if self.tolerance_bounded
               else f"more than {self.tolerance_deg:.0f} deg in every direction")
        line = (f"placement error ({self.model.name}: entry SD {self.model.entry_sd_mm:g} mm, tilt SD "
                f"{self.model.medial_sd_deg:g}/{self.model.craniocaudal_sd_deg:g} deg medial/cranial, "
                f"{self.failed.total} samples): breach probability {100 * self.failed.probability:.1f} % "
                f"(95 % CI {100 * lo:.1f}-{100 * hi:.1f} %)")
        if worst[1].count:
            line += f", most often {worst[0]} ({100 * worst[1].probability:.1f} %)"
        if self.refused:
            line += f", {self.refused} samples missed the bone"
        line += f"; angle tolerance {tol}"
        if self.fragile:
            line += f"; FRAGILE (above {100 * self.fragile_breach_probability:.0f} %)"
        return line

    def to_dict(self) -> dict:
        return {
            "model": asdict(self.model),
            "breach": self.failed.to_dict(),
            "refused_samples": self.refused,
            "rules": {name: {**p.to_dict(), "severity": self.severities[name]} for name, p in self.rules.items()},
            "terminus_uncovered": None if self.terminus_uncovered is None else self.terminus_uncovered.to_dict(),
            "angle_tolerance_deg": round(self.tolerance_deg, 3),
            "angle_tolerance_direction": self.tolerance_direction,
            "angle_tolerance_bounded": self.tolerance_bounded,
            "angle_tolerance_definition": "the smallest tilt (deg) that fails the check along the worst of 8 "
                                          "directions (every 45 deg about the introducer), no entry offset",
            "fragile": self.fragile,
            "fragile_breach_probability": self.fragile_breach_probability,
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
        }


def _failed(result) -> bool:
    return isinstance(result, InputError) or result.verdict == FAIL


#: A checker of many paths: ``judge(paths, lesions)`` -> one CheckResult (or the InputError that
#: refused the path) per path, as :func:`bvn_plan.planning.safety.check_paths` of one vertebra's zones.
Judge = Callable[[list, list | None], list]


def zones_judge(zones: SafetyZones, rules: RuleSet = RuleSet()) -> Judge:
    """The safety checker of ``zones`` with ``rules`` as a :data:`Judge`."""
    return lambda paths, lesions: check_paths(zones, paths, lesions, rules)


def assess_path(judge: Judge, path: InstrumentPath, lesion: EllipsoidLesion | None, axes: ErrorAxes,
                rules: RuleSet = RuleSet(), settings: RobustnessSettings = RobustnessSettings(),
                terminus=None) -> Robustness:
    """The robustness of ``path`` (with its ``lesion``, moved with the tip) judged by ``judge``
    (whose ``rules`` name the severities) under ``settings.model``, the error acting on ``axes``;
    ``terminus`` (mm, model coordinates): also count the samples whose lesion no longer holds it."""
    model = _sampled(settings)
    started, cpu = time.perf_counter(), time.process_time()
    paths, lesions = axes.perturb(path, lesion, *model.draw())
    results = judge(paths, lesions if lesion is not None else None)
    uncovered = None if lesion is None else _uncovered(lesions, terminus)
    tolerance = _tolerance(judge, path, lesion, axes, settings)
    return _summary(settings, rules, [[r] for r in results], uncovered, tolerance, (started, cpu))


def assess_pair(zones: SafetyZones, plans: tuple, settings: RobustnessSettings = RobustnessSettings(),
                rules: RuleSet = RuleSet(), terminus=None) -> Robustness:
    """The robustness of a pair of probes (``plans``: the right and the left
    :class:`~bvn_plan.planning.planner.PathPlan`): each path moved by its own sampled errors (the
    second probe's drawn with the next seed: the two are placed independently), the union of both
    moved lesions judged with each moved path; a sample fails when either check fails. The angle
    tolerance: each probe tilted alone (the other as planned, the union judged), the least of the
    two, its direction named with the probe's side."""
    model = _sampled(settings)
    started, cpu = time.perf_counter(), time.process_time()
    frame = zones.landmarks.frame
    axes = [ErrorAxes.of_plan(p.path, p.check, frame, p.side) for p in plans]
    draws = (model.draw(), replace(model, seed=model.seed + 1).draw())
    moved = [ax.perturb(p.path, p.lesion, *d) for ax, p, d in zip(axes, plans, draws)]
    unions = [UnionLesion(list(parts)) for parts in zip(moved[0][1], moved[1][1])]
    # the union's lesion rules are judged once, with the first path; the second path's check
    # judges its instrument rules
    results = check_paths(zones, moved[0][0] + moved[1][0], [_union_points(u) for u in unions] + [None] * len(unions),
                          rules)
    n = len(unions)
    tolerances = []
    for k, (plan, ax) in enumerate(zip(plans, axes)):
        other = plans[1 - k].lesion

        def judge(paths, lesions, other=other):
            return check_paths(zones, paths, [_union_points(UnionLesion([les, other])) for les in lesions], rules)
        tolerance, direction = _tolerance(judge, plan.path, plan.lesion, ax, settings)
        tolerances.append((tolerance, direction and f"{plan.side} probe {direction}"))
    tolerance = min(tolerances, key=lambda t: (t[0], t[1] is None))
    return _summary(settings, rules, [[results[k], results[n + k]] for k in range(n)], _uncovered(unions, terminus),
                    tolerance, (started, cpu))


def _union_points(union: UnionLesion) -> trimesh.Trimesh:
    """The check points of a union of lesions (mm, model coordinates) as the checker reads a lesion
    surface: every part's own check points. The union solid's clearance from a zone is the least
    over its parts, so they judge it as exactly as its surface would, without the boolean union's
    mesh (tens of ms per sample)."""
    return trimesh.Trimesh(np.vstack([lesion_check_points(part) for part in union.parts]), np.zeros((0, 3), int),
                           process=False)


def _sampled(settings: RobustnessSettings) -> PlacementErrorModel:
    if settings.model.samples < 1:
        raise InputError("robustness needs at least one sample (samples = 0 turns it off before this call)")
    return settings.model


def _uncovered(lesions: list, terminus) -> Proportion | None:
    """The samples whose (moved) lesion no longer holds ``terminus`` (None: not asked)."""
    if terminus is None:
        return None
    t = np.asarray(terminus, float)[None]
    return Proportion(int(sum(not les.contains(t)[0] for les in lesions)), len(lesions))


def _summary(settings: RobustnessSettings, rules: RuleSet, samples: list[list], uncovered: Proportion | None,
             tolerance: tuple[float, str | None], clocks: tuple[float, float]) -> Robustness:
    """The :class:`Robustness` of ``samples`` (per sample, its checks' results: one per path; the
    sample fails when any fails, and breaks a rule when any of its checks does)."""
    n = len(samples)
    counts = {rule.name: 0 for rule in rules.rules}
    present: set[str] = set()
    for sample in samples:
        judged = [rr for r in sample if not isinstance(r, InputError) for rr in r.rules]
        present |= {rr.rule for rr in judged}
        for name in {rr.rule for rr in judged if rr.status != PASS}:
            counts[name] += 1
    prob = Proportion(sum(any(_failed(r) for r in sample) for sample in samples), n)
    refused = sum(any(isinstance(r, InputError) for r in sample) for sample in samples)
    angle, direction = tolerance
    return Robustness(settings.model, prob, refused,
                      {name: Proportion(c, n) for name, c in counts.items() if name in present},
                      {rule.name: rule.severity for rule in rules.rules}, uncovered,
                      angle, direction, direction is not None,
                      prob.probability > settings.fragile_breach_probability, settings.fragile_breach_probability,
                      time.perf_counter() - clocks[0], time.process_time() - clocks[1])


def _tolerance(judge: Judge, path, lesion, axes: ErrorAxes, settings: RobustnessSettings) -> tuple[float, str | None]:
    """The smallest failing tilt (deg) over :data:`TOLERANCE_DIRECTIONS` and its direction (None and
    the search's maximum when none fails), as the module docstring defines it."""
    names = list(TOLERANCE_DIRECTIONS)
    units = np.array([TOLERANCE_DIRECTIONS[k] for k in names], float)
    units /= np.linalg.norm(units, axis=1, keepdims=True)
    grid = np.arange(settings.tolerance_step_deg, settings.tolerance_max_deg + 1e-9, settings.tolerance_step_deg)

    def fails(angles: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        tilts = angles[:, None] * dirs
        paths, lesions = axes.perturb(path, lesion, np.zeros_like(tilts), tilts)
        return np.array([_failed(r) for r in judge(paths, lesions if lesion is not None else None)])

    # the grid is checked one angle at a time, every direction at once, up to the first angle at
    # which any direction fails: the directions failing there hold the least first failing grid
    # angle (any other direction's failing tilt lies beyond that angle, so it cannot be the least)
    for row, angle in enumerate(grid):
        bad = fails(np.full(len(names), angle), units)
        if bad.any():
            break
    else:
        return float(grid[-1]), None
    failing = np.flatnonzero(bad)
    lo = np.full(len(failing), grid[row - 1] if row > 0 else 0.0)
    hi = np.full(len(failing), float(angle))
    while (hi - lo).max() > settings.tolerance_resolution_deg:
        mid = 0.5 * (lo + hi)
        bad = fails(mid, units[failing])
        hi, lo = np.where(bad, mid, hi), np.where(bad, lo, mid)
    k = int(np.argmin(hi))
    return float(hi[k]), names[failing[k]]


def assess_plan(zones: SafetyZones, plan, settings: RobustnessSettings = RobustnessSettings(),
                rules: RuleSet = RuleSet(), terminus=None) -> Robustness:
    """:func:`assess_path` of a planner's :class:`~bvn_plan.planning.planner.PathPlan`: pivot at its
    bone entry, medial toward the midline from its side, cranial toward the vertebra frame's superior."""
    axes = ErrorAxes.of_plan(plan.path, plan.check, zones.landmarks.frame, plan.side)
    return assess_path(zones_judge(zones, rules), plan.path, plan.lesion, axes, rules, settings, terminus)


def robustness_reasons(best, plans: list, band_mm: float) -> list[str]:
    """The recommendation's reasons about robustness: the recommended plan's figures, the band its
    search kept beyond the canal margin (``band_mm``: the settings' band) or that none could be
    kept, and fragile plans passed over or every plan fragile (``plans``: the plans weighed)."""
    rob = best.robustness
    if rob is None:
        return []
    reasons = [f"{best.side} {best.approach}: {rob.words()}"]
    if best.canal_band_mm > 0:
        reasons.append(f"robustness-aware search: the lesion was kept {best.canal_band_mm:.1f} mm beyond the canal margin "
                       "(robustness setting canal_band_mm), trading zone and terminus coverage for fewer breaches")
    elif band_mm > 0:
        reasons.append(f"no {best.approach} plan on both sides keeps the lesion {band_mm:.1f} mm beyond the canal "
                       "margin (robustness setting canal_band_mm): planned at the margin itself")
    if rob.fragile:
        which = "passing plan" if best.verdict == PASS else "plan"
        reasons.append(f"every {which} is fragile: the recommended one breaks a rule that fails the plan in "
                       f"{100 * rob.breach_probability:.0f} % of sampled placements; keeping it needs a smaller "
                       "placement error than the model's, or another plan")
    passed_over = [] if rob.fragile else [p for p in plans if p is not best and p.robustness is not None
                                          and p.robustness.fragile]
    for p in passed_over:
        reasons.append(f"fragile: {p.side} {p.approach} (breach probability {100 * p.robustness.breach_probability:.0f} %, "
                       f"angle tolerance {p.robustness.tolerance_deg:.1f} deg)")
    return reasons
