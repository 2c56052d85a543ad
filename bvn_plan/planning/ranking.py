"""Scoring, ranking and choosing the planner's candidates and checked plans (mm).

Score of a candidate (mm, higher is better): its smallest clearance beyond the rule margins
(capped at ``clearance_cap_mm``) minus ``tip_weight`` x the tip distance beyond
``target_tolerance_mm``. Near-equal scores (RANK_QUANTUM_MM) are decided by the nearer tip, then
the more centred pedicle passage. Where the plans' robustness to placement error was assessed,
the recommendation ranks them by it as well (:func:`robust_rank`).
"""

from __future__ import annotations

import numpy as np

from .safety import PASS
from .screening import exact_lesion_canal, lesion_canal_clearance, probe_lesion_canal
from .search import Candidates, SearchContext
from .settings import PlannerSettings

#: Checked plans whose scores lie within this (mm) of the best count as equal, and the nearer tip,
#: then the centred pedicle passage decide: about the accuracy of the grid distances.
RANK_QUANTUM_MM = 0.25

#: At most this many rounds of refinement. A round probes the best ranked unprobed candidates, the
#: waiting ones and PROBE_BATCH more, or refines those to be judged: a probe, one exact distance at
#: the lesion sample of lowest grid estimate, bounds the refined clearance from above (it is one of
#: the samples the minimum runs over) and is within 0.1 mm of it for most candidates, so only the
#: judged ones need the full refinement. (VHM L4 needs 67 rounds on its right side, where refined
#: near-duplicates of the judged ones fall one after the other.)
REFINE_ROUNDS = 200
PROBE_BATCH = 32

#: Candidates whose tips and introducer lines both lie within this (mm) of a better one's are alike:
#: only the better one is judged.
ALIKE_MM = 1.5


def score(settings: PlannerSettings, min_slack: np.ndarray, tip_distance: np.ndarray) -> np.ndarray:
    """Scores (mm) from the smallest clearances beyond their margins and the tip-to-terminus distances."""
    s = settings
    return np.minimum(min_slack, s.clearance_cap_mm) - s.tip_weight * np.maximum(0.0, tip_distance - s.target_tolerance_mm)


class ScreenedCandidates:
    """Grid estimates of every constraint's clearance beyond its margin (mm) per candidate, the rows of
    ``stack`` named by ``names``, with the tip-to-terminus distances (mm), the smallest clearance
    and the score of each, kept up to date as the lesion-to-canal row is refined."""

    def __init__(self, settings: PlannerSettings, slacks: dict[str, np.ndarray], tip_distance: np.ndarray):
        self.settings = settings
        self.names = list(slacks)
        self.stack = np.stack([slacks[n] for n in self.names])
        self.tip_distance = tip_distance
        self._update()

    def set_canal_lesion(self, rows: np.ndarray, clearance: np.ndarray) -> None:
        """Replace the lesion-to-canal clearance (mm) of candidates ``rows``."""
        self.stack[self.names.index("canal_lesion"), rows] = clearance
        self._update()

    def _update(self) -> None:
        self.min_slack = self.stack.min(axis=0)
        self.score = score(self.settings, self.min_slack, self.tip_distance)


def robust_rank(plan, robustness, preference: int) -> tuple:
    """The recommendation's ranking of a checked plan after its verdict: not fragile first, then the
    route ``preference`` (higher first), then the score less ``breach_weight_mm`` x the breach
    probability (mm, to 0.1 mm) of :class:`~bvn_plan.planning.robustness.RobustnessSettings`
    ``robustness``. Without an assessment (``robustness`` None, or the plan not assessed) every plan
    counts as not fragile and ranks by its plain score."""
    rob = plan.robustness if robustness is not None else None
    if rob is None:
        return True, preference, round(plan.score_mm, 1)
    return not rob.fragile, preference, round(plan.score_mm - robustness.breach_weight_mm * rob.breach_probability, 1)


def rank(indices: np.ndarray, score: np.ndarray, tip_distance: np.ndarray, centring: np.ndarray) -> np.ndarray:
    """``indices`` best first, as :func:`choose` ranks checked plans: those within RANK_QUANTUM_MM
    of the best score by nearer tip (to 0.1 mm), then the more centred pedicle passage; the rest
    by score."""
    if len(indices) == 0:
        return indices
    s, tip, cen = score[indices], np.round(tip_distance[indices], 1), np.round(centring[indices], 2)
    near = s >= s.max() - RANK_QUANTUM_MM
    return indices[np.lexsort((cen, tip, -np.where(near, np.inf, s)))]


