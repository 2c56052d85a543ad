"""Two probes: a right + left transpedicular pair whose union lesion covers more of the BVN target
zone than one probe can (mm, model coordinates).

A bi-pedicular (two-probe) variant is reported at L5/S1, and a bipolar two-tip simulation on 31 CTs
put the tips 10-20 mm apart (bvn_facts.md "Anatomy of the target" 6: Sayed/Beall 2024 Med Devices
17:323). Each probe of a pair is planned like a single one (:func:`bvn_plan.planning.planner.plan_side_at`),
aimed at the best single plan's target moved by one of PAIR_AIM_OFFSETS_MM, the other probe by the
opposite offset (a pair symmetric about the target: tips apart across the body and in height, where
one spheroid lying across the body leaves the zone's cranial and caudal parts); each path is then
checked again by
:func:`bvn_plan.planning.safety.check_path` with the union of both lesions, so that every lesion rule
(canal, endplates, ...) holds for the whole ablated volume. The pair is recommended when its union
covers at least PAIR_GAIN_MIN more of the zone than the single probe.

:func:`bvn_plan.planning.planner.plan_level` plans the pair (:func:`plan_pair`) only where it can
matter and stays cheap (about 1 s of CPU per level): at the levels of
``PlannerSettings.two_probe_levels`` (default L5 and S1, where the two-probe variant is reported),
and only when the single probe leaves more than PAIR_GAIN_MIN of the zone uncovered (otherwise no
pair can gain enough). Elsewhere the level's :class:`PairOutcome` says one probe and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..levels import TRANSITIONAL
from ..lesion import UnionLesion
from .planner import ApproachResult, PathPlan, plan_side_at
from .robustness import Robustness, RobustnessSettings, assess_pair
from .safety import FAIL, CheckResult, check_path
from .search import SearchContext

#: The tips of a pair lie this far apart (mm) [V, Sayed/Beall 2024: 10-20 mm in 31 CTs].
PAIR_TIP_SEPARATION_MM = (10.0, 20.0)
#: A pair is recommended over one probe when its union covers at least this much more of the
#: target zone (a share: 10 percentage points, issue 18).
PAIR_GAIN_MIN = 0.10
#: Where the right probe aims, tried in turn: the single plan's target moved (mm, vertebra frame)
#: across the body toward the patient's left (the right probe's far side; its lesion lies behind its
#: tip, toward its own side) and in height (superior positive); the left probe aims at the opposite
#: offset [A: tips about 10 mm apart, the lower end of Sayed/Beall's 10-20 mm].
PAIR_AIM_OFFSETS_MM = ((4.5, 2.5), (4.5, -2.5), (0.0, 5.0))


@dataclass
class ProbePair:
    """A right + left pair (``right``, ``left``: each a checked single plan) with its ``union``
    lesion, each path's check with the union (``checks``: right, left), the zone and nerve-path
    shares the union covers, the tips' separation (mm), the single plan's zone share, whether the
    pair is ``recommended`` and why (``reasons``)."""

    right: PathPlan
    left: PathPlan
    union: UnionLesion
    checks: tuple[CheckResult, CheckResult]
    zone_coverage: float
    nerve_path_coverage: float
    tip_separation_mm: float
    single_zone_coverage: float
    recommended: bool = False
    reasons: list[str] = field(default_factory=list)
    #: how forgiving the pair is under placement error (:func:`.robustness.assess_pair`), when assessed
    robustness: Robustness | None = None


@dataclass
class PairOutcome:
    """A level's answer to "one probe or two": the best pair found (None when none passes or none
    was planned), the single transpedicular plan it is weighed against, whether a pair was
    ``planned`` at all (:func:`pair_wanted`), and why (``reasons``: each offset tried, then the
    verdict)."""

    pair: ProbePair | None
    single: PathPlan | None
    reasons: list[str]
    planned: bool = True

    @property
    def probes(self) -> str:
        """"two probes" when a pair is recommended, else "one probe"."""
        return "two probes" if self.pair is not None and self.pair.recommended else "one probe"

    def words(self) -> str:
        """The recommendation's sentence: one probe or two, and why (the last reason)."""
        return f"{self.probes} recommended: {self.reasons[-1]}"


def _singles(results: list[ApproachResult]) -> list[PathPlan]:
    return [r.plan for r in results if r.approach == "transpedicular" and r.plan is not None]


