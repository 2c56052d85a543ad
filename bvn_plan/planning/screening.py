"""Screening the planner's candidates on grid distances (bone, canal, endplate planes, root corridor,
lesion samples) and the exact terminus depth in their lesions; exact lesion-to-canal distances for
the best ranked; and, when nothing is feasible, which constraint blocks (mm, model coordinates)."""

from __future__ import annotations

import numpy as np

from .safety import SafetyZones
from .search import Candidates, SearchContext

#: Icosphere level of the lesion samples whose canal clearance is recomputed exactly for the best
#: ranked screened candidates (162 points).
REFINED_LESION_SUBDIVISIONS = 2
#: Those 162 points overstate the clearance of the smooth spheroid by up to this much (mm; 0.08 mm
#: measured for the default 10 x 14 mm lesion), so it is taken off before ranking.
REFINED_LESION_ERROR_MM = 0.1


def slacks(ctx: SearchContext, c: Candidates) -> dict[str, np.ndarray]:
    """Grid estimates of each constraint's clearance beyond its margin (mm), per candidate."""
    z, r, lm = ctx.zones, ctx.radius_mm, ctx.lm
    points, cum = c.samples.points, c.samples.depth_mm
    N, M, _ = points.shape
    flat = points.reshape(-1, 3)
    canal = z.canal.approximate(flat).reshape(N, M)
    sup = lm.superior_endplate.signed_distance(flat).reshape(N, M)
    inf = lm.inferior_endplate.signed_distance(flat).reshape(N, M)
    entry_depth = cum[np.arange(N), c.in_bone_from]
    after = np.arange(M)[None, :] >= c.in_bone_from[:, None]
    deep = after & (cum >= entry_depth[:, None] + SafetyZones.ENTRY_ZONE_MM)
    out = {}
    depth = np.full((N, M), np.inf)       # depth in bone, read only where it is a constraint
    depth[deep] = -z.bone.approximate(points[deep])
    out["bone"] = depth.min(axis=1) - r
    out["canal_instrument"] = canal.min(axis=1) - r - ctx.margin("canal_instrument")
    ep = np.minimum(np.where(deep, -sup, np.inf).min(axis=1) - ctx.margin("superior_endplate_instrument"),
                    np.where(deep, -inf, np.inf).min(axis=1) - ctx.margin("inferior_endplate_instrument"))
    out["endplate_instrument"] = ep - r
    root = z.root_distance(flat).reshape(N, M).min(axis=1) - r
    out["exiting_root"] = root - ctx.margin("exiting_root_instrument")
    lp = ctx.lesion_points(c.tip, c.tip_dir)
    lflat = lp.reshape(-1, 3)
    K = lp.shape[1]
    out["canal_lesion"] = z.canal.approximate(lflat).reshape(N, K).min(axis=1) - ctx.canal_lesion_margin_mm
    out["endplate_lesion"] = np.minimum(
        (-lm.superior_endplate.signed_distance(lflat)).reshape(N, K).min(axis=1) - ctx.margin("superior_endplate_lesion"),
        (-lm.inferior_endplate.signed_distance(lflat)).reshape(N, K).min(axis=1) - ctx.margin("inferior_endplate_lesion"))
    out["coverage"] = ctx.coverage(c.tip, c.tip_dir) - ctx.settings.coverage_margin_mm
    return out


def _refined_samples(ctx: SearchContext, tip: np.ndarray, tip_dir: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The finer lesion samples of each candidate (N, K, 3; mm, model coordinates), their canal grid
    estimates (N, K, mm) and the index of the lowest estimate per candidate (N,)."""
    lesion = ctx.lesion_points(tip, tip_dir, REFINED_LESION_SUBDIVISIONS)
    approx = ctx.zones.canal.approximate(lesion.reshape(-1, 3)).reshape(lesion.shape[:2])
    return lesion, approx, np.argmin(approx, axis=1)


def lesion_canal_clearance(ctx: SearchContext, distance: np.ndarray) -> np.ndarray:
    """Lesion clearance from the canal beyond its margin (mm) from the least exact canal distance of
    the finer lesion samples (mm), less the samples' error."""
    return distance - REFINED_LESION_ERROR_MM - ctx.canal_lesion_margin_mm


def probe_lesion_canal(ctx: SearchContext, tip: np.ndarray, tip_dir: np.ndarray) -> np.ndarray:
    """Exact canal distance (mm) of each candidate's finer lesion sample with the lowest grid
    estimate: an upper bound of the least distance over its samples."""
    lesion, _, lowest = _refined_samples(ctx, tip, tip_dir)
    return ctx.zones.canal.exact(lesion[np.arange(len(lesion)), lowest])


def exact_lesion_canal(ctx: SearchContext, tip: np.ndarray, tip_dir: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Lesion clearance from the canal beyond its margin (mm) per candidate: exact distances for
    the lesion samples the grid cannot rule out, less the samples' error.

    ``probe``: the exact distance of each candidate's sample with the lowest grid estimate (from
    :func:`probe_lesion_canal`); only the samples whose estimate less the grid's band does not
    exceed it can hold the minimum."""
    lesion, approx, lowest = _refined_samples(ctx, tip, tip_dir)
    canal = ctx.zones.canal
    rows = np.arange(len(approx))
    values = np.full(approx.shape, np.inf)
    values[rows, lowest] = probe
    rest = approx - canal.band <= probe[:, None]
    rest[rows, lowest] = False
    values[rest] = canal.exact(lesion[rest])
    return lesion_canal_clearance(ctx, values.min(axis=1))


def blocking(ctx: SearchContext, names: list[str], stack: np.ndarray) -> list[str]:
    """Which constraint blocks: for each, the best it can do among candidates meeting all others."""
    words = {
        "bone": "depth of the instrument inside bone",
        "canal_instrument": "instrument clearance from the spinal canal",
        "endplate_instrument": "instrument clearance from the endplates beyond their margin",
        "exiting_root": "instrument clearance from the exiting nerve root corridor",
        "canal_lesion": f"lesion clearance from the spinal canal beyond its {ctx.canal_lesion_margin_mm:.0f} mm margin",
        "endplate_lesion": "lesion clearance from the endplates beyond their margin",
        "coverage": f"depth of the terminus inside the lesion beyond the {ctx.settings.coverage_margin_mm:.1f} mm coverage margin",
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
