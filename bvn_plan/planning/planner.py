"""Trajectory planning: transpedicular (straight introducer + curved cannula, or straight only) and
extrapedicular paths to the BVN target zone, each judged by the safety checker.

The target is a zone, not a point (docs/sources.md "Safety"): the
terminus must lie inside the lesion at least ``coverage_margin_mm`` deep, the lesion must keep
every safety margin, and the tip goes where both hold. The tip-to-terminus distance is
minimised after safety and reported against ``target_tolerance_mm``; it never overrides a rule.

Search (deterministic, fixed grids, mm, model coordinates; grids laid out in the vertebra frame and
mirrored between sides):

0. refusals with numbers before any search: a terminus nearer the canal than the canal margin plus
   the coverage margin (no lesion can do both), a pedicle isthmus narrower than the introducer plus
   two pedicle margins;
1. transpedicular lines: through the isthmus centre (and 4 offsets in its cross-section) at every
   (medial, cranio-caudal) angle of a grid, screened by depth in bone and canal clearance;
2. tip candidates: a grid of points anterior to and around the terminus;
3. for a line (point P, direction d) and tip T the tangent arc of the cannula radius R is closed
   form: with a0 = (T-P).d and p0 = |(T-P) - a0 d|, the arc starts at depth s = a0 - sqrt(p0 (2R - p0))
   and sweeps 2 atan2(p0, sqrt(p0 (2R - p0))); straight-only paths aim the line at T;
4. extrapedicular: straight lines through each tip candidate whose bone entry lies on the lateral
   body wall near the pedicle-body junction with no bone behind it;
5. every candidate is scored on grid distances (bone, canal, endplate planes, root corridor,
   lesion samples) and the exact terminus depth in its lesion; the best ones get exact lesion-to-
   canal distances; the best few distinct ones are judged by :func:`bvn_plan.planning.safety.check_path`
   with the device's ellipsoid lesion, and only a path whose verdict is not "fail" and whose lesion
   covers the terminus is returned as a plan. When nothing survives, the blocking constraint is
   named with the best value any candidate reached.

Score of a candidate (mm, higher is better): its smallest clearance beyond the rule margins
(capped at ``clearance_cap_mm``) minus ``tip_weight`` x the tip distance beyond
``target_tolerance_mm``. Near-equal scores (RANK_QUANTUM_MM) are decided by the nearer tip, then
the more centred pedicle passage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..geometry.crossings import interval_around, line_crossings
from ..device import DeviceProfile
from ..errors import InputError
from ..landmarks import Landmarks, TerminusParameters
from ..lesion import EllipsoidLesion, spheroid_signed_distance, unit_icosphere
from .path_numbers import path_numbers
from ..paths import Arc, InstrumentPath
from .safety import FAIL, PASS, SEGMENTAL_ARTERY_PREVALENCE, CheckResult, RuleSet, SafetyZones, check_path
from ..anatomy.symmetry import reflect

#: Icosphere level of the lesion surface handed to the checker: 642 points on the spheroid, whose
#: clearances lie within 0.02 mm of the exact surface's for the default 10 x 14 mm lesion (level 4,
#: 2562 points, takes 3x longer for < 0.01 mm).
LESION_CHECK_SUBDIVISIONS = 3

#: Icosphere level of the lesion samples whose canal clearance is recomputed exactly for the best
#: ranked screened candidates (162 points).
REFINED_LESION_SUBDIVISIONS = 2
#: Those 162 points overstate the clearance of the smooth spheroid by up to this much (mm; 0.08 mm
#: measured for the default 10 x 14 mm lesion), so it is taken off before ranking.
REFINED_LESION_ERROR_MM = 0.1
#: At most this many rounds of refinement. A round probes the best ranked unprobed candidates, the
#: waiting ones and PROBE_BATCH more, or refines those to be judged: a probe, one exact distance at
#: the lesion sample of lowest grid estimate, bounds the refined clearance from above (it is one of
#: the samples the minimum runs over) and is within 0.1 mm of it for most candidates, so only the
#: judged ones need the full refinement. (VHM L4 needs 67 rounds on its right side, where refined
#: near-duplicates of the judged ones fall one after the other.)
REFINE_ROUNDS = 200
PROBE_BATCH = 32

#: Checked plans whose scores lie within this (mm) of the best count as equal, and the nearer tip,
#: then the centred pedicle passage decide: about the accuracy of the grid distances.
RANK_QUANTUM_MM = 0.25
#: A side takes the mirror image of the other side's plan unless that is clearly worse there: a
#: lower score by more than RANK_QUANTUM_MM, a tip farther from the terminus (to 0.1 mm) or a pedicle
#: passage less centred by more than this (mm; found pedicles differ left to right by up to ~0.5 mm
#: on the symmetrised VHM meshes). Near-ties then end in mirror-image plans on both sides.
MIRROR_CENTRING_TOLERANCE_MM = 0.5

#: Lever arm (mm) that turns the angle between an introducer and the pedicle axis into an
#: off-centre distance: about half an isthmus-to-body passage [A].
CENTRING_LEVER_MM = 10.0

#: Bisection steps for the terminus depth inside the spheroid (each halves a bracket of a few
#: units: 40 steps resolve it far below 1e-6 mm).
ELLIPSE_ITERATIONS = 40

#: The preselection scores first this many times ``screened_candidates`` (line, tip) pairs of best
#: bound (line score, tip distance, the tip's best coverage); the ``screened_candidates``-th best score
#: among them is the bar the other pairs must clear to be scored.
PRESELECT_PROBE = 16

#: The extrapedicular line search samples each line from its tip outward this many 2 mm steps at a
#: time until it leaves the bone (most leave within a few batches; the rest are not sampled further).
EXIT_SEARCH_STEPS = 8

#: Added (mm) to each face's bounding-sphere radius when picking the faces a line can cross, so that
#: rounding cannot drop a face the line grazes.
FACE_SPHERE_TOLERANCE_MM = 1e-6

APPROACHES = ("transpedicular", "transpedicular-straight", "extrapedicular")

#: A pedicle found with a lower confidence than this blocks the routes on its side: planning
#: refuses rather than produce a plausible-looking path past a pedicle it did not understand
#: (the anatomy's own refusal threshold, anatomy.REFUSE_BELOW).
PEDICLE_CONFIDENCE_MIN = 0.25
SIDES = ("right", "left")


@dataclass(frozen=True)
class PlannerSettings:
    """Every tunable number of the planner (mm, degrees). [A] = assumption, see the field notes.

    * ``target_tolerance_mm``: wanted tip-to-terminus distance (issue 5 default 2 mm); a preference
      traded against clearance, reported per plan, never allowed to break a safety rule.
    * ``coverage_margin_mm``: the terminus lies at least this deep inside the lesion [A, 1 mm].
    * ``pedicle_margin_mm``: bone wanted on each side of the introducer in the isthmus; an isthmus
      narrower than introducer + 2 x margin blocks the transpedicular route [A, 1 mm].
    * ``approach_mm``: soft-tissue length drawn before the bone entry (the path's skin-side start).
    * ``arc_start_past_wall_mm``: where the cannula may start bending, measured anteriorly from the
      pedicle-body junction ("just past the posterior wall") [A, 0-12 mm].
    * ``medial_angles_deg`` / ``craniocaudal_angles_deg``: introducer angle grid in the vertebra
      frame (medial positive toward the midline, cranial positive) [A: covers the L1-S1 transverse
      pedicle angles 11-43 deg of docs/sources.md 'Morphometry' with room either side].
    * ``isthmus_offset_mm``: offset of the four off-centre line points in the isthmus section.
    * ``screened_candidates``: (line, tip) pairs screened on sampled paths, the most promising by a
      cheap pre-score (line depth in the pedicle, coverage, lesion reach toward the canal); the best
      ranked of them, down to the last one judged exactly, get exact lesion-to-canal distances.
      (1500 and 3000 give the same plans on VHM L3-L5, TotalSegmentator L3-L5 and synthetic L4.)
    * ``tip_offsets_*_mm``: tip grid around the terminus in the vertebra frame; x toward the far
      side (positive past the midline), y anterior, z superior.
    * ``extrapedicular_medial_angles_deg`` / ``extrapedicular_craniocaudal_angles_deg``: grid of
      straight extrapedicular directions.
    * ``extrapedicular_entry_window_mm``: the bone entry must lie this far (min, max) anterior of the
      pedicle-body junction [A: "at the pedicle-body junction lateral to the pedicle"].
    * ``clear_behind_entry_mm``: no bone may lie this far behind an extrapedicular bone entry (the
      trajectory would go through the transverse process or facet) [A].
    * ``clearance_cap_mm``: clearance above this many mm beyond every margin earns nothing more; the
      tip distance beyond tolerance costs ``tip_weight`` mm of clearance per mm [A].
    * ``exact_checks``: this many distinct candidates, best screened first, judged exactly per
      approach and side; ``alternatives``: runner-ups reported beside the plan.
    """

    target_tolerance_mm: float = 2.0
    coverage_margin_mm: float = 1.0
    pedicle_margin_mm: float = 1.0
    approach_mm: float = 15.0
    arc_start_past_wall_mm: tuple[float, float] = (0.0, 12.0)
    medial_angles_deg: tuple[float, ...] = tuple(np.arange(-10.0, 52.5, 2.5))
    craniocaudal_angles_deg: tuple[float, ...] = tuple(np.arange(-15.0, 17.5, 2.5))
    isthmus_offset_mm: float = 1.5
    screened_candidates: int = 1500
    tip_offsets_x_mm: tuple[float, ...] = tuple(np.arange(-4.0, 5.0, 1.0))
    tip_offsets_y_mm: tuple[float, ...] = tuple(np.arange(0.0, 8.5, 0.5))
    tip_offsets_z_mm: tuple[float, ...] = (-2.0, 0.0, 2.0)
    extrapedicular_medial_angles_deg: tuple[float, ...] = tuple(np.arange(15.0, 85.0, 5.0))
    extrapedicular_craniocaudal_angles_deg: tuple[float, ...] = tuple(np.arange(-20.0, 25.0, 5.0))
    extrapedicular_entry_window_mm: tuple[float, float] = (-5.0, 12.0)
    clear_behind_entry_mm: float = 40.0
    clearance_cap_mm: float = 2.0
    tip_weight: float = 1.0
    exact_checks: int = 3
    alternatives: int = 1

    def __post_init__(self):
        for name in ("target_tolerance_mm", "coverage_margin_mm", "pedicle_margin_mm", "approach_mm",
                     "isthmus_offset_mm", "clear_behind_entry_mm", "clearance_cap_mm", "tip_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise InputError(f"planner setting {name} must be a non-negative number, got {value!r}")
        if self.exact_checks < 1 or self.alternatives < 0:
            raise InputError("planner settings: exact_checks must be >= 1 and alternatives >= 0")
        lo, hi = self.arc_start_past_wall_mm
        if not lo <= hi:
            raise InputError(f"arc_start_past_wall_mm {self.arc_start_past_wall_mm}: min must not exceed max")


@dataclass
class PathPlan:
    """One checked trajectory (mm, model coordinates) with its lesion, verdict and clinician's numbers.

    ``score_mm``: the smallest exact clearance beyond its margin over every failing rule and the
    terminus coverage (capped, minus the tip-distance penalty), higher is better.
    """

    approach: str
    side: str
    path: InstrumentPath
    lesion: EllipsoidLesion
    check: CheckResult
    numbers: dict
    tip_to_terminus_mm: float
    coverage_mm: float          # depth of the terminus inside the lesion
    min_slack_mm: float         # smallest clearance beyond its margin over the failing rules
    score_mm: float
    centring_mm: float          # pedicle passage off centre: isthmus offset + lever x sine of axis angle

    @property
    def verdict(self) -> str:
        return self.check.verdict


@dataclass
class ApproachResult:
    """The outcome for one approach on one side: a plan (or None with the blocking reasons)."""

    approach: str
    side: str
    plan: PathPlan | None
    alternatives: list[PathPlan] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    candidates: int = 0


@dataclass
class LevelPlan:
    """Every approach x side for one vertebra and the recommendation (mm, model coordinates)."""

    level: str
    landmarks: Landmarks
    device: DeviceProfile
    rules: RuleSet
    settings: PlannerSettings
    results: list[ApproachResult]
    recommendation: PathPlan | None
    recommendation_reasons: list[str]
    notes: list[str] = field(default_factory=list)

    def result(self, approach: str, side: str) -> ApproachResult:
        for r in self.results:
            if r.approach == approach and r.side == side:
                return r
        raise InputError(f"no result for approach {approach!r} side {side!r}: approaches {APPROACHES}, sides {SIDES}")


# ---------------------------------------------------------------------------------------------
# Public entry point


def plan_level(vertebra, device: DeviceProfile = DeviceProfile(), rules: RuleSet = RuleSet(),
               terminus: TerminusParameters | None = None, settings: PlannerSettings = PlannerSettings(),
               zones: SafetyZones | None = None, approaches: tuple[str, ...] = APPROACHES) -> LevelPlan:
    """Plan every approach on both sides of ``vertebra`` (mm) and recommend one.

    Uses ``vertebra.landmarks`` when present (ground truth or earlier findings); finds the anatomy
    when they are missing or when ``terminus`` asks for a different target. ``zones`` may pass
    prebuilt safety zones of the same landmarks; ``approaches`` limits the search to some of
    :data:`APPROACHES`. Raises :class:`~bvn_plan.errors.AnatomyError`
    when the anatomy cannot be planned on; an approach with no safe path is returned with
    ``plan=None`` and its blocking reasons (never a failing path labelled as a plan).
    """
    from ..anatomy.find import find_anatomy

    unknown = [a for a in approaches if a not in APPROACHES]
    if unknown or not approaches:
        raise InputError(f"unknown approach(es) {unknown or approaches!r}: choose from {', '.join(APPROACHES)}")
    if not isinstance(device, DeviceProfile):
        raise InputError(f"device must be a DeviceProfile, got {type(device).__name__}")
    if vertebra.landmarks is None or terminus is not None:
        find_anatomy(vertebra, terminus or TerminusParameters())
    landmarks = vertebra.landmarks
    if zones is None or zones.landmarks is not landmarks:
        zones = SafetyZones(vertebra.mesh, landmarks)
    notes = []
    if device.lesion_model != "ellipsoid":
        notes.append(f"the device profile names the {device.lesion_model!r} lesion model; paths were planned "
                     "and checked with its geometric ellipsoid (run the bioheat model to confirm the lesion)")
    planner = _Planner(zones, device, rules, settings)
    results = []
    for approach in approaches:
        right, left = (planner.plan(approach, side) for side in SIDES)
        # Each side also weighs the mirror image of the other's plan, so that near-ties on a nearly
        # symmetric vertebra end in mirror-image plans rather than in either of two equal ones.
        # When the left side takes the right plan's mirror image, the mirror image of that is the right
        # plan itself: nothing to weigh.
        weighed = planner.weigh_mirror_image(left, right)
        if weighed.plan is left.plan:
            right = planner.weigh_mirror_image(right, left)
        results += [right, weighed]
    recommendation, reasons = _recommend(results, landmarks.level, settings)
    return LevelPlan(landmarks.level, landmarks, device, rules, settings, results, recommendation, reasons, notes)


def _recommend(results: list[ApproachResult], level: str, settings: PlannerSettings):
    """Prefer a passing plan over a warning one, the curved transpedicular route over the others
    (the standard technique), then the larger score."""
    plans = [r.plan for r in results if r.plan is not None]
    if not plans:
        reasons = ["no approach on either side gives a safe plan:"]
        reasons += [f"{r.side} {r.approach}: {'; '.join(r.blocked)}" for r in results]
        return None, reasons
    preference = {"transpedicular": 0, "transpedicular-straight": 1, "extrapedicular": 2}
    best = max(plans, key=lambda p: (p.verdict == PASS, -preference[p.approach], round(p.score_mm, 1), p.side == "right"))
    reasons = [f"{best.side} {best.approach}: checker verdict {best.verdict}; smallest clearance beyond its margin "
               f"{best.min_slack_mm:.1f} mm; the lesion covers the terminus {best.coverage_mm:.1f} mm deep; "
               f"the tip is {best.tip_to_terminus_mm:.1f} mm from the terminus"]
    if best.tip_to_terminus_mm > settings.target_tolerance_mm + 0.05:
        reasons.append(f"the tip is {best.tip_to_terminus_mm:.1f} mm from the terminus, beyond the "
                       f"{settings.target_tolerance_mm:.1f} mm target tolerance: the nearest tip the search found that "
                       f"keeps every margin (lesion to canal {best.check.clearances['spinal_canal:lesion'].clearance_mm:.1f} mm, "
                       f"terminus {best.coverage_mm:.1f} mm inside the lesion)")
    others = sorted((p for p in plans if p is not best), key=lambda p: -p.score_mm)
    for p in others:
        reasons.append(f"also possible: {p.side} {p.approach} (verdict {p.verdict}, score {p.score_mm:.1f} mm)")
    if any(r.approach == "extrapedicular" and r.plan is not None for r in results) and level in ("L4", "L5"):
        reasons.append(f"extrapedicular access at {level}: segmental arteries lie in the puncture zone in "
                       f"{SEGMENTAL_ARTERY_PREVALENCE[level]:.0f}% and the authors advise against it (Liu 2019)")
    if best.verdict != PASS:
        reasons.append("the recommended plan carries warnings: " + "; ".join(best.check.reasons))
    return best, reasons


def _mirror_path(path: InstrumentPath, plane) -> InstrumentPath:
    """The mirror image of ``path`` through ``plane`` (mm, model coordinates)."""
    def direction(v):
        return v - 2.0 * (v @ plane.normal) * plane.normal
    arc = None if path.arc is None else Arc(path.arc.radius_mm, path.arc.angle_deg, direction(path.arc.bend_direction))
    arc_start = None if path.arc_start is None else reflect(path.arc_start[None], plane)[0]
    return InstrumentPath(reflect(path.vertices, plane), path.radius_mm, path.kind, arc_start, arc)


# ---------------------------------------------------------------------------------------------
# The search


@dataclass
class _Candidates:
    """Candidate paths of one approach and side, sampled for screening (mm, model coordinates)."""

    points: np.ndarray        # (N, M, 3) samples from the skin-side start to the tip
    in_bone_from: np.ndarray  # (N,) first sample index counted as inside bone (the bone entry)
    tip: np.ndarray           # (N, 3)
    tip_dir: np.ndarray       # (N, 3)
    build: Callable[[int], InstrumentPath]   # candidate index -> the path
    line_key: np.ndarray      # (N, 3) a point that identifies the introducer line (for diversity)
    centring: np.ndarray      # (N,) how far the pedicle passage is from centred (mm), 0 for extrapedicular


class _Planner:
    def __init__(self, zones: SafetyZones, device: DeviceProfile, rules: RuleSet, settings: PlannerSettings):
        self.zones, self.device, self.rules, self.settings = zones, device, rules, settings
        self.lm = zones.landmarks
        self.frame = self.lm.frame
        self.radius = device.introducer_diameter_mm / 2
        self.terminus = np.asarray(self.lm.bvn_terminus, float)
        self.margins = {r.name: r.margin_mm for r in rules.rules}
        self.terminus_to_canal = float(zones.canal.exact(self.terminus[None])[0])
        # each face's bounding sphere (centroid, farthest corner), so that a line's crossings are
        # sought only among the faces it can meet
        corners = zones.mesh.vertices[zones.mesh.faces]
        self._face_centres = corners.mean(axis=1)
        self._face_radii = np.linalg.norm(corners - self._face_centres[:, None], axis=2).max(axis=1)

    def margin(self, name: str, default: float = 0.0) -> float:
        return self.margins.get(name, default)

    # -- geometry helpers ---------------------------------------------------------------------
    def _local_dir(self, side: str, medial_deg, cc_deg) -> np.ndarray:
        """Unit directions (model coordinates) from medial / cranio-caudal angles in the vertebra frame."""
        a, b = np.radians(np.asarray(medial_deg, float)), np.radians(np.asarray(cc_deg, float))
        sign = 1.0 if side == "right" else -1.0
        local = np.stack([-sign * np.sin(a) * np.cos(b), np.cos(a) * np.cos(b), np.sin(b)], axis=-1)
        return self.frame.direction_to_model(local)

    def _tip_targets(self, side: str, even_only: bool = False) -> np.ndarray:
        """Tip candidates around the terminus (mm, model coordinates); ``even_only`` keeps the
        offsets on a 2 mm lattice (x and y even), for the costlier extrapedicular line search."""
        s = self.settings
        sign = 1.0 if side == "right" else -1.0
        t_local = self.frame.to_local(self.terminus)
        grid = np.array([[-sign * x, y, z] for x in s.tip_offsets_x_mm for y in s.tip_offsets_y_mm
                         for z in s.tip_offsets_z_mm
                         if not even_only or (x % 2 == 0 and y % 2 == 0)])
        tips = self.frame.to_model(t_local + grid)
        # a spheroid holds the ball of its smaller semi-axis about its centre, which lies lesion_offset_mm
        # behind the tip: a tip nearer the canal than this cannot keep the lesion's canal margin
        dev = self.device
        reach = min(dev.lesion_length_mm, dev.lesion_diameter_mm) / 2 - dev.lesion_offset_mm
        keep = self.zones.canal.approximate(tips) + self.zones.canal.band >= self.margin("canal_lesion", 10.0) + reach
        return tips[keep]

    # -- per approach and side ----------------------------------------------------------------
    def plan(self, approach: str, side: str) -> ApproachResult:
        if side not in self.lm.pedicles:
            return ApproachResult(approach, side, None, blocked=[f"no {side} pedicle was found"])
        confidence = self.lm.confidence.get(f"{side}_pedicle", 1.0)
        if confidence < PEDICLE_CONFIDENCE_MIN:
            # both routes lean on the pedicle: the transpedicular one goes through it, the
            # extrapedicular one beside it, past the exiting-root corridor placed under it
            why = [n for n in self.lm.notes if side in n and "pedicle" in n]
            return ApproachResult(approach, side, None, blocked=[
                f"the {side} pedicle was not recognised with confidence ({confidence:.2f} < "
                f"{PEDICLE_CONFIDENCE_MIN:.2f}){': ' + '; '.join(why) if why else ''}; no route through or "
                "beside it is planned on a pedicle the mesh does not show clearly"])
        need = self.margin("canal_lesion", 10.0) + self.settings.coverage_margin_mm
        if self.terminus_to_canal < need:
            return ApproachResult(approach, side, None, blocked=[
                f"the terminus is {self.terminus_to_canal:.1f} mm from the spinal canal: no lesion can cover it "
                f"{self.settings.coverage_margin_mm:.1f} mm deep and keep its {self.margin('canal_lesion', 10.0):.1f} mm "
                f"canal margin (that needs {need:.1f} mm); change the terminus depth, the coverage margin or the canal "
                "rule knowingly"])
        pedicle = self.lm.pedicles[side]
        if approach.startswith("transpedicular"):
            need = self.device.introducer_diameter_mm + 2 * self.settings.pedicle_margin_mm
            narrow = min(pedicle.isthmus_width_mm, pedicle.isthmus_height_mm)
            if narrow < need:
                which = "narrower" if pedicle.isthmus_width_mm <= pedicle.isthmus_height_mm else "lower"
                return ApproachResult(approach, side, None, blocked=[
                    f"{side} pedicle isthmus {narrow:.1f} mm is {which} than the introducer "
                    f"{self.device.introducer_diameter_mm:.1f} mm + 2 x {self.settings.pedicle_margin_mm:.1f} mm margin "
                    f"= {need:.1f} mm"])
            cands, blocked = (self._curved(side) if approach == "transpedicular" else self._straight(side))
        else:
            cands, blocked = self._extrapedicular(side)
        if cands is None:
            return ApproachResult(approach, side, None, blocked=blocked)
        return self._judge(approach, side, cands)

    def weigh_mirror_image(self, result: ApproachResult, other: ApproachResult) -> ApproachResult:
        """``result`` with the mirror image of ``other``'s plan through the mid-sagittal plane as its
        plan when that ranks first here or is not clearly worse (MIRROR_CENTRING_TOLERANCE_MM above); for
        transpedicular approaches when both sides planned. The mirror image must pass within the
        isthmus offset (plus that tolerance) of this side's isthmus centre, keep the introducer within
        the device's depth and the cannula's bend within the allowed window past the wall, and pass
        the checker like any other plan."""
        if result.plan is None or other.plan is None or not result.approach.startswith("transpedicular"):
            return result
        path = _mirror_path(other.plan.path, self.lm.midsagittal_plane)
        axis = path.vertices[1] - path.vertices[0]
        axis /= np.linalg.norm(axis)
        rel = self.lm.pedicles[result.side].isthmus_centre - path.start
        if np.linalg.norm(rel - (rel @ axis) * axis) > self.settings.isthmus_offset_mm + MIRROR_CENTRING_TOLERANCE_MM:
            return result  # the mirror image misses this side's isthmus
        if path.arc_start is not None:
            past = (path.arc_start - self.lm.pedicles[result.side].body_junction) @ self.frame.anterior
            lo, hi = self.settings.arc_start_past_wall_mm
            if not lo <= past <= hi:
                return result
        plan = self._exact(result.approach, result.side, path,
                           float(self._centring(result.side, path.start[None], axis[None])[0]))
        if plan.numbers["depth_introducer_in_bone_mm"] > self.device.introducer_max_depth_mm:
            return result
        own = result.plan
        if plan.check.verdict == FAIL or plan.coverage_mm < self.settings.coverage_margin_mm:
            return result
        clearly_worse = ((plan.verdict != PASS and own.verdict == PASS)
                         or plan.score_mm < own.score_mm - RANK_QUANTUM_MM
                         or round(plan.tip_to_terminus_mm, 1) > round(own.tip_to_terminus_mm, 1)
                         or plan.centring_mm > own.centring_mm + MIRROR_CENTRING_TOLERANCE_MM)
        if clearly_worse and self._choose([own, plan])[0] is not plan:
            return result
        return ApproachResult(result.approach, result.side, plan, [own, *result.alternatives][:self.settings.alternatives],
                              result.blocked, result.candidates)

    def _isthmus_points(self, side: str) -> np.ndarray:
        """The isthmus centre and four points offset transversely and cranio-caudally (mm, model
        coordinates); transverse offsets shrink to a quarter of a narrow isthmus's width."""
        s = self.settings
        ped = self.lm.pedicles[side]
        sign = 1.0 if side == "right" else -1.0
        offsets = s.isthmus_offset_mm * np.array([[0, 0, 0], [sign, 0, 0], [-sign, 0, 0], [0, 0, 1], [0, 0, -1]], float)
        offsets[:, 0] *= min(1.0, ped.isthmus_width_mm / 4 / max(s.isthmus_offset_mm, 1e-9))
        return self.frame.to_model(self.frame.to_local(ped.isthmus_centre) + offsets)

    def _skin_start(self, point: np.ndarray, direction: np.ndarray, t_guess: float) -> np.ndarray:
        """The path's skin-side start: ``approach_mm`` before the exact bone entry of the line
        ``point + t direction`` (mm, model coordinates), the mesh crossing nearest ``t_guess`` (the
        grid estimate) that starts the bone interval holding ``point``."""
        mesh = self.zones.mesh
        rel = self._face_centres - point
        along = rel @ direction / (direction @ direction)
        met = np.linalg.norm(rel - along[:, None] * direction, axis=1) <= self._face_radii + FACE_SPHERE_TOLERANCE_MM
        t = line_crossings(mesh.vertices, mesh.faces[met], point, direction)
        interval = interval_around(t, 0.0)
        entry = interval[0] if interval is not None and abs(interval[0] - t_guess) < 3.0 else t_guess
        return point + (entry - self.settings.approach_mm) * direction

    def _centring(self, side: str, points: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """How far each introducer line (through ``points`` along ``dirs``) is from the centred one
        (through the isthmus centre along the pedicle axis): its distance from the isthmus centre plus
        CENTRING_LEVER_MM x the sine of its angle to the axis (mm)."""
        ped = self.lm.pedicles[side]
        rel = ped.isthmus_centre - points
        offset = np.linalg.norm(rel - np.einsum("nk,nk->n", rel, dirs)[:, None] * dirs, axis=1)
        sine = np.linalg.norm(np.cross(dirs, ped.axis_direction), axis=1)
        return offset + CENTRING_LEVER_MM * sine

    def _pedicle_lines(self, side: str):
        """Introducer lines through the isthmus: points (L, 3), directions (L, 3), stage-1 score (L,)
        and bone-entry distance behind the isthmus point (L,), all mm, model coordinates."""
        s = self.settings
        points = self._isthmus_points(side)
        ma, ca = np.meshgrid(s.medial_angles_deg, s.craniocaudal_angles_deg, indexing="ij")
        dirs = self._local_dir(side, ma.ravel(), ca.ravel())
        P = np.repeat(points, len(dirs), axis=0)
        D = np.tile(dirs, (len(points), 1))
        t = np.arange(-50.0, 15.5, 1.0)
        pts = P[:, None, :] + t[None, :, None] * D[:, None, :]
        bone = self.zones.bone.approximate(pts.reshape(-1, 3)).reshape(pts.shape[:2])
        canal = self.zones.canal.approximate(pts.reshape(-1, 3)).reshape(pts.shape[:2])
        i0 = int(np.flatnonzero(t == 0)[0])
        outside_behind = bone[:, :i0] >= 0
        has_entry = outside_behind.any(axis=1) & (bone[:, i0] < 0)
        last_out = np.where(outside_behind.any(axis=1), i0 - 1 - np.argmax(outside_behind[:, ::-1], axis=1), -1)
        entry_t = t[np.clip(last_out + 1, 0, len(t) - 1)]
        idx = np.arange(len(t))[None, :]
        in_ped = (idx >= last_out[:, None] + 1) & (t[None, :] >= entry_t[:, None] + SafetyZones.ENTRY_ZONE_MM)
        depth = np.where(in_ped, -bone, np.inf).min(axis=1) - self.radius
        canal_clear = np.where(t[None, :] >= entry_t[:, None] - s.approach_mm, canal, np.inf).min(axis=1) - self.radius
        score = np.minimum(depth, canal_clear - self.margin("canal_instrument"))
        score = np.where(has_entry, score, -np.inf)
        return P, D, score, -entry_t

    def _transpedicular_samples(self, P, D, entry_back, B, tips, n_vec, theta, R):
        """Sampled paths: skin start -> bone entry -> arc start B -> arc to the tip (mm, model coords)."""
        s = self.settings
        entry = P - entry_back[:, None] * D
        start = entry - s.approach_mm * D
        a = np.linspace(0, 1, 6, endpoint=False)[None, :, None]
        approach = start[:, None] + a * (entry - start)[:, None]
        b = np.linspace(0, 1, 20, endpoint=False)[None, :, None]
        straight = entry[:, None] + b * (B - entry)[:, None]
        phi = np.linspace(0, 1, 12)[None, :] * theta[:, None]
        arc = (B[:, None] + R * np.sin(phi)[..., None] * D[:, None] + R * (1 - np.cos(phi))[..., None] * n_vec[:, None])
        arc[:, -1] = tips
        pts = np.concatenate([approach, straight, arc], axis=1)
        return pts, np.full(len(P), approach.shape[1])

    def _curved(self, side: str):
        s, dev = self.settings, self.device
        R = dev.cannula_radius_mm
        P, D, score1, entry_back = self._pedicle_lines(side)
        good = np.flatnonzero(score1 > 0)
        if len(good) == 0:
            return None, [self._pedicle_block(side, score1)]
        P, D, entry_back, score1 = P[good], D[good], entry_back[good], score1[good]
        tips = self._tip_targets(side)
        pairs = self._preselect(side, P, D, score1, entry_back, tips)
        if pairs is None:
            lo, hi = s.arc_start_past_wall_mm
            return None, [f"no cannula arc of radius {R:.0f} mm and at most {dev.cannula_max_arc_deg:.0f} deg that "
                          f"starts {lo:.0f}-{hi:.0f} mm past the posterior wall reaches the target zone from a line "
                          f"through the {side} pedicle"]
        li, ti = pairs
        # the chosen pairs' arcs in full: arc start B, bend direction n, sweep theta, tip direction
        P, D = P[li], D[li]
        W = tips[ti] - P
        a0 = np.einsum("nk,nk->n", W, D)
        perp = W - a0[:, None] * D
        p0 = np.linalg.norm(perp, axis=1)
        chord_a = np.sqrt(np.clip(p0 * (2 * R - p0), 0, None))
        B = P + (a0 - chord_a)[:, None] * D
        n_vec = perp / p0[:, None]
        theta = 2 * np.arctan2(p0, chord_a)
        tip_dir = np.cos(theta)[:, None] * D + np.sin(theta)[:, None] * n_vec
        pts, entry_idx = self._transpedicular_samples(P, D, entry_back[li], B, tips[ti], n_vec, theta, R)
        angle = np.degrees(theta)

        def build(k: int) -> InstrumentPath:
            start = self._skin_start(P[k], D[k], -entry_back[li[k]])
            return InstrumentPath.straight_then_arc(start, B[k], n_vec[k], R, float(angle[k]), self.radius, R)
        return _Candidates(pts, entry_idx, tips[ti], tip_dir, build, P + 10 * D, self._centring(side, P, D)), []

    def _preselect(self, side: str, P: np.ndarray, D: np.ndarray, line_score: np.ndarray, entry_back: np.ndarray,
                   tips: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Line and tip indices, row-major, of the ``screened_candidates`` most promising (line, tip)
        pairs a cannula arc joins, by a cheap score: line depth in the pedicle, a lower bound of the
        terminus coverage, and the lesion's reach toward the canal estimated from its centre (canal
        distance minus the spheroid's extent posteriorly); ties go to the lower index. None when no
        arc joins any pair.

        Lines: points ``P`` and directions ``D`` (mm, model coordinates) with ``line_score`` and bone
        entry ``entry_back`` mm behind ``P``. A pair's arc: with W = T - P, a0 = W.d and p0 = |W - a0 d|,
        from dot products alone. Its tip direction cos(theta) d + sin(theta) (W - a0 d) / p0 is c d + b W,
        so its dot products come from the lines' and tips' own. Every pair's score is bounded from its
        line score and its tip's best coverage; the arcs are worked out, and the canal grid read, only
        for pairs whose bound (then whose score without the canal term) can reach the bar."""
        s, dev = self.settings, self.device
        R = dev.cannula_radius_mm
        h, r, offset = dev.lesion_length_mm / 2, dev.lesion_diameter_mm / 2, dev.lesion_offset_mm
        n_tips = len(tips)
        # the dot products of every line with every tip, as (lines, tips) arrays
        tip_d = D @ tips.T - np.einsum("lk,lk->l", P, D)[:, None]
        w2 = np.einsum("tk,tk->t", tips, tips)[None, :] - 2 * P @ tips.T + np.einsum("lk,lk->l", P, P)[:, None]
        max_p = R * (1 - np.cos(np.radians(min(dev.cannula_max_arc_deg, 180.0))))
        anterior = self.frame.anterior
        line_past = (P - self.lm.pedicles[side].body_junction) @ anterior
        line_forward = D @ anterior
        lo, hi = s.arc_start_past_wall_mm

        def arcs(flat: np.ndarray):
            """The pairs among ``flat`` (row-major indices) a cannula arc joins: line and tip indices,
            a0, p0 and the chord's length along the line sqrt(p0 (2R - p0))."""
            l, t = np.divmod(flat, n_tips)
            a0 = tip_d[l, t]
            p0 = np.sqrt(np.clip(w2[l, t] - a0 ** 2, 0, None))
            chord_a = np.sqrt(np.clip(p0 * (2 * R - p0), 0, None))
            arc_s = a0 - chord_a                                  # arc start depth past the isthmus point
            past = line_past[l] + arc_s * line_forward[l]
            keep = ((p0 > 0.5) & (p0 <= max_p) & (past >= lo) & (past <= hi)
                    & (entry_back[l] + arc_s <= dev.introducer_max_depth_mm))
            return l[keep], t[keep], a0[keep], p0[keep], chord_a[keep]

        delta = self.terminus - tips                                        # per tip
        delta2 = np.einsum("tk,tk->t", delta, delta)
        tip_distance = np.sqrt(delta2)
        delta_d, delta_p = D @ delta.T, P @ delta.T                         # per line and tip
        delta_tip = np.einsum("tk,tk->t", delta, tips)
        posterior = -self.frame.anterior
        post_d, post_p, post_tip = D @ posterior, P @ posterior, tips @ posterior
        # the terminus lies at least | |delta| - offset | from the lesion centre, so no direction gives a
        # coverage above the tip's own bound: a bound of each pair's score read from its line and tip
        tip_coverage = (1 - np.abs(tip_distance - offset) / max(h, r)) * min(h, r) - s.coverage_margin_mm
        bound = (self._score(np.minimum(line_score[:, None], tip_coverage[None, :]), tip_distance[None, :])
                 + 1e-9).ravel()

        def score(l, t, a0, p0, chord_a, bar: float = -np.inf) -> np.ndarray:
            """Pre-scores of pairs (l, t) with their arcs; -inf for those whose score without the canal
            term is below ``bar``."""
            # theta = 2 atan2(p0, chord_a), p0^2 + chord_a^2 = 2 R p0: sin(theta) = chord_a / R, cos(theta) = 1 - p0 / R
            b = chord_a / (R * p0)
            c = 1 - p0 / R - b * a0
            # terminus depth in the lesion, lower bound: (1 - ellipsoidal radius) x the semi-minor axis;
            # with q = delta . tip_dir: along = q + offset, across^2 = |delta|^2 - q^2
            q = c * delta_d[l, t] + b * (delta_tip[t] - delta_p[l, t])
            across = np.sqrt(np.clip(delta2[t] - q ** 2, 0, None))
            coverage = (1 - np.hypot((q + offset) / h, across / r)) * min(h, r) - s.coverage_margin_mm
            upper = self._score(np.minimum(line_score[l], coverage), tip_distance[t])
            out = np.full(len(l), -np.inf)
            m = upper >= bar
            l, t, b, c = l[m], t[m], b[m], c[m]
            # the lesion's reach toward the canal from its centre
            cos2 = (c * post_d[l] + b * (post_tip[t] - post_p[l])) ** 2
            reach = np.sqrt(h ** 2 * cos2 + r ** 2 * (1 - cos2))
            centre = tips[t] - offset * (c[:, None] * D[l] + b[:, None] * (tips[t] - P[l]))
            canal = self.zones.canal.approximate(centre) - reach - self.margin("canal_lesion", 10.0)
            out[m] = np.minimum(upper[m], self._score(canal, tip_distance[t]))
            return out
        # the S-th best score among the joined pairs of best bound is a lower bound of the S-th best
        # overall, so only pairs whose bound (and then whose score without the canal term) reaches it
        # can be among the best
        S = s.screened_candidates
        n_probe = PRESELECT_PROBE * S
        threshold = -np.inf
        if len(bound) > n_probe:
            probe = arcs(np.sort(np.argpartition(-bound, n_probe)[:n_probe]))
            if len(probe[0]) >= S:
                threshold = np.partition(score(*probe), -S)[-S]
        contenders = arcs(np.flatnonzero(bound >= threshold))
        if len(contenders[0]) == 0:
            return None
        if len(contenders[0]) > S:
            # the S best, ties at the S-th score to the lower index
            scores = score(*contenders, threshold)
            last = np.partition(scores, -S)[-S]
            above = np.flatnonzero(scores > last)
            best = np.sort(np.concatenate([above, np.flatnonzero(scores == last)[: S - len(above)]]))
            contenders = tuple(x[best] for x in contenders)
        return contenders[0], contenders[1]

    def _coverage(self, tip: np.ndarray, tip_dir: np.ndarray) -> np.ndarray:
        """Exact depth (mm) of the terminus inside each candidate's spheroid lesion, negative outside
        (the meridian-plane distance used by EllipsoidLesion)."""
        dev = self.device
        terminus = np.broadcast_to(self.terminus, tip.shape)
        return -spheroid_signed_distance(terminus, tip - dev.lesion_offset_mm * tip_dir, tip_dir,
                                         dev.lesion_length_mm / 2, dev.lesion_diameter_mm / 2, ELLIPSE_ITERATIONS)

    def _straight(self, side: str):
        s = self.settings
        # the straight introducer aims from each isthmus point straight at each tip candidate
        points = self._isthmus_points(side)
        tips = self._tip_targets(side)
        Pp = np.repeat(points, len(tips), axis=0)
        T = np.tile(tips, (len(points), 1))
        Dd = (T - Pp) / np.linalg.norm(T - Pp, axis=1)[:, None]
        t = np.arange(-50.0, 0.5, 1.0)
        line = Pp[:, None, :] + t[None, :, None] * Dd[:, None, :]
        bone = self.zones.bone.approximate(line.reshape(-1, 3)).reshape(line.shape[:2])
        outside = bone >= 0
        ok = outside.any(axis=1) & (bone[:, -1] < 0)
        if not ok.any():
            return None, [f"no straight line from the {side} pedicle isthmus to the target zone has a bone entry "
                          "within 50 mm behind the isthmus"]
        last_out = len(t) - 1 - np.argmax(outside[:, ::-1], axis=1)
        entry_back = -t[np.clip(last_out + 1, 0, len(t) - 1)]
        Pp, T, Dd, entry_back = Pp[ok], T[ok], Dd[ok], entry_back[ok]
        entry = Pp - entry_back[:, None] * Dd
        start = entry - s.approach_mm * Dd
        a = np.linspace(0, 1, 6, endpoint=False)[None, :, None]
        b = np.linspace(0, 1, 40)[None, :, None]
        pts = np.concatenate([start[:, None] + a * (entry - start)[:, None], entry[:, None] + b * (T - entry)[:, None]], axis=1)
        length = np.linalg.norm(T - entry, axis=1)
        keep = length <= self.device.introducer_max_depth_mm
        if not keep.any():
            return None, [f"every straight path from the {side} pedicle to the target zone is longer than the "
                          f"introducer's {self.device.introducer_max_depth_mm:.0f} mm"]
        idx = np.flatnonzero(keep)
        Pp, T, Dd, entry_back = Pp[idx], T[idx], Dd[idx], entry_back[idx]

        def build(k: int) -> InstrumentPath:
            return InstrumentPath.straight(self._skin_start(Pp[k], Dd[k], -entry_back[k]), T[k], self.radius)
        return _Candidates(pts[idx], np.full(len(idx), 6), T, Dd, build, Pp + 10 * Dd, self._centring(side, Pp, Dd)), []

    def _pedicle_block(self, side: str, score1: np.ndarray) -> str:
        ped = self.lm.pedicles[side]
        best = float(np.max(score1)) if np.isfinite(score1).any() else float("nan")
        return (f"no introducer line through the {side} pedicle (isthmus {ped.isthmus_width_mm:.1f} x "
                f"{ped.isthmus_height_mm:.1f} mm) keeps the {self.device.introducer_diameter_mm:.1f} mm introducer in bone "
                f"and out of the canal: best depth in bone beyond the introducer radius {best:.1f} mm")

    def _extrapedicular(self, side: str):
        s = self.settings
        ped = self.lm.pedicles[side]
        tips = self._tip_targets(side, even_only=True)
        ma, ca = np.meshgrid(s.extrapedicular_medial_angles_deg, s.extrapedicular_craniocaudal_angles_deg, indexing="ij")
        dirs = self._local_dir(side, ma.ravel(), ca.ravel())
        T = np.repeat(tips, len(dirs), axis=0)
        D = np.tile(dirs, (len(tips), 1))
        t = np.arange(0.0, 90.0, 2.0)

        def outside(lines: np.ndarray, steps: np.ndarray) -> np.ndarray:
            """Whether the samples T - t D of these lines at these steps of t (indices, per line or
            shared) lie outside bone."""
            pts = T[lines, None, :] - t[steps][..., None] * D[lines, None, :]
            return self.zones.bone.approximate(pts.reshape(-1, 3)).reshape(pts.shape[:2]) >= 0
        lo, hi = s.extrapedicular_entry_window_mm
        # the entry T - t D lies (T - junction).a - t (D.a) anterior of the pedicle-body junction: past
        # t_last it cannot lie in the window
        forward = D @ self.frame.anterior
        ahead_of_junction = (T - ped.body_junction) @ self.frame.anterior
        with np.errstate(divide="ignore", invalid="ignore"):
            t_last = np.where(forward > 0, (ahead_of_junction - lo) / forward,
                              np.where(forward < 0, (ahead_of_junction - hi) / forward, np.inf))
        # walk the lines outward from the tip, a few steps at a time, to their first sample outside bone
        first_out = np.full(len(T), -1)
        pending = np.arange(len(T))
        for begin in range(0, len(t), EXIT_SEARCH_STEPS):
            pending = pending[t[begin] <= t_last[pending] + 1e-6]
            if len(pending) == 0:
                break
            out = outside(pending, np.arange(begin, min(begin + EXIT_SEARCH_STEPS, len(t)))[None, :])
            hit = out.any(axis=1)
            first_out[pending[hit]] = begin + np.argmax(out[hit], axis=1)
            pending = pending[~hit]
        ok = first_out > 0          # the tip lies in bone and the line leaves it
        entry_t = t[np.maximum(first_out, 0)]
        entry = T - entry_t[:, None] * D
        past = (entry - ped.body_junction) @ self.frame.anterior
        ok &= (past >= lo) & (past <= hi)
        idx = np.flatnonzero(ok)
        if len(idx):
            idx = idx[self.zones.nearest_region(entry[idx]) == "lateral_cortex"]
        if len(idx):
            # no bone within clear_behind_entry_mm behind the entry: the samples after the first one outside
            ahead = first_out[idx, None] + np.arange(1, int(np.ceil(s.clear_behind_entry_mm / (t[1] - t[0]))) + 1)
            steps = np.minimum(ahead, len(t) - 1)
            behind = (ahead < len(t)) & (t[steps] <= entry_t[idx, None] + s.clear_behind_entry_mm)
            idx = idx[~np.any(behind & ~outside(idx, steps), axis=1)]
        if len(idx) == 0:
            return None, [f"no straight line to the target zone enters the {side} lateral body wall {lo:.0f} to "
                          f"{hi:.0f} mm from the pedicle-body junction with {s.clear_behind_entry_mm:.0f} mm free of "
                          "bone behind its entry"]
        T, D, entry = T[idx], D[idx], entry[idx]
        start = entry - s.approach_mm * D
        a = np.linspace(0, 1, 6, endpoint=False)[None, :, None]
        b = np.linspace(0, 1, 40)[None, :, None]
        pts = np.concatenate([start[:, None] + a * (entry - start)[:, None], entry[:, None] + b * (T - entry)[:, None]], axis=1)
        entry_t = entry_t[idx]

        def build(k: int) -> InstrumentPath:
            return InstrumentPath.straight(self._skin_start(T[k], D[k], -entry_t[k]), T[k], self.radius)
        return _Candidates(pts, np.full(len(T), 6), T, D, build, entry, np.zeros(len(T))), []

    # -- screening and exact judgement --------------------------------------------------------
    def _lesion_points(self, tip: np.ndarray, tip_dir: np.ndarray, subdivisions: int = 1) -> np.ndarray:
        """(N, K, 3) samples of each candidate's lesion surface (mm, model coordinates): the
        vertices of an icosphere (``subdivisions`` levels) mapped onto the spheroid."""
        dev = self.device
        centre = tip - dev.lesion_offset_mm * tip_dir
        helper = np.where(np.abs(tip_dir[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
        e1 = np.cross(tip_dir, helper)
        e1 /= np.linalg.norm(e1, axis=1)[:, None]
        e2 = np.cross(tip_dir, e1)
        u = unit_icosphere(subdivisions)[0]
        r, h = dev.lesion_diameter_mm / 2, dev.lesion_length_mm / 2
        axes = np.stack([r * e1, r * e2, h * tip_dir], axis=1)           # (N, 3, 3): the spheroid's semi-axes
        return centre[:, None] + u @ axes

    def _refined_samples(self, tip: np.ndarray, tip_dir: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The finer lesion samples of each candidate (N, K, 3; mm, model coordinates), their canal grid
        estimates (N, K, mm) and the index of the lowest estimate per candidate (N,)."""
        lesion = self._lesion_points(tip, tip_dir, REFINED_LESION_SUBDIVISIONS)
        approx = self.zones.canal.approximate(lesion.reshape(-1, 3)).reshape(lesion.shape[:2])
        return lesion, approx, np.argmin(approx, axis=1)

    def _lesion_canal_clearance(self, distance: np.ndarray) -> np.ndarray:
        """Lesion clearance from the canal beyond its margin (mm) from the least exact canal distance of
        the finer lesion samples (mm), less the samples' error."""
        return distance - REFINED_LESION_ERROR_MM - self.margin("canal_lesion", 10.0)

    def _probe_lesion_canal(self, tip: np.ndarray, tip_dir: np.ndarray) -> np.ndarray:
        """Exact canal distance (mm) of each candidate's finer lesion sample with the lowest grid
        estimate: an upper bound of the least distance over its samples."""
        lesion, _, lowest = self._refined_samples(tip, tip_dir)
        return self.zones.canal.exact(lesion[np.arange(len(lesion)), lowest])

    def _exact_lesion_canal(self, tip: np.ndarray, tip_dir: np.ndarray, probe: np.ndarray) -> np.ndarray:
        """Lesion clearance from the canal beyond its margin (mm) per candidate: exact distances for
        the lesion samples the grid cannot rule out, less the samples' error.

        ``probe``: the exact distance of each candidate's sample with the lowest grid estimate (from
        :meth:`_probe_lesion_canal`); only the samples whose estimate less the grid's band does not
        exceed it can hold the minimum."""
        lesion, approx, lowest = self._refined_samples(tip, tip_dir)
        canal = self.zones.canal
        rows = np.arange(len(approx))
        values = np.full(approx.shape, np.inf)
        values[rows, lowest] = probe
        rest = approx - canal.band <= probe[:, None]
        rest[rows, lowest] = False
        values[rest] = canal.exact(lesion[rest])
        return self._lesion_canal_clearance(values.min(axis=1))

    def _slacks(self, c: _Candidates) -> dict[str, np.ndarray]:
        """Grid estimates of each constraint's clearance beyond its margin (mm), per candidate."""
        z, r = self.zones, self.radius
        N, M, _ = c.points.shape
        flat = c.points.reshape(-1, 3)
        canal = z.canal.approximate(flat).reshape(N, M)
        sup = self.lm.superior_endplate.signed_distance(flat).reshape(N, M)
        inf = self.lm.inferior_endplate.signed_distance(flat).reshape(N, M)
        cum = np.concatenate([np.zeros((N, 1)), np.cumsum(np.linalg.norm(np.diff(c.points, axis=1), axis=2), axis=1)], axis=1)
        entry_depth = cum[np.arange(N), c.in_bone_from]
        after = np.arange(M)[None, :] >= c.in_bone_from[:, None]
        deep = after & (cum >= entry_depth[:, None] + SafetyZones.ENTRY_ZONE_MM)
        out = {}
        depth = np.full((N, M), np.inf)       # depth in bone, read only where it is a constraint
        depth[deep] = -z.bone.approximate(c.points[deep])
        out["bone"] = depth.min(axis=1) - r
        out["canal_instrument"] = canal.min(axis=1) - r - self.margin("canal_instrument")
        ep = np.minimum(np.where(deep, -sup, np.inf).min(axis=1) - self.margin("superior_endplate_instrument"),
                        np.where(deep, -inf, np.inf).min(axis=1) - self.margin("inferior_endplate_instrument"))
        out["endplate_instrument"] = ep - r
        root = z.root_distance(flat).reshape(N, M).min(axis=1) - r
        out["exiting_root"] = root - self.margin("exiting_root_instrument")
        lp = self._lesion_points(c.tip, c.tip_dir)
        lflat = lp.reshape(-1, 3)
        K = lp.shape[1]
        out["canal_lesion"] = z.canal.approximate(lflat).reshape(N, K).min(axis=1) - self.margin("canal_lesion", 10.0)
        out["endplate_lesion"] = np.minimum(
            (-self.lm.superior_endplate.signed_distance(lflat)).reshape(N, K).min(axis=1) - self.margin("superior_endplate_lesion"),
            (-self.lm.inferior_endplate.signed_distance(lflat)).reshape(N, K).min(axis=1) - self.margin("inferior_endplate_lesion"))
        out["coverage"] = self._coverage(c.tip, c.tip_dir) - self.settings.coverage_margin_mm
        return out

    def _score(self, min_slack: np.ndarray, tip_distance: np.ndarray) -> np.ndarray:
        s = self.settings
        return np.minimum(min_slack, s.clearance_cap_mm) - s.tip_weight * np.maximum(0.0, tip_distance - s.target_tolerance_mm)

    def _judge(self, approach: str, side: str, c: _Candidates) -> ApproachResult:
        s = self.settings
        slacks = self._slacks(c)
        names = list(slacks)
        stack = np.stack([slacks[n] for n in names])
        min_slack = stack.min(axis=0)
        tip_distance = np.linalg.norm(c.tip - self.terminus, axis=1)
        score = self._score(min_slack, tip_distance)
        # the best ranked get their lesion-to-canal clearance again from exact distances on a finer
        # lesion, round after round, until every candidate ranked down to the last one that would be
        # judged is probed and those judged are refined. A round probes the unprobed among them and the
        # next PROBE_BATCH unprobed, or, once all are probed, refines those to be judged. The probe's
        # exact distance bounds the refined clearance from above, so a probed candidate cannot rise when
        # refined: one ranked below them stays below, one among them that is alike to a judged one ranked
        # before it stays skipped. The grid estimate of an unprobed one overstates the clearance by
        # 0.1-0.5 mm on most meshes. The best score, which sets the bar of the near-equal ones the ranking
        # orders by tip, is refined too. Only refined ones are judged.
        probe = np.full(len(score), np.nan)
        refined = np.zeros(len(score), bool)
        canal_row = names.index("canal_lesion")
        for _ in range(REFINE_ROUNDS):
            feasible = np.flatnonzero(min_slack >= 0)
            order = self._rank(feasible, score, tip_distance, c.centring)
            judged = self._distinct(c, order)
            head = order[: int(np.flatnonzero(order == judged[-1])[0]) + 1] if judged else order[:0]
            exact = np.array(judged + ([int(feasible[np.argmax(score[feasible])])] if len(feasible) else []), int)
            probed = ~np.isnan(probe)
            if refined[exact].all() and probed[head].all():
                break
            waiting = np.union1d(head, exact)
            waiting = waiting[~probed[waiting]]
            if len(waiting):
                new = np.union1d(waiting, order[~probed[order]][:PROBE_BATCH])
                probe[new] = self._probe_lesion_canal(c.tip[new], c.tip_dir[new])
                stack[canal_row, new] = self._lesion_canal_clearance(probe[new])
            else:
                finish = exact[~refined[exact]]
                stack[canal_row, finish] = self._exact_lesion_canal(c.tip[finish], c.tip_dir[finish], probe[finish])
                refined[finish] = True
            min_slack = stack.min(axis=0)
            score = self._score(min_slack, tip_distance)
        feasible = np.flatnonzero(min_slack >= 0)
        if len(feasible) == 0:
            return ApproachResult(approach, side, None, blocked=self._blocking(names, stack), candidates=len(score))
        order = self._rank(feasible, score, tip_distance, c.centring)
        chosen = self._distinct(c, order[refined[order]])
        plans, rejected = [], []
        for k in chosen:
            plan = self._exact(approach, side, c.build(k), float(c.centring[k]))
            if plan.check.verdict != FAIL and plan.coverage_mm >= s.coverage_margin_mm:
                plans.append(plan)
            else:
                rejected.append(plan)
        if not plans:
            worst = rejected[0]
            why = worst.check.reasons if worst.check.verdict == FAIL else [
                f"the lesion covers the terminus only {worst.coverage_mm:.1f} mm deep (margin {s.coverage_margin_mm:.1f} mm)"]
            return ApproachResult(approach, side, None, blocked=[
                f"the {len(chosen)} best screened candidates all fail the exact check; the best one: " + "; ".join(why)],
                candidates=len(score))
        plans = self._choose(plans)
        return ApproachResult(approach, side, plans[0], plans[1:1 + s.alternatives], candidates=len(score))

    def _distinct(self, c: _Candidates, order: np.ndarray) -> list[int]:
        """The first ``exact_checks`` candidates of ``order`` (best first) that differ from each other:
        tips or introducer lines (``line_key``) more than 1.5 mm apart."""
        chosen: list[int] = []
        rest = order
        while len(rest) and len(chosen) < self.settings.exact_checks:
            k = int(rest[0])
            chosen.append(k)
            alike = ((np.linalg.norm(c.tip[rest] - c.tip[k], axis=1) <= 1.5)
                     & (np.linalg.norm(c.line_key[rest] - c.line_key[k], axis=1) <= 1.5))
            rest = rest[~alike]
        return chosen

    @staticmethod
    def _rank(indices: np.ndarray, score: np.ndarray, tip_distance: np.ndarray, centring: np.ndarray) -> np.ndarray:
        """``indices`` best first, as :meth:`_choose` ranks checked plans: those within RANK_QUANTUM_MM
        of the best score by nearer tip (to 0.1 mm), then the more centred pedicle passage; the rest
        by score."""
        if len(indices) == 0:
            return indices
        s, tip, cen = score[indices], np.round(tip_distance[indices], 1), np.round(centring[indices], 2)
        near = s >= s.max() - RANK_QUANTUM_MM
        return indices[np.lexsort((cen, tip, -np.where(near, np.inf, s)))]

    @staticmethod
    def _choose(plans: list[PathPlan]) -> list[PathPlan]:
        """Checked plans best first. Among the passing plans (else the warning ones), those within
        RANK_QUANTUM_MM of the best score count as equal; of these the nearer tip (to 0.1 mm), then
        the more centred pedicle passage wins. The rest follow by score."""
        pool = [p for p in plans if p.verdict == PASS] or plans
        top = max(p.score_mm for p in pool)
        near = [p for p in pool if p.score_mm >= top - RANK_QUANTUM_MM]
        best = min(near, key=lambda p: (round(p.tip_to_terminus_mm, 1), round(p.centring_mm, 2)))
        rest = sorted((p for p in plans if p is not best), key=lambda p: (p.verdict == PASS, p.score_mm), reverse=True)
        return [best] + rest

    def _blocking(self, names: list[str], stack: np.ndarray) -> list[str]:
        """Which constraint blocks: for each, the best it can do among candidates meeting all others."""
        words = {
            "bone": "depth of the instrument inside bone",
            "canal_instrument": "instrument clearance from the spinal canal",
            "endplate_instrument": "instrument clearance from the endplates beyond their margin",
            "exiting_root": "instrument clearance from the exiting nerve root corridor",
            "canal_lesion": f"lesion clearance from the spinal canal beyond its {self.margin('canal_lesion', 10.0):.0f} mm margin",
            "endplate_lesion": "lesion clearance from the endplates beyond their margin",
            "coverage": f"depth of the terminus inside the lesion beyond the {self.settings.coverage_margin_mm:.1f} mm coverage margin",
        }
        reasons = []
        for i, name in enumerate(names):
            others = np.delete(stack, i, axis=0).min(axis=0) >= 0
            if others.any() and stack[i, others].max() < 0:
                reasons.append(f"{words[name]}: at best {stack[i, others].max():+.1f} mm among {int(others.sum())} "
                               "candidates that meet every other constraint")
        if not reasons:
            best = int(np.argmax(stack.min(axis=0)))
            bad = [f"{words[n]} {stack[i, best]:+.1f} mm" for i, n in enumerate(names) if stack[i, best] < 0]
            reasons.append("no candidate meets every constraint at once; the closest misses on " + ", ".join(bad))
        return reasons

    def _exact(self, approach: str, side: str, path: InstrumentPath, centring: float) -> PathPlan:
        lesion = EllipsoidLesion.from_probe(path.tip, path.tip_direction, self.device)
        check = check_path(self.zones, path, lesion.surface_mesh(LESION_CHECK_SUBDIVISIONS), self.rules)
        coverage = -float(lesion.signed_distance(self.terminus)[0])
        tip_distance = float(np.linalg.norm(path.tip - self.terminus))
        slacks = [r.clearance_mm - r.margin_mm for r in check.rules
                  if self.rules[r.rule].severity == FAIL and np.isfinite(r.clearance_mm)]
        slacks.append(coverage - self.settings.coverage_margin_mm)
        min_slack = float(min(slacks))
        score = float(self._score(np.array([min_slack]), np.array([tip_distance]))[0])
        numbers = path_numbers(path, self.lm, check)
        return PathPlan(approach, side, path, lesion, check, numbers, tip_distance, coverage, min_slack, score, centring)
