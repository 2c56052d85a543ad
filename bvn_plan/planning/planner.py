"""Trajectory planning: transpedicular (straight introducer + curved cannula, or straight only) and
extrapedicular paths to the BVN target zone, each judged by the safety checker.

The target is a zone, not a point (docs/sources.md "Safety"): the
terminus must lie inside the lesion at least ``coverage_margin_mm`` deep, the lesion must keep
every safety margin, and the tip goes where both hold. The tip-to-terminus distance is
minimised after safety and reported against ``target_tolerance_mm``; it never overrides a rule.

Search (deterministic, fixed grids, mm, model coordinates; grids laid out in the vertebra frame and
mirrored between sides; the steps live in :mod:`.search`, :mod:`.candidates`, :mod:`.preselect`,
:mod:`.screening` and :mod:`.ranking`, this module runs them and assembles the records):

0. refusals with numbers before any search: a terminus nearer the canal than the canal margin plus
   the coverage margin (no lesion can do both), a pedicle isthmus narrower than the introducer plus
   two pedicle margins;
1. transpedicular lines: through the isthmus centre (and 4 offsets in its cross-section) at every
   (medial, cranio-caudal) angle of a grid, screened by depth in bone and canal clearance;
2. tip candidates: a grid of points anterior to and around the terminus;
3. for a line and a tip the tangent arc of the cannula radius is closed form
   (:class:`bvn_plan.paths.TangentArcs`); straight-only paths aim the line at the tip;
4. extrapedicular: introducers entering the lateral body wall inside the bone-entry window of
   the rules (pedicle-body junction, 15-50 deg medial; :mod:`.approach`) with no bone behind the
   entry, then the cannula arc (straight lines when no arc reaches the target zone);
5. every candidate is scored on grid distances (bone, canal, endplate planes, root corridor,
   lesion samples) and the exact terminus depth in its lesion; the best ones get exact lesion-to-
   canal distances; the best few distinct ones are judged by :func:`bvn_plan.planning.safety.check_path`
   with the device's ellipsoid lesion, and only a path whose verdict is not "fail" and whose lesion
   covers the terminus is returned as a plan. When nothing survives, the blocking constraint is
   named with the best value any candidate reached.

Scores and ranking: :mod:`bvn_plan.planning.ranking`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..anatomy.find import find_anatomy
from ..anatomy.symmetry import reflect
from ..device import DeviceProfile
from ..errors import InputError
from ..landmarks import Landmarks, TerminusParameters
from ..lesion import EllipsoidLesion
from ..paths import Arc, InstrumentPath
from .candidates import curved_candidates, extrapedicular_candidates, straight_candidates
from .path_numbers import path_numbers
from .ranking import RANK_QUANTUM_MM, ScreenedCandidates, choose, refine_and_rank, score
from .safety import FAIL, PASS, SEGMENTAL_ARTERY_PREVALENCE, CheckResult, RuleSet, SafetyZones, check_path
from .screening import blocking, slacks
from .search import Candidates, SearchContext
from .settings import PlannerSettings

#: A side takes the mirror image of the other side's plan unless that is clearly worse there: a
#: lower score by more than RANK_QUANTUM_MM, a tip farther from the terminus (to 0.1 mm) or a pedicle
#: passage less centred by more than this (mm; found pedicles differ left to right by up to ~0.5 mm
#: on the symmetrised VHM meshes). Near-ties then end in mirror-image plans on both sides.
MIRROR_CENTRING_TOLERANCE_MM = 0.5

APPROACHES = ("transpedicular", "transpedicular-straight", "extrapedicular")

#: A pedicle found with a lower confidence than this blocks the routes on its side: planning
#: refuses rather than produce a plausible-looking path past a pedicle it did not understand
#: (the anatomy's own refusal threshold, anatomy.REFUSE_BELOW).
PEDICLE_CONFIDENCE_MIN = 0.25
SIDES = ("right", "left")


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
    #: which soft tissue the checks used (SafetyZones.soft_tissue): labelled organs or modelled zones
    soft_tissue: str = ""

    def result(self, approach: str, side: str) -> ApproachResult:
        for r in self.results:
            if r.approach == approach and r.side == side:
                return r
        raise InputError(f"no result for approach {approach!r} side {side!r}: approaches {APPROACHES}, sides {SIDES}")


# ---------------------------------------------------------------------------------------------
# Public entry point


def plan_level(vertebra, landmarks: Landmarks | None = None, device: DeviceProfile = DeviceProfile(),
               rules: RuleSet = RuleSet(), terminus: TerminusParameters | None = None,
               settings: PlannerSettings = PlannerSettings(), zones: SafetyZones | None = None,
               approaches: tuple[str, ...] = APPROACHES) -> LevelPlan:
    """Plan every approach on both sides of ``vertebra`` (mm) and recommend one.

    ``landmarks``: the vertebra's landmarks (found by :func:`bvn_plan.anatomy.find.find_anatomy`, or
    a synthetic vertebra's ground truth); when None they are found here, once, with ``terminus``
    (which may only be given then). ``zones`` may pass prebuilt safety zones of the same landmarks;
    ``approaches`` limits the search to some of :data:`APPROACHES`. Raises
    :class:`~bvn_plan.errors.AnatomyError` when the anatomy cannot be planned on; an approach with
    no safe path is returned with ``plan=None`` and its blocking reasons (never a failing path
    labelled as a plan).
    """
    unknown = [a for a in approaches if a not in APPROACHES]
    if unknown or not approaches:
        raise InputError(f"unknown approach(es) {unknown or approaches!r}: choose from {', '.join(APPROACHES)}")
    if not isinstance(device, DeviceProfile):
        raise InputError(f"device must be a DeviceProfile, got {type(device).__name__}")
    if landmarks is None:
        landmarks = find_anatomy(vertebra, terminus or TerminusParameters())
    elif terminus is not None:
        raise InputError("a terminus places the BVN terminus when the anatomy is found: pass it to find_anatomy "
                         "(or pass no landmarks), not beside landmarks already found")
    if zones is None or zones.landmarks is not landmarks:
        zones = SafetyZones(vertebra.mesh, landmarks)
    notes = []
    if device.lesion_model != "ellipsoid":
        notes.append(f"the device profile names the {device.lesion_model!r} lesion model; paths were planned "
                     "and checked with its geometric ellipsoid (run the bioheat model to confirm the lesion)")
    ctx = SearchContext(zones, device, rules, settings)
    results = []
    for approach in approaches:
        right, left = (_plan_side(ctx, approach, side) for side in SIDES)
        # Each side also weighs the mirror image of the other's plan, so that near-ties on a nearly
        # symmetric vertebra end in mirror-image plans rather than in either of two equal ones.
        # When the left side takes the right plan's mirror image, the mirror image of that is the right
        # plan itself: nothing to weigh.
        weighed = _weigh_mirror_image(ctx, left, right)
        if weighed.plan is left.plan:
            right = _weigh_mirror_image(ctx, right, left)
        results += [right, weighed]
    recommendation, reasons = _recommend(results, landmarks.level, settings)
    return LevelPlan(landmarks.level, landmarks, device, rules, settings, results, recommendation, reasons, notes,
                     zones.soft_tissue)


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
# One approach on one side


def _refusal(ctx: SearchContext, approach: str, side: str) -> list[str]:
    """Why ``approach`` on ``side`` is refused before any search (numbers in words), or []."""
    lm, s = ctx.lm, ctx.settings
    if side not in lm.pedicles:
        return [f"no {side} pedicle was found"]
    confidence = lm.confidence.get(f"{side}_pedicle", 1.0)
    if confidence < PEDICLE_CONFIDENCE_MIN:
        # both routes lean on the pedicle: the transpedicular one goes through it, the
        # extrapedicular one beside it, past the exiting-root corridor placed under it
        why = [n for n in lm.notes if side in n and "pedicle" in n]
        return [f"the {side} pedicle was not recognised with confidence ({confidence:.2f} < "
                f"{PEDICLE_CONFIDENCE_MIN:.2f}){': ' + '; '.join(why) if why else ''}; no route through or "
                "beside it is planned on a pedicle the mesh does not show clearly"]
    need = ctx.canal_lesion_margin_mm + s.coverage_margin_mm
    if ctx.terminus_to_canal < need:
        return [f"the terminus is {ctx.terminus_to_canal:.1f} mm from the spinal canal: no lesion can cover it "
                f"{s.coverage_margin_mm:.1f} mm deep and keep its {ctx.canal_lesion_margin_mm:.1f} mm "
                f"canal margin (that needs {need:.1f} mm); change the terminus depth, the coverage margin or the canal "
                "rule knowingly"]
    pedicle = lm.pedicles[side]
    if approach.startswith("transpedicular"):
        need = ctx.device.introducer_diameter_mm + 2 * s.pedicle_margin_mm
        narrow = min(pedicle.isthmus_width_mm, pedicle.isthmus_height_mm)
        if narrow < need:
            which = "narrower" if pedicle.isthmus_width_mm <= pedicle.isthmus_height_mm else "lower"
            return [f"{side} pedicle isthmus {narrow:.1f} mm is {which} than the introducer "
                    f"{ctx.device.introducer_diameter_mm:.1f} mm + 2 x {s.pedicle_margin_mm:.1f} mm margin "
                    f"= {need:.1f} mm"]
    return []


_CANDIDATES = {"transpedicular": curved_candidates, "transpedicular-straight": straight_candidates,
               "extrapedicular": extrapedicular_candidates}


def _plan_side(ctx: SearchContext, approach: str, side: str) -> ApproachResult:
    refused = _refusal(ctx, approach, side)
    if refused:
        return ApproachResult(approach, side, None, blocked=refused)
    cands, blocked = _CANDIDATES[approach](ctx, side)
    if cands is None:
        return ApproachResult(approach, side, None, blocked=blocked)
    return _judge(ctx, approach, side, cands)


def _judge(ctx: SearchContext, approach: str, side: str, c: Candidates) -> ApproachResult:
    """Screen the candidates, judge the best few distinct ones exactly and keep those that pass."""
    s = ctx.settings
    screened = ScreenedCandidates(s, slacks(ctx, c), np.linalg.norm(c.tip - ctx.terminus, axis=1))
    chosen = refine_and_rank(ctx, c, screened)
    n = len(screened.score)
    if not (screened.min_slack >= 0).any():
        return ApproachResult(approach, side, None, blocked=blocking(ctx, screened.names, screened.stack), candidates=n)
    plans, rejected = [], []
    for k in chosen:
        plan = _exact(ctx, approach, side, c.build(k), float(c.centring[k]))
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
            candidates=n)
    plans = choose(plans)
    return ApproachResult(approach, side, plans[0], plans[1:1 + s.alternatives], candidates=n)


def _exact(ctx: SearchContext, approach: str, side: str, path: InstrumentPath, centring: float) -> PathPlan:
    """``path`` judged by the checker with the device's lesion, scored and described."""
    lesion = EllipsoidLesion.from_probe(path.tip, path.tip_direction, ctx.device)
    check = check_path(ctx.zones, path, lesion, ctx.rules)
    coverage = -float(lesion.signed_distance(ctx.terminus)[0])
    tip_distance = float(np.linalg.norm(path.tip - ctx.terminus))
    clearances = [r.clearance_mm - r.margin_mm for r in check.rules
                  if ctx.rules[r.rule].severity == FAIL and np.isfinite(r.clearance_mm)]
    clearances.append(coverage - ctx.settings.coverage_margin_mm)
    min_slack = float(min(clearances))
    path_score = float(score(ctx.settings, np.array([min_slack]), np.array([tip_distance]))[0])
    numbers = path_numbers(path, ctx.lm, check, ctx.zones.skin)
    return PathPlan(approach, side, path, lesion, check, numbers, tip_distance, coverage, min_slack, path_score,
                    centring)


