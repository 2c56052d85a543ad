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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..lesion import UnionLesion
from .planner import LevelPlan, PathPlan, plan_side_at
from .safety import FAIL, CheckResult, SafetyZones, check_path
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


@dataclass
class PairOutcome:
    """The best pair found (None when none passes) and why each offset tried was kept or dropped."""

    pair: ProbePair | None
    single: PathPlan | None
    reasons: list[str]


def plan_pair(vertebra, level_plan: LevelPlan, zones: SafetyZones | None = None) -> PairOutcome:
    """The right + left transpedicular pair of ``level_plan``'s vertebra covering most of its target
    zone, beside its best single transpedicular plan; ``zones``: the safety zones of the level plan's
    landmarks (built when None)."""
    lm = level_plan.landmarks
    singles = [r.plan for r in level_plan.results if r.approach == "transpedicular" and r.plan is not None]
    if not singles:
        return PairOutcome(None, None, ["no single transpedicular plan to start the pair from"])
    single = max(singles, key=lambda p: (p.zone_coverage, p.score_mm))
    if zones is None or zones.landmarks is not lm:
        zones = SafetyZones(vertebra.mesh, lm)
    ctx = SearchContext(zones, level_plan.device, level_plan.rules, level_plan.settings, level_plan.zone)
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
        checks = tuple(check_path(zones, p.path, union, level_plan.rules) for p in (right.plan, left.plan))
        if any(c.verdict == FAIL for c in checks):
            reasons.append(f"{where}: with the union lesion, " + "; ".join(r for c in checks for r in c.reasons))
            continue
        pairs.append(ProbePair(right.plan, left.plan, union, checks, level_plan.zone.coverage(union),
                               level_plan.zone.nerve_path_coverage(union), separation, single.zone_coverage))
    if not pairs:
        return PairOutcome(None, single, reasons)
    best = max(pairs, key=lambda p: p.zone_coverage)
    gain = best.zone_coverage - single.zone_coverage
    best.recommended = gain >= PAIR_GAIN_MIN - 1e-12
    best.reasons = [f"two probes (tips {best.tip_separation_mm:.1f} mm apart) cover {100 * best.zone_coverage:.0f} % of "
                    f"the target zone, one probe ({single.side}) {100 * single.zone_coverage:.0f} %: "
                    f"{100 * gain:+.0f} percentage points; " + (
                        "two probes recommended" if best.recommended else
                        f"one probe recommended (the pair gains less than {100 * PAIR_GAIN_MIN:.0f} points)")]
    return PairOutcome(best, single, reasons + best.reasons)
