"""Preselection of the curved transpedicular (line, tip) pairs worth screening (mm, model coordinates).

Every pair of an introducer line through the pedicle and a tip candidate that a cannula arc joins
is scored cheaply from dot products alone: the line's depth in the pedicle, a lower bound of the
terminus coverage and the lesion's reach toward the canal estimated from its centre. A bound of each
pair's score, read from its line and tip, spares working out the arcs of pairs that cannot compete.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..paths import TangentArcs, max_arc_offset_mm
from .ranking import score
from .search import SearchContext

#: The preselection scores first this many times ``screened_candidates`` (line, tip) pairs of best
#: bound (line score, tip distance, the tip's best coverage); the ``screened_candidates``-th best score
#: among them is the bar the other pairs must clear to be scored.
PRESELECT_PROBE = 16


@dataclass
class IntroducerLines:
    """Introducer lines through the pedicle isthmus (mm, model coordinates): points (L, 3), unit
    directions (L, 3), their stage-1 score (L,; depth in bone and canal clearance beyond the radius
    and margin) and how far behind the point each enters the bone (L,)."""

    points: np.ndarray
    directions: np.ndarray
    score: np.ndarray
    entry_back: np.ndarray

    def take(self, rows: np.ndarray) -> "IntroducerLines":
        return IntroducerLines(self.points[rows], self.directions[rows], self.score[rows], self.entry_back[rows])


@dataclass
class _Pairs:
    """(line, tip) pairs a cannula arc joins: line and tip indices and their arcs."""

    line: np.ndarray
    tip: np.ndarray
    arcs: TangentArcs

    def take(self, rows: np.ndarray) -> "_Pairs":
        a = self.arcs
        return _Pairs(self.line[rows], self.tip[rows],
                      TangentArcs(a.along_mm[rows], a.offset_mm[rows], a.chord_mm[rows], a.arc_radius_mm))


class _PairTables:
    """The dot products of every line with every tip and the terminus, as (lines, tips) arrays, from
    which any pair's arc and pre-score follow without forming the pair.

    A pair's arc: with W = T - P, a0 = W.d and p0 = |W - a0 d|. Its tip direction
    cos(theta) d + sin(theta) (W - a0 d) / p0 is c d + b W, so its dot products come from the lines'
    and tips' own."""

    def __init__(self, ctx: SearchContext, side: str, lines: IntroducerLines, tips: np.ndarray):
        self.ctx, self.lines, self.tips = ctx, lines, tips
        P, D = lines.points, lines.directions
        dev, s = ctx.device, ctx.settings
        self.R = dev.cannula_radius_mm
        self.h, self.r, self.offset = dev.lesion_length_mm / 2, dev.lesion_diameter_mm / 2, dev.lesion_offset_mm
        self.tip_d = D @ tips.T - np.einsum("lk,lk->l", P, D)[:, None]
        self.w2 = np.einsum("tk,tk->t", tips, tips)[None, :] - 2 * P @ tips.T + np.einsum("lk,lk->l", P, P)[:, None]
        self.max_p = max_arc_offset_mm(self.R, dev.cannula_max_arc_deg)
        anterior = ctx.frame.anterior
        self.line_past = (P - ctx.lm.pedicles[side].body_junction) @ anterior
        self.line_forward = D @ anterior
        delta = ctx.terminus - tips                                        # per tip
        self.delta2 = np.einsum("tk,tk->t", delta, delta)
        self.tip_distance = np.sqrt(self.delta2)
        self.delta_d, self.delta_p = D @ delta.T, P @ delta.T              # per line and tip
        self.delta_tip = np.einsum("tk,tk->t", delta, tips)
        posterior = -ctx.frame.anterior
        self.post_d, self.post_p, self.post_tip = D @ posterior, P @ posterior, tips @ posterior
        # the terminus lies at least | |delta| - offset | from the lesion centre, so no direction gives a
        # coverage above the tip's own bound: a bound of each pair's score read from its line and tip
        h, r = self.h, self.r
        tip_coverage = (1 - np.abs(self.tip_distance - self.offset) / max(h, r)) * min(h, r) - s.coverage_margin_mm
        self.bound = (score(s, np.minimum(lines.score[:, None], tip_coverage[None, :]), self.tip_distance[None, :])
                      + 1e-9).ravel()

    def arcs(self, flat: np.ndarray) -> _Pairs:
        """The pairs among ``flat`` (row-major indices) a cannula arc joins within the device's
        maximum angle, starting in the allowed window past the wall within the introducer's depth."""
        l, t = np.divmod(flat, len(self.tips))
        a0 = self.tip_d[l, t]
        arcs = TangentArcs.from_offsets(a0, np.sqrt(np.clip(self.w2[l, t] - a0 ** 2, 0, None)), self.R)
        p0, arc_s = arcs.offset_mm, arcs.start_mm             # arc start depth past the isthmus point
        past = self.line_past[l] + arc_s * self.line_forward[l]
        lo, hi = self.ctx.settings.arc_start_past_wall_mm
        keep = ((p0 > 0.5) & (p0 <= self.max_p) & (past >= lo) & (past <= hi)
                & (self.lines.entry_back[l] + arc_s <= self.ctx.device.introducer_max_depth_mm))
        return _Pairs(l, t, arcs).take(keep)

    def score(self, pairs: _Pairs, bar: float = -np.inf) -> np.ndarray:
        """Pre-scores of ``pairs``; -inf for those whose score without the canal term is below ``bar``."""
        s, R, h, r, offset = self.ctx.settings, self.R, self.h, self.r, self.offset
        l, t, a0, p0 = pairs.line, pairs.tip, pairs.arcs.along_mm, pairs.arcs.offset_mm
        # theta = 2 atan2(p0, chord_a), p0^2 + chord_a^2 = 2 R p0: sin(theta) = chord_a / R, cos(theta) = 1 - p0 / R
        b = pairs.arcs.chord_mm / (R * p0)
        c = 1 - p0 / R - b * a0
        # terminus depth in the lesion, lower bound: (1 - ellipsoidal radius) x the semi-minor axis;
        # with q = delta . tip_dir: along = q + offset, across^2 = |delta|^2 - q^2
        q = c * self.delta_d[l, t] + b * (self.delta_tip[t] - self.delta_p[l, t])
        across = np.sqrt(np.clip(self.delta2[t] - q ** 2, 0, None))
        coverage = (1 - np.hypot((q + offset) / h, across / r)) * min(h, r) - s.coverage_margin_mm
        upper = score(s, np.minimum(self.lines.score[l], coverage), self.tip_distance[t])
        out = np.full(len(l), -np.inf)
        m = upper >= bar
        l, t, b, c = l[m], t[m], b[m], c[m]
        # the lesion's reach toward the canal from its centre
        cos2 = (c * self.post_d[l] + b * (self.post_tip[t] - self.post_p[l])) ** 2
        reach = np.sqrt(h ** 2 * cos2 + r ** 2 * (1 - cos2))
        P, D, tips = self.lines.points, self.lines.directions, self.tips
        centre = tips[t] - offset * (c[:, None] * D[l] + b[:, None] * (tips[t] - P[l]))
        canal = self.ctx.zones.canal.approximate(centre) - reach - self.ctx.canal_lesion_margin_mm
        out[m] = np.minimum(upper[m], score(s, canal, self.tip_distance[t]))
        return out