def pair_wanted(level: str, results: list[ApproachResult], two_probe_levels: tuple[str, ...]) -> PairOutcome | None:
    """None when a pair is worth planning at ``level`` (one of ``two_probe_levels``, an L6 counting
    as L5, and the best single transpedicular plan leaves more than PAIR_GAIN_MIN of the zone
    uncovered); otherwise the one-probe outcome that says why not."""
    singles = _singles(results)
    single = max(singles, key=lambda p: (p.zone_coverage, p.score_mm)) if singles else None
    levels = ", ".join(two_probe_levels) or "no level"
    if TRANSITIONAL.get(level, level) not in two_probe_levels:
        why = (f"a pair is planned only at {levels} (planner setting two_probe_levels: the two-probe variant is "
               f"reported at L5/S1)" + ("" if single is None else
                                        f"; one probe ({single.side}) covers {100 * single.zone_coverage:.0f} % "
                                        "of the target zone"))
        return PairOutcome(None, single, [why], planned=False)
    if single is not None and single.zone_coverage > 1.0 - PAIR_GAIN_MIN:
        return PairOutcome(None, single, [
            f"one probe ({single.side}) covers {100 * single.zone_coverage:.0f} % of the target zone: no pair can gain "
            f"{100 * PAIR_GAIN_MIN:.0f} percentage points"], planned=False)
    return None


def plan_pair(ctx: SearchContext, results: list[ApproachResult]) -> PairOutcome:
    """The right + left transpedicular pair covering most of ``ctx``'s target zone (``ctx``: the
    level's search context aimed at the nominal terminus), beside the best single transpedicular
    plan of the level's ``results``."""
    singles = _singles(results)
    if not singles:
        return PairOutcome(None, None, ["no single transpedicular plan to start the pair from"])
    single = max(singles, key=lambda p: (p.zone_coverage, p.score_mm))
    lm, zones, zone = ctx.lm, ctx.zones, ctx.zone
    pairs, reasons = [], []
    lo, hi = PAIR_TIP_SEPARATION_MM
    for across, height in PAIR_AIM_OFFSETS_MM:
        shift = -across * lm.frame.right + height * lm.frame.superior
        right, left = (plan_side_at(ctx, "transpedicular", side, single.target_point + sign * shift)
                       for side, sign in (("right", 1.0), ("left", -1.0)))
        where = f"aims {across:.1f} mm across and {height:+.1f} mm in height from the target"
        if right.plan is None or left.plan is None:
            reasons.append(f"{where}: " + "; ".join(f"no {r.side} plan ({'; '.join(r.blocked)})"
                                                    for r in (right, left) if r.plan is None))
            continue
        separation = float(np.linalg.norm(right.plan.path.tip - left.plan.path.tip))
        if not lo - 1e-6 <= separation <= hi + 1e-6:
            reasons.append(f"{where}: tips {separation:.1f} mm apart, outside {lo:.0f}-{hi:.0f} mm")
            continue
        union = UnionLesion([right.plan.lesion, left.plan.lesion])
        checks = tuple(check_path(zones, p.path, union, ctx.rules) for p in (right.plan, left.plan))
        if any(c.verdict == FAIL for c in checks):
            reasons.append(f"{where}: with the union lesion, " + "; ".join(r for c in checks for r in c.reasons))
            continue
        pairs.append(ProbePair(right.plan, left.plan, union, checks, zone.coverage(union),
                               zone.nerve_path_coverage(union), separation, single.zone_coverage))
    if not pairs:
        return PairOutcome(None, single, reasons + [
            f"no pair passes (tips {lo:.0f}-{hi:.0f} mm apart, both paths checked with the union lesion); one probe "
            f"({single.side}) covers {100 * single.zone_coverage:.0f} % of the target zone"])
    best = max(pairs, key=lambda p: p.zone_coverage)
    gain = best.zone_coverage - single.zone_coverage
    best.recommended = gain >= PAIR_GAIN_MIN - 1e-12
    verdicts = " and ".join(f"{p.side} {c.verdict}" for p, c in zip((best.right, best.left), best.checks))
    best.reasons = [f"the pair (tips {best.tip_separation_mm:.1f} mm apart) covers {100 * best.zone_coverage:.0f} % of "
                    f"the target zone, one probe ({single.side}) {100 * single.zone_coverage:.0f} %: "
                    f"{100 * gain:+.0f} percentage points (" + ("at least" if best.recommended else "less than") +
                    f" the {100 * PAIR_GAIN_MIN:.0f} a pair needs); both paths checked with the union lesion: {verdicts}"]
    robustness = ctx.settings.robustness
    if robustness is not None and robustness.model.samples > 0:
        _assess(ctx, best, single, robustness)
    return PairOutcome(best, single, reasons + best.reasons)


def _assess(ctx: SearchContext, pair: ProbePair, single: PathPlan, robustness: RobustnessSettings) -> None:
    """Set the pair's placement-error assessment (each probe under its own errors, the union lesion
    judged) and, as the single plans rank, put a fragile pair after a single probe that is not fragile."""
    pair.robustness = assess_pair(ctx.zones, (pair.right, pair.left), robustness, ctx.rules, ctx.terminus)
    pair.reasons.insert(0, f"the pair (each probe under its own errors, the union lesion judged): "
                           f"{pair.robustness.words()}")
    single_robust = single.robustness is not None and not single.robustness.fragile
    if pair.recommended and pair.robustness.fragile and single_robust:
        pair.recommended = False
        pair.reasons.append(f"the pair is fragile (breach probability {100 * pair.robustness.breach_probability:.0f} %) "
                            f"and one probe is not ({100 * single.robustness.breach_probability:.0f} %): one probe")
