"""Trajectory planning: transpedicular (straight introducer + curved cannula, or straight only) and
extrapedicular paths to the BVN target zone, each judged by the safety checker.

The target is a zone, not a point (issue 18; :mod:`bvn_plan.anatomy.target_zone`): the nominal
terminus must lie inside the lesion at least ``coverage_margin_mm`` deep when the rules allow it;
where they do not (the canal margin, Huang 2022), the search aims at the zone point nearest the
terminus that lies far enough from the canal (ZONE_AIM_SLACKS_MM) and covers that. Every plan
reports the share of the zone and of the nerve path (foramen -> terminus) inside its lesion and how
far the nominal terminus lies outside it. A side is refused for the target only when no lesion that
keeps the canal margin can reach the zone (no zone point lies the canal margin plus the coverage
margin from the canal), with those numbers. The tip-to-target distance is minimised after safety
and reported against ``target_tolerance_mm``; it never overrides a rule.

Search (deterministic, fixed grids, mm, model coordinates; grids laid out in the vertebra frame and
mirrored between sides; the steps live in :mod:`.search`, :mod:`.candidates`, :mod:`.preselect`,
:mod:`.screening` and :mod:`.ranking`, this module runs them and assembles the records):

0. refusals with numbers before any search: a target zone every point of which lies nearer the
   canal than the canal margin plus the coverage margin (no lesion can do both), a pedicle isthmus
   narrower than the introducer plus two pedicle margins;
1. transpedicular lines: through the isthmus centre (and 4 offsets in its cross-section) at every
   (medial, cranio-caudal) angle of a grid, screened by depth in bone and canal clearance;
2. tip candidates: a grid of points anterior to and around the point aimed at (the terminus, or
   the zone point; each zone point of ZONE_AIM_SLACKS_MM in turn while no plan is found);
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
from typing import TYPE_CHECKING

import numpy as np

from ..anatomy.find import find_anatomy
from ..anatomy.target_zone import TargetZone
from ..anatomy.symmetry import reflect
from ..device import DeviceProfile
from ..errors import InputError
from ..landmarks import Landmarks, TerminusParameters
from ..lesion import EllipsoidLesion
from ..paths import Arc, InstrumentPath
from .candidates import curved_candidates, extrapedicular_candidates, straight_candidates
from .path_numbers import path_numbers
from .ranking import RANK_QUANTUM_MM, ScreenedCandidates, choose, refine_and_rank, robust_rank, score
from .robustness import Robustness, RobustnessSettings, assess_plan, robustness_reasons
from .safety import FAIL, PASS, SEGMENTAL_ARTERY_PREVALENCE, CheckResult, RuleSet, SafetyZones, check_path
from .screening import blocking, slacks
from .search import Candidates, SearchContext
from .settings import PlannerSettings

if TYPE_CHECKING:  # two_probes plans each probe with this module's search
    from .two_probes import PairOutcome

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

#: When the nominal terminus cannot be covered, the search aims at the zone point nearest the
#: terminus that lies at least the canal margin plus the coverage margin plus this much (mm) from
#: the canal, each in turn until one gives a plan: a lesion must reach past such a point, so a
#: point just at the bound is rarely covered by the device's spheroid [A]; the last, 0, leaves no
#: reachable zone without an aim.
ZONE_AIM_SLACKS_MM = (0.5, 1.5, 3.0, 0.0)


@dataclass
class PathPlan:
    """One checked trajectory (mm, model coordinates) with its lesion, verdict and clinician's numbers.

    ``score_mm``: the smallest exact clearance beyond its margin over every failing rule and the
    target coverage (capped, minus the penalty of the tip's distance to the target), higher is better.

    The target (``target_kind``): the nominal "terminus", or a "zone" point (``target_point``, mm,
    model coordinates) where the rules forbid covering the terminus (``why_not_terminus`` says
    why). ``zone_coverage`` and ``nerve_path_coverage``: shares (0-1) of the target zone's volume
    and of the nerve path (foramen -> nominal terminus) inside the lesion; ``terminus_depth_mm``:
    the nominal terminus's depth inside the lesion (negative outside).
    """

    approach: str
    side: str
    path: InstrumentPath
    lesion: EllipsoidLesion
    check: CheckResult
    numbers: dict
    tip_to_terminus_mm: float   # to the nominal terminus
    coverage_mm: float          # depth of the target point inside the lesion
    min_slack_mm: float         # smallest clearance beyond its margin over the failing rules
    score_mm: float
    centring_mm: float          # pedicle passage off centre: isthmus offset + lever x sine of axis angle
    target_kind: str
    target_point: np.ndarray
    tip_to_target_mm: float
    terminus_depth_mm: float
    zone_coverage: float
    nerve_path_coverage: float
    why_not_terminus: str = ""
    #: how forgiving the path is under placement error (:mod:`.robustness`), when assessed
    robustness: Robustness | None = None
    #: the band (mm) the search kept the lesion beyond the canal margin for placement error (0: none)
    canal_band_mm: float = 0.0

    @property
    def terminus_outside_mm(self) -> float:
        """How far the nominal terminus lies outside the lesion (mm; 0 inside)."""
        return max(0.0, -self.terminus_depth_mm)

    @property
    def verdict(self) -> str:
        return self.check.verdict


@dataclass
class ApproachResult:
    """The outcome for one approach on one side: a plan (or None with the blocking reasons).

    ``zone_refusal``: when no lesion that keeps the canal margin can reach the target zone, the
    numbers that show it (mm): the zone point farthest from the canal, the distance a lesion
    covering a point by the coverage margin needs, the nominal terminus's canal distance."""

    approach: str
    side: str
    plan: PathPlan | None
    alternatives: list[PathPlan] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    candidates: int = 0
    zone_refusal: dict | None = None


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
    zone: TargetZone | None = None
    #: which soft tissue the checks used (SafetyZones.soft_tissue): labelled organs or modelled zones
    soft_tissue: str = ""
    #: the plans under the labels one level off (:func:`.label_sensitivity.label_sensitivity`), when asked
    label_sensitivity: list | None = None
    #: one probe or two (:mod:`.two_probes`): the pair where it was planned, and why
    two_probes: PairOutcome | None = None

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
    ``approaches`` limits the search to some of :data:`APPROACHES`; ``settings.robustness``: assess
    every plan under its placement-error model and rank by it too (None or 0 samples: not assessed). Raises
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
    ctx = SearchContext(zones, device, rules, settings, TargetZone.of(landmarks, settings.target_zone))
    assessed = settings.robustness is not None and settings.robustness.model.samples > 0
    band = settings.robustness.band_mm if assessed else 0.0
    results = [r for approach in approaches for r in _plan_approach(ctx, approach, band)]
    if assessed:
        notes += _assess_robustness(ctx, results, settings.robustness)
    recommendation, reasons = _recommend(results, landmarks.level, settings)
    pair = _two_probes(ctx, results, landmarks.level)
    if recommendation is not None:
        reasons.append(pair.words())
    return LevelPlan(landmarks.level, landmarks, device, rules, settings, results, recommendation, reasons, notes,
                     zone=ctx.zone, soft_tissue=zones.soft_tissue, two_probes=pair)


def _plan_approach(ctx: SearchContext, approach: str, band_mm: float) -> list[ApproachResult]:
    """``approach`` on the right and the left side. With a robustness band (``band_mm`` > 0,
    :attr:`.robustness.RobustnessSettings.band_mm`) both sides are first planned with the lesion
    kept the band beyond the canal margin, then judged by the real rules; when a side finds no
    such plan, the approach is planned at the margin itself (and without a canal rule, no band)."""
    if band_mm > 0 and "canal_lesion" in ctx.margins:
        banded = _plan_approach(_banded(ctx, band_mm), approach, 0.0)
        if all(r.plan is not None for r in banded):
            return [_unbanded(ctx, r, band_mm) for r in banded]
    (right, right_ctx), (left, left_ctx) = (_plan_side(ctx, approach, side) for side in SIDES)
    # Each side also weighs the mirror image of the other's plan, so that near-ties on a nearly
    # symmetric vertebra end in mirror-image plans rather than in either of two equal ones.
    # When the left side takes the right plan's mirror image, the mirror image of that is the right
    # plan itself: nothing to weigh.
    weighed = _weigh_mirror_image(left_ctx, left, right)
    if weighed.plan is left.plan:
        right = _weigh_mirror_image(right_ctx, right, left)
    return [right, weighed]


def _banded(ctx: SearchContext, band_mm: float) -> SearchContext:
    """``ctx`` with the lesion's canal margin raised by ``band_mm`` (the search's rules only)."""
    return ctx.with_rules(ctx.rules.with_changes("canal_lesion", margin_mm=ctx.canal_lesion_margin_mm + band_mm))


def _unbanded(ctx: SearchContext, result: ApproachResult, band_mm: float) -> ApproachResult:
    """A result planned with a robustness band, its plans judged again by ``ctx``'s own rules."""
    def rejudge(p: PathPlan) -> PathPlan:
        aim = ctx if p.target_kind == "terminus" else ctx.aimed(p.target_point)
        plan = _exact(aim, result.approach, result.side, p.path, p.centring_mm)
        plan.why_not_terminus = p.why_not_terminus and (
            f"{p.why_not_terminus} (the search kept the lesion {band_mm:.1f} mm beyond the canal margin for placement error)")
        plan.canal_band_mm = band_mm
        return plan
    return ApproachResult(result.approach, result.side, rejudge(result.plan), [rejudge(a) for a in result.alternatives],
                          result.blocked, result.candidates)


def _two_probes(ctx: SearchContext, results: list[ApproachResult], level: str) -> PairOutcome:
    """One probe or two at ``level``: the right + left pair (:func:`.two_probes.plan_pair`) where
    :func:`.two_probes.pair_wanted` says it can matter, else the one-probe outcome with its reason."""
    from .two_probes import pair_wanted, plan_pair  # two_probes imports this module

    return pair_wanted(level, results, ctx.settings.two_probe_levels) or plan_pair(ctx, results)


def _assess_robustness(ctx: SearchContext, results: list[ApproachResult], robustness: RobustnessSettings) -> list[str]:
    """Set the placement-error assessment (:func:`.robustness.assess_plan`) of every approach and
    side's plan the recommendation can choose (runner-ups are not assessed, nor, when a plan
    passes, the plans with warnings: :func:`_recommend` puts every passing plan first); the level's
    note naming the plans left out, or []."""
    passing = any(r.plan is not None and r.plan.verdict == PASS for r in results)
    skipped = []
    for r in results:
        if r.plan is None:
            continue
        if passing and r.plan.verdict != PASS:
            skipped.append(f"{r.side} {r.approach}")
            continue
        r.plan.robustness = assess_plan(ctx.zones, r.plan, robustness, ctx.rules, ctx.terminus)
    return [f"placement error not assessed for the plans with warnings ({', '.join(skipped)}): a plan with "
            "warnings is never recommended while one passes"] if skipped else []


def _recommend(results: list[ApproachResult], level: str, settings: PlannerSettings):
    """Prefer a passing plan over a warning one, a plan that is not fragile over a fragile one
    (when robustness was assessed), the curved transpedicular route over the others (the standard
    technique), then the larger score (less the breach weight x breach probability,
    :func:`.ranking.robust_rank`)."""
    plans = [r.plan for r in results if r.plan is not None]
    if not plans:
        reasons = ["no approach on either side gives a safe plan:"]
        reasons += [f"{r.side} {r.approach}: {'; '.join(r.blocked)}" for r in results]
        return None, reasons
    preference = {"transpedicular": 0, "transpedicular-straight": 1, "extrapedicular": 2}
    def rank_key(p):  # safe, then not fragile, then covering the nominal terminus, then route and score
        not_fragile, *rest = robust_rank(p, settings.robustness, -preference[p.approach])
        return p.verdict == PASS, not_fragile, p.target_kind == "terminus", *rest, p.side == "right"
    best = max(plans, key=rank_key)
    reasons = [f"{best.side} {best.approach}: checker verdict {best.verdict}; smallest clearance beyond its margin "
               f"{best.min_slack_mm:.1f} mm; " + _target_words(best)]
    reasons += robustness_reasons(best, plans, settings.robustness.band_mm if settings.robustness else 0.0)
    if best.target_kind == "zone":
        reasons.append(f"the nominal terminus is not covered: {best.why_not_terminus}; the lesion covers the target "
                       "zone's point nearest it that the canal margin allows")
    if best.tip_to_target_mm > settings.target_tolerance_mm + 0.05:
        reasons.append(f"the tip is {best.tip_to_target_mm:.1f} mm from the {best.target_kind} point aimed at, beyond "
                       f"the {settings.target_tolerance_mm:.1f} mm target tolerance: the nearest tip the search found "
                       f"that keeps every margin (lesion to canal "
                       f"{best.check.clearances['spinal_canal:lesion'].clearance_mm:.1f} mm, that point "
                       f"{best.coverage_mm:.1f} mm inside the lesion)")
    others = sorted((p for p in plans if p is not best), key=lambda p: -p.score_mm)
    for p in others:
        reasons.append(f"also possible: {p.side} {p.approach} (verdict {p.verdict}, score {p.score_mm:.1f} mm)")
    if any(r.approach == "extrapedicular" and r.plan is not None for r in results) and level in ("L4", "L5"):
        reasons.append(f"extrapedicular access at {level}: segmental arteries lie in the puncture zone in "
                       f"{SEGMENTAL_ARTERY_PREVALENCE[level]:.0f}% and the authors advise against it (Liu 2019)")
    if best.verdict != PASS:
        reasons.append("the recommended plan carries warnings: " + "; ".join(best.check.reasons))
    return best, reasons


def _target_words(p: PathPlan) -> str:
    """What the lesion covers of the target, in words."""
    terminus = (f"covers the terminus {p.terminus_depth_mm:.1f} mm deep" if p.terminus_depth_mm >= 0 else
                f"misses the terminus by {p.terminus_outside_mm:.1f} mm")
    return (f"the lesion {terminus}, {100 * p.zone_coverage:.0f} % of the target zone and "
            f"{100 * p.nerve_path_coverage:.0f} % of the nerve path from the foramen; the tip is "
            f"{p.tip_to_terminus_mm:.1f} mm from the terminus")


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
    unreachable = zone_refusal(ctx)
    if unreachable is not None:
        return [f"no lesion that keeps its {ctx.canal_lesion_margin_mm:.1f} mm canal margin reaches the target zone: "
                f"the zone's point farthest from the spinal canal is {unreachable['zone_farthest_from_canal_mm']:.1f} mm "
                f"from it, and covering a point {s.coverage_margin_mm:.1f} mm deep needs {unreachable['needed_mm']:.1f} "
                f"mm; the nominal terminus is {unreachable['terminus_to_canal_mm']:.1f} mm from the canal; zone coverage "
                "0 %, nerve-path coverage 0 %; change the zone, the coverage margin or the canal rule knowingly"]
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


def zone_refusal(ctx: SearchContext) -> dict | None:
    """The numbers (mm) that show no lesion keeping the canal margin can reach the target zone, or
    None when one may: a lesion covering a point by the coverage margin keeps a ball of that radius
    about it, whose canal side must stay the canal margin from the canal."""
    need = ctx.canal_lesion_margin_mm + ctx.settings.coverage_margin_mm
    farthest = float(ctx.zone_to_canal_mm.max())
    if farthest >= need:
        return None
    return {"zone_farthest_from_canal_mm": farthest, "needed_mm": need, "terminus_to_canal_mm": ctx.terminus_to_canal,
            "zone_coverage": 0.0, "nerve_path_coverage": 0.0}


def _aims(ctx: SearchContext) -> list[SearchContext]:
    """The contexts to search in turn: the nominal terminus when a lesion can cover it and keep the
    canal margin, then the zone points of ZONE_AIM_SLACKS_MM (distinct ones)."""
    need = ctx.canal_lesion_margin_mm + ctx.settings.coverage_margin_mm
    aims = [ctx] if ctx.terminus_to_canal >= need else []
    chosen: list[int] = []
    for slack in ZONE_AIM_SLACKS_MM:
        order = ctx.zone.deepest_reachable(ctx.zone_to_canal_mm, need + slack)
        if len(order) and int(order[0]) not in chosen:
            chosen.append(int(order[0]))
            aims.append(ctx.aimed(ctx.zone.points[order[0]]))
    return aims


_CANDIDATES = {"transpedicular": curved_candidates, "transpedicular-straight": straight_candidates,
               "extrapedicular": extrapedicular_candidates}


def _plan_side(ctx: SearchContext, approach: str, side: str) -> tuple[ApproachResult, SearchContext]:
    """The side's result and the context (target) it was planned for: the nominal terminus first,
    then the zone points of :func:`_aims` while nothing plans."""
    refused = _refusal(ctx, approach, side)
    if refused:
        return ApproachResult(approach, side, None, blocked=refused, zone_refusal=zone_refusal(ctx)), ctx
    blocked_before: list[str] = []
    for aim in _aims(ctx):
        result = _search(aim, approach, side)
        where = "the nominal terminus" if aim.target_kind == "terminus" else (
            f"the zone point {aim.terminus_to_canal:.1f} mm from the canal")
        if result.plan is not None:
            why = "; ".join(blocked_before) if blocked_before else (
                f"the terminus is {ctx.terminus_to_canal:.1f} mm from the spinal canal, nearer than the "
                f"{ctx.canal_lesion_margin_mm:.1f} mm canal margin plus the {ctx.settings.coverage_margin_mm:.1f} mm "
                "coverage margin")
            for p in [result.plan, *result.alternatives]:
                p.why_not_terminus = "" if aim.target_kind == "terminus" else why
            return result, aim
        blocked_before.append(f"aiming at {where}: " + "; ".join(result.blocked))
    return ApproachResult(approach, side, None, blocked=blocked_before, candidates=result.candidates), ctx


def plan_side_at(ctx: SearchContext, approach: str, side: str, target: np.ndarray) -> ApproachResult:
    """``approach`` on ``side`` with the lesion aimed at ``target`` (mm, model coordinates; e.g. one
    probe of a pair), held by the coverage margin, after the refusals that come before any search."""
    refused = _refusal(ctx, approach, side)
    if refused:
        return ApproachResult(approach, side, None, blocked=refused, zone_refusal=zone_refusal(ctx))
    return _search(ctx.aimed(target), approach, side)


def _search(ctx: SearchContext, approach: str, side: str) -> ApproachResult:
    """The candidates of ``approach`` on ``side`` for the context's target, judged."""
    cands, blocked = _CANDIDATES[approach](ctx, side)
    return ApproachResult(approach, side, None, blocked=blocked) if cands is None else _judge(ctx, approach, side, cands)


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
            f"the lesion covers the {worst.target_kind} point only {worst.coverage_mm:.1f} mm deep (margin "
            f"{s.coverage_margin_mm:.1f} mm)"]
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
    nominal = np.asarray(ctx.lm.bvn_terminus, float)
    terminus_depth = coverage if ctx.target_kind == "terminus" else -float(lesion.signed_distance(nominal)[0])
    clearances = [r.clearance_mm - r.margin_mm for r in check.rules
                  if ctx.rules[r.rule].severity == FAIL and np.isfinite(r.clearance_mm)]
    clearances.append(coverage - ctx.settings.coverage_margin_mm)
    min_slack = float(min(clearances))
    path_score = float(score(ctx.settings, np.array([min_slack]), np.array([tip_distance]))[0])
    numbers = path_numbers(path, ctx.lm, check, ctx.zones.skin)
    return PathPlan(approach, side, path, lesion, check, numbers, float(np.linalg.norm(path.tip - nominal)), coverage,
                    min_slack, path_score, centring, ctx.target_kind, ctx.terminus.copy(), tip_distance, terminus_depth,
                    ctx.zone.coverage(lesion), ctx.zone.nerve_path_coverage(lesion))


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
    plan.why_not_terminus = own.why_not_terminus
    clearly_worse = ((plan.verdict != PASS and own.verdict == PASS)
                     or plan.score_mm < own.score_mm - RANK_QUANTUM_MM
                     or round(plan.tip_to_target_mm, 1) > round(own.tip_to_target_mm, 1)
                     or plan.centring_mm > own.centring_mm + MIRROR_CENTRING_TOLERANCE_MM)
    if clearly_worse and choose([own, plan])[0] is not plan:
        return result
    return ApproachResult(result.approach, result.side, plan, [own, *result.alternatives][:s.alternatives],
                          result.blocked, result.candidates)