def preselect(ctx: SearchContext, side: str, lines: IntroducerLines, tips: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Line and tip indices, row-major, of the ``screened_candidates`` most promising (line, tip)
    pairs a cannula arc joins, by the cheap pre-score; ties go to the lower index. None when no arc
    joins any pair. The arcs are worked out, and the canal grid read, only for pairs whose bound
    (then whose score without the canal term) can reach the bar."""
    tables = _PairTables(ctx, side, lines, tips)
    bound = tables.bound
    # the S-th best score among the joined pairs of best bound is a lower bound of the S-th best
    # overall, so only pairs whose bound (and then whose score without the canal term) reaches it
    # can be among the best
    S = ctx.settings.screened_candidates
    n_probe = PRESELECT_PROBE * S
    threshold = -np.inf
    if len(bound) > n_probe:
        probe = tables.arcs(np.sort(np.argpartition(-bound, n_probe)[:n_probe]))
        if len(probe.line) >= S:
            threshold = np.partition(tables.score(probe), -S)[-S]
    contenders = tables.arcs(np.flatnonzero(bound >= threshold))
    if len(contenders.line) == 0:
        return None
    if len(contenders.line) > S:
        # the S best, ties at the S-th score to the lower index
        scores = tables.score(contenders, threshold)
        last = np.partition(scores, -S)[-S]
        above = np.flatnonzero(scores > last)
        best = np.sort(np.concatenate([above, np.flatnonzero(scores == last)[: S - len(above)]]))
        contenders = contenders.take(best)
    return contenders.line, contenders.tip