def _weigh_mirror_image(ctx: SearchContext, result: ApproachResult, other: ApproachResult) -> ApproachResult:
    """``result`` with the mirror image of ``other``'s plan through the mid-sagittal plane as its
    plan when that ranks first here or is not clearly worse (MIRROR_CENTRING_TOLERANCE_MM above); for
    transpedicular approaches when both sides planned. The mirror image must pass within the
    isthmus offset (plus that tolerance) of this side's isthmus centre, keep the introducer within
    the device's depth and the cannula's bend within the allowed window past the wall, and pass
    the checker like any other plan."""
    if result.plan is None or other.plan is None or not result.approach.startswith("transpedicular"):
        return result
    s, lm = ctx.settings, ctx.lm
    path = _mirror_path(other.plan.path, lm.midsagittal_plane)
    axis = path.vertices[1] - path.vertices[0]
    axis /= np.linalg.norm(axis)
    rel = lm.pedicles[result.side].isthmus_centre - path.start
    if np.linalg.norm(rel - (rel @ axis) * axis) > s.isthmus_offset_mm + MIRROR_CENTRING_TOLERANCE_MM:
        return result  # the mirror image misses this side's isthmus
    if path.arc_start is not None:
        past = (path.arc_start - lm.pedicles[result.side].body_junction) @ ctx.frame.anterior
        lo, hi = s.arc_start_past_wall_mm
        if not lo <= past <= hi:
            return result
    plan = _exact(ctx, result.approach, result.side, path,
                  float(ctx.centring(result.side, path.start[None], axis[None])[0]))
    if plan.numbers["depth_introducer_in_bone_mm"] > ctx.device.introducer_max_depth_mm:
        return result
    own = result.plan
    if plan.check.verdict == FAIL or plan.coverage_mm < s.coverage_margin_mm:
        return result
    clearly_worse = ((plan.verdict != PASS and own.verdict == PASS)
                     or plan.score_mm < own.score_mm - RANK_QUANTUM_MM
                     or round(plan.tip_to_terminus_mm, 1) > round(own.tip_to_terminus_mm, 1)
                     or plan.centring_mm > own.centring_mm + MIRROR_CENTRING_TOLERANCE_MM)
    if clearly_worse and choose([own, plan])[0] is not plan:
        return result
    return ApproachResult(result.approach, result.side, plan, [own, *result.alternatives][:s.alternatives],
                          result.blocked, result.candidates)