def choose(plans: list) -> list:
    """Checked plans (:class:`~bvn_plan.planning.planner.PathPlan`) best first. Among the passing
    plans (else the warning ones), those within RANK_QUANTUM_MM of the best score count as equal; of
    these the nearer tip (to 0.1 mm), then the more centred pedicle passage wins. The rest follow by
    score."""
    pool = [p for p in plans if p.verdict == PASS] or plans
    top = max(p.score_mm for p in pool)
    near = [p for p in pool if p.score_mm >= top - RANK_QUANTUM_MM]
    best = min(near, key=lambda p: (round(p.tip_to_target_mm, 1), round(p.centring_mm, 2)))
    rest = sorted((p for p in plans if p is not best), key=lambda p: (p.verdict == PASS, p.score_mm), reverse=True)
    return [best] + rest


def distinct(settings: PlannerSettings, c: Candidates, order: np.ndarray) -> list[int]:
    """The first ``exact_checks`` candidates of ``order`` (best first) that differ from each other:
    tips or introducer lines (``line_key``) more than ALIKE_MM apart."""
    chosen: list[int] = []
    rest = order
    while len(rest) and len(chosen) < settings.exact_checks:
        k = int(rest[0])
        chosen.append(k)
        alike = ((np.linalg.norm(c.tip[rest] - c.tip[k], axis=1) <= ALIKE_MM)
                 & (np.linalg.norm(c.line_key[rest] - c.line_key[k], axis=1) <= ALIKE_MM))
        rest = rest[~alike]
    return chosen


def refine_and_rank(ctx: SearchContext, c: Candidates, screened: ScreenedCandidates) -> list[int]:
    """The candidates to judge exactly, best first (at most ``exact_checks``, distinct, feasible),
    ``screened`` updated in place.

    The best ranked get their lesion-to-canal clearance again from exact distances on a finer
    lesion, round after round, until every candidate ranked down to the last one that would be
    judged is probed and those judged are refined. A round probes the unprobed among them and the
    next PROBE_BATCH unprobed, or, once all are probed, refines those to be judged. The probe's
    exact distance bounds the refined clearance from above, so a probed candidate cannot rise when
    refined: one ranked below them stays below, one among them that is alike to a judged one ranked
    before it stays skipped. The grid estimate of an unprobed one overstates the clearance by
    0.1-0.5 mm on most meshes. The best score, which sets the bar of the near-equal ones the ranking
    orders by tip, is refined too. Only refined ones are judged.
    """
    n = len(screened.score)
    probe = np.full(n, np.nan)
    refined = np.zeros(n, bool)
    for _ in range(REFINE_ROUNDS):
        feasible = np.flatnonzero(screened.min_slack >= 0)
        order = rank(feasible, screened.score, screened.tip_distance, c.centring)
        judged = distinct(ctx.settings, c, order)
        head = order[: int(np.flatnonzero(order == judged[-1])[0]) + 1] if judged else order[:0]
        exact = np.array(judged + ([int(feasible[np.argmax(screened.score[feasible])])] if len(feasible) else []), int)
        probed = ~np.isnan(probe)
        if refined[exact].all() and probed[head].all():
            break
        waiting = np.union1d(head, exact)
        waiting = waiting[~probed[waiting]]
        if len(waiting):
            new = np.union1d(waiting, order[~probed[order]][:PROBE_BATCH])
            probe[new] = probe_lesion_canal(ctx, c.tip[new], c.tip_dir[new])
            screened.set_canal_lesion(new, lesion_canal_clearance(ctx, probe[new]))
        else:
            finish = exact[~refined[exact]]
            screened.set_canal_lesion(finish, exact_lesion_canal(ctx, c.tip[finish], c.tip_dir[finish], probe[finish]))
            refined[finish] = True
    feasible = np.flatnonzero(screened.min_slack >= 0)
    order = rank(feasible, screened.score, screened.tip_distance, c.centring)
    return distinct(ctx.settings, c, order[refined[order]])
