"""The planner's candidate paths per approach and side, sampled for screening (mm, model coordinates).

* curved transpedicular: introducer lines through the isthmus centre (and 4 offsets in its
  cross-section) at every (medial, cranio-caudal) angle of a grid, screened by depth in bone and
  canal clearance; the tangent cannula arc of the device radius from each line to each tip
  candidate in closed form (:class:`bvn_plan.paths.TangentArcs`), the most promising pairs
  preselected (:func:`bvn_plan.planning.preselect.preselect`);
* straight transpedicular: lines from each isthmus point aimed at each tip candidate;
* extrapedicular: introducer lines entering the lateral body wall inside the rule's window
  (:class:`bvn_plan.planning.approach.EntryWindows`: at the pedicle-body junction, lateral to the
  pedicle, along the grid's directions strictly inside the angle window) with no bone behind the
  entry, then the tangent cannula arc to each preselected tip as for the transpedicular route;
  straight lines through each tip candidate entering the window when no arc reaches the target.

Each returns :class:`~bvn_plan.planning.search.Candidates` and no reasons, or None and the reasons
in words why no candidate exists.
"""

from __future__ import annotations

import numpy as np

from ..paths import InstrumentPath, PathSamples, TangentArcs, arc_points
from .preselect import IntroducerLines, preselect
from .safety import SafetyZones
from .search import Candidates, SearchContext

#: The extrapedicular line search samples each line from its tip outward this many 2 mm steps at a
#: time until it leaves the bone (most leave within a few batches; the rest are not sampled further).
EXIT_SEARCH_STEPS = 8

#: Samples of a straight candidate: from the skin-side start to the bone entry, and from there to the tip.
APPROACH_SAMPLES, STRAIGHT_SAMPLES = 6, 40


def _straight_samples(ctx: SearchContext, entry: np.ndarray, D: np.ndarray, T: np.ndarray) -> PathSamples:
    """Samples of straight paths entering the bone at ``entry`` along ``D`` to tips ``T`` (mm)."""
    start = entry - ctx.settings.approach_mm * D
    a = np.linspace(0, 1, APPROACH_SAMPLES, endpoint=False)[None, :, None]
    b = np.linspace(0, 1, STRAIGHT_SAMPLES)[None, :, None]
    pts = np.concatenate([start[:, None] + a * (entry - start)[:, None], entry[:, None] + b * (T - entry)[:, None]], axis=1)
    return PathSamples.along(pts, ctx.radius_mm)


def pedicle_lines(ctx: SearchContext, side: str) -> IntroducerLines:
    """Introducer lines through the isthmus with their stage-1 score and bone entry (mm, model coordinates)."""
    s = ctx.settings
    points = ctx.isthmus_points(side)
    ma, ca = np.meshgrid(s.medial_angles_deg, s.craniocaudal_angles_deg, indexing="ij")
    dirs = ctx.local_dir(side, ma.ravel(), ca.ravel())
    P = np.repeat(points, len(dirs), axis=0)
    D = np.tile(dirs, (len(points), 1))
    t = np.arange(-50.0, 15.5, 1.0)
    pts = P[:, None, :] + t[None, :, None] * D[:, None, :]
    bone = ctx.zones.bone.approximate(pts.reshape(-1, 3)).reshape(pts.shape[:2])
    canal = ctx.zones.canal.approximate(pts.reshape(-1, 3)).reshape(pts.shape[:2])
    i0 = int(np.flatnonzero(t == 0)[0])
    outside_behind = bone[:, :i0] >= 0
    has_entry = outside_behind.any(axis=1) & (bone[:, i0] < 0)
    last_out = np.where(outside_behind.any(axis=1), i0 - 1 - np.argmax(outside_behind[:, ::-1], axis=1), -1)
    entry_t = t[np.clip(last_out + 1, 0, len(t) - 1)]
    idx = np.arange(len(t))[None, :]
    in_ped = (idx >= last_out[:, None] + 1) & (t[None, :] >= entry_t[:, None] + SafetyZones.ENTRY_ZONE_MM)
    depth = np.where(in_ped, -bone, np.inf).min(axis=1) - ctx.radius_mm
    canal_clear = np.where(t[None, :] >= entry_t[:, None] - s.approach_mm, canal, np.inf).min(axis=1) - ctx.radius_mm
    score = np.minimum(depth, canal_clear - ctx.margin("canal_instrument"))
    score = np.where(has_entry, score, -np.inf)
    return IntroducerLines(P, D, score, -entry_t)


def _transpedicular_samples(ctx: SearchContext, lines: IntroducerLines, arcs: TangentArcs, bend: np.ndarray,
                            tips: np.ndarray) -> PathSamples:
    """Sampled paths: skin start -> bone entry -> arc start -> arc to the tip (mm, model coords)."""
    P, D = lines.points, lines.directions
    entry = P - lines.entry_back[:, None] * D
    start = entry - ctx.settings.approach_mm * D
    B = arcs.arc_starts(P, D)
    a = np.linspace(0, 1, APPROACH_SAMPLES, endpoint=False)[None, :, None]
    approach = start[:, None] + a * (entry - start)[:, None]
    b = np.linspace(0, 1, 20, endpoint=False)[None, :, None]
    straight = entry[:, None] + b * (B - entry)[:, None]
    arc = arc_points(B, D, bend, arcs.arc_radius_mm, np.linspace(0, 1, 12)[None, :] * arcs.angle_rad[:, None])
    arc[:, -1] = tips
    return PathSamples.along(np.concatenate([approach, straight, arc], axis=1), ctx.radius_mm)


def curved_candidates(ctx: SearchContext, side: str) -> tuple[Candidates | None, list[str]]:
    """Straight introducer through the pedicle then the tangent cannula arc to each preselected tip."""
    lines = pedicle_lines(ctx, side)
    good = np.flatnonzero(lines.score > 0)
    if len(good) == 0:
        return None, [_pedicle_block(ctx, side, lines.score)]
    return _arc_candidates(ctx, side, lines.take(good), f"through the {side} pedicle", centred=True)


def _arc_candidates(ctx: SearchContext, side: str, lines: IntroducerLines, where: str,
                    centred: bool) -> tuple[Candidates | None, list[str]]:
    """The tangent cannula arcs from introducer ``lines`` (entering the bone ``where``, in words) to
    each preselected tip; ``centred``: rank by the pedicle passage's centring (transpedicular)."""
    s, dev = ctx.settings, ctx.device
    R = dev.cannula_radius_mm
    tips = ctx.tip_targets(side)
    pairs = preselect(ctx, side, lines, tips)
    if pairs is None:
        lo, hi = s.arc_start_past_wall_mm
        return None, [f"no cannula arc of radius {R:.0f} mm and at most {dev.cannula_max_arc_deg:.0f} deg that "
                      f"starts {lo:.0f}-{hi:.0f} mm past the posterior wall reaches the target zone from a line "
                      f"{where}"]
    li, ti = pairs
    # the chosen pairs' arcs in full: arc start B, bend direction n, sweep theta, tip direction
    lines = lines.take(li)
    P, D = lines.points, lines.directions
    arcs, bend = TangentArcs.to_tips(P, D, tips[ti], R)
    B = arcs.arc_starts(P, D)
    theta = arcs.angle_rad
    tip_dir = np.cos(theta)[:, None] * D + np.sin(theta)[:, None] * bend
    samples = _transpedicular_samples(ctx, lines, arcs, bend, tips[ti])
    angle = np.degrees(theta)

    def build(k: int) -> InstrumentPath:
        start = ctx.skin_start(P[k], D[k], -lines.entry_back[k])
        return InstrumentPath.straight_then_arc(start, B[k], bend[k], R, float(angle[k]), ctx.radius_mm, R)
    return Candidates(samples, np.full(len(P), APPROACH_SAMPLES), tips[ti], tip_dir, build, P + 10 * D,
                      ctx.centring(side, P, D) if centred else np.zeros(len(P))), []


def straight_candidates(ctx: SearchContext, side: str) -> tuple[Candidates | None, list[str]]:
    """The straight introducer aimed from each isthmus point straight at each tip candidate."""
    points = ctx.isthmus_points(side)
    tips = ctx.tip_targets(side)
    Pp = np.repeat(points, len(tips), axis=0)
    T = np.tile(tips, (len(points), 1))
    Dd = (T - Pp) / np.linalg.norm(T - Pp, axis=1)[:, None]
    t = np.arange(-50.0, 0.5, 1.0)
    line = Pp[:, None, :] + t[None, :, None] * Dd[:, None, :]
    bone = ctx.zones.bone.approximate(line.reshape(-1, 3)).reshape(line.shape[:2])
    outside = bone >= 0
    ok = outside.any(axis=1) & (bone[:, -1] < 0)
    if not ok.any():
        return None, [f"no straight line from the {side} pedicle isthmus to the target zone has a bone entry "
                      "within 50 mm behind the isthmus"]
    last_out = len(t) - 1 - np.argmax(outside[:, ::-1], axis=1)
    entry_back = -t[np.clip(last_out + 1, 0, len(t) - 1)]
    Pp, T, Dd, entry_back = Pp[ok], T[ok], Dd[ok], entry_back[ok]
    entry = Pp - entry_back[:, None] * Dd
    keep = np.linalg.norm(T - entry, axis=1) <= ctx.device.introducer_max_depth_mm
    if not keep.any():
        return None, [f"every straight path from the {side} pedicle to the target zone is longer than the "
                      f"introducer's {ctx.device.introducer_max_depth_mm:.0f} mm"]
    idx = np.flatnonzero(keep)
    Pp, T, Dd, entry_back, entry = Pp[idx], T[idx], Dd[idx], entry_back[idx], entry[idx]

    def build(k: int) -> InstrumentPath:
        return InstrumentPath.straight(ctx.skin_start(Pp[k], Dd[k], -entry_back[k]), T[k], ctx.radius_mm)
    return Candidates(_straight_samples(ctx, entry, Dd, T), np.full(len(idx), APPROACH_SAMPLES), T, Dd, build,
                      Pp + 10 * Dd, ctx.centring(side, Pp, Dd)), []


def _pedicle_block(ctx: SearchContext, side: str, score1: np.ndarray) -> str:
    ped = ctx.lm.pedicles[side]
    best = float(np.max(score1)) if np.isfinite(score1).any() else float("nan")
    return (f"no introducer line through the {side} pedicle (isthmus {ped.isthmus_width_mm:.1f} x "
            f"{ped.isthmus_height_mm:.1f} mm) keeps the {ctx.device.introducer_diameter_mm:.1f} mm introducer in bone "
            f"and out of the canal: best depth in bone beyond the introducer radius {best:.1f} mm")


def _extrapedicular_directions(ctx: SearchContext, side: str) -> tuple[np.ndarray | None, list[str]]:
    """The grid's extrapedicular directions strictly inside the rule's window (model coordinates)."""
    s = ctx.settings
    ma, ca = np.meshgrid(s.extrapedicular_medial_angles_deg, s.extrapedicular_craniocaudal_angles_deg, indexing="ij")
    windows = ctx.zones.approach.windows
    inside = windows.angles_inside(ma, ca, strict=True)
    if not inside.any():
        return None, [f"no extrapedicular direction of the search grid lies strictly inside the window "
                      f"{windows.extrapedicular_medial_deg} deg medial, {windows.extrapedicular_craniocaudal_deg} deg "
                      "cranio-caudal"]
    return ctx.local_dir(side, ma[inside], ca[inside]), []


def extrapedicular_candidates(ctx: SearchContext, side: str) -> tuple[Candidates | None, list[str]]:
    """The curved cannula from introducers entering the extrapedicular window (as the device's
    extrapedicular route, FDA K213836); when no arc reaches the target zone, straight lines
    through each tip candidate entering the window."""
    dirs, blocked = _extrapedicular_directions(ctx, side)
    if dirs is None:
        return None, blocked
    lines = extrapedicular_lines(ctx, side, dirs)
    good = np.flatnonzero(lines.score > 0)
    why = [f"no introducer line entering the {side} extrapedicular window keeps the introducer in bone past its "
           "entry with no bone behind it"]
    if len(good):
        curved, why = _arc_candidates(ctx, side, lines.take(good), f"entering the {side} extrapedicular window",
                                      centred=False)
        if curved is not None:
            return curved, []
    straight, why_straight = _straight_extrapedicular(ctx, side, dirs)
    return (straight, []) if straight is not None else (None, why + why_straight)


def extrapedicular_lines(ctx: SearchContext, side: str, dirs: np.ndarray) -> IntroducerLines:
    """Introducer lines entering the lateral body wall inside the extrapedicular window along each
    of ``dirs`` (model coordinates), from entry points on a 2 mm lattice of the window's surface,
    with their stage-1 score (depth in bone past the entry and canal clearance beyond the radius and
    margin; -inf with bone within ``clear_behind_entry_mm`` behind the entry) (mm)."""
    s, frame, zones = ctx.settings, ctx.frame, ctx.zones
    window = zones.mesh.triangles_center[zones.approach.window_faces(zones.mesh, side)]
    cells = np.round(frame.to_local(window)[:, 1:] / 2.0)   # a 2 mm lattice (anterior, superior)
    _, first = np.unique(cells, axis=0, return_index=True)
    entries = window[np.sort(first)]
    E = np.repeat(entries, len(dirs), axis=0)
    D = np.tile(dirs, (len(entries), 1))
    ahead = np.arange(SafetyZones.ENTRY_ZONE_MM, 16.0, 2.0)
    behind = np.arange(2.0, s.clear_behind_entry_mm + 0.1, 2.0)
    t = np.concatenate([-behind[::-1], ahead])
    pts = E[:, None, :] + t[None, :, None] * D[:, None, :]
    bone = zones.bone.approximate(pts.reshape(-1, 3)).reshape(pts.shape[:2])
    canal = zones.canal.approximate(pts.reshape(-1, 3)).reshape(pts.shape[:2])
    clear_behind = (bone[:, :len(behind)] >= 0).all(axis=1)
    depth = (-bone[:, len(behind):]).min(axis=1) - ctx.radius_mm
    score = np.minimum(depth, canal.min(axis=1) - ctx.radius_mm - ctx.margin("canal_instrument"))
    back = 3.0  # the line's point lies this far past its entry, inside the bone
    return IntroducerLines(E + back * D, D, np.where(clear_behind, score, -np.inf), np.full(len(E), back))


def _straight_extrapedicular(ctx: SearchContext, side: str, dirs: np.ndarray) -> tuple[Candidates | None, list[str]]:
    """Straight lines along ``dirs`` through each tip candidate entering the lateral body wall in the window."""
    s = ctx.settings
    windows = ctx.zones.approach.windows
    tips = ctx.tip_targets(side, even_only=True)
    T = np.repeat(tips, len(dirs), axis=0)
    D = np.tile(dirs, (len(tips), 1))
    idx, entry, entry_t = _extrapedicular_entries(ctx, side, T, D)
    if len(idx) == 0:
        lo, hi = windows.extrapedicular_entry_mm
        return None, [f"no straight line to the target zone enters the {side} lateral body wall {lo:.0f} to "
                      f"{hi:.0f} mm from the pedicle-body junction with {s.clear_behind_entry_mm:.0f} mm free of "
                      "bone behind its entry"]
    T, D, entry, entry_t = T[idx], D[idx], entry[idx], entry_t[idx]

    def build(k: int) -> InstrumentPath:
        return InstrumentPath.straight(ctx.skin_start(T[k], D[k], -entry_t[k]), T[k], ctx.radius_mm)
    return Candidates(_straight_samples(ctx, entry, D, T), np.full(len(T), APPROACH_SAMPLES), T, D, build, entry,
                      np.zeros(len(T))), []


def _extrapedicular_entries(ctx: SearchContext, side: str, T: np.ndarray,
                            D: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which lines ``T - t D`` (tips T, unit directions D; mm) qualify, with every line's bone entry
    point and its distance t from the tip: the lines leave the bone in the entry window anterior of
    the pedicle-body junction, through the lateral cortex, with no bone within
    ``clear_behind_entry_mm`` behind the entry."""
    s = ctx.settings
    ped = ctx.lm.pedicles[side]
    t = np.arange(0.0, 90.0, 2.0)

    def outside(lines: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Whether the samples T - t D of these lines at these steps of t (indices, per line or
        shared) lie outside bone."""
        pts = T[lines, None, :] - t[steps][..., None] * D[lines, None, :]
        return ctx.zones.bone.approximate(pts.reshape(-1, 3)).reshape(pts.shape[:2]) >= 0
    lo, hi = ctx.zones.approach.windows.extrapedicular_entry_mm
    # the entry T - t D lies (T - junction).a - t (D.a) anterior of the pedicle-body junction: past
    # t_last it cannot lie in the window
    forward = D @ ctx.frame.anterior
    ahead_of_junction = (T - ped.body_junction) @ ctx.frame.anterior
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
    past = (entry - ped.body_junction) @ ctx.frame.anterior
    ok &= (past >= lo) & (past <= hi)
    idx = np.flatnonzero(ok)
    if len(idx):
        idx = idx[ctx.zones.nearest_region(entry[idx]) == "lateral_cortex"]
    if len(idx):
        # no bone within clear_behind_entry_mm behind the entry: the samples after the first one outside
        ahead = first_out[idx, None] + np.arange(1, int(np.ceil(s.clear_behind_entry_mm / (t[1] - t[0]))) + 1)
        steps = np.minimum(ahead, len(t) - 1)
        behind = (ahead < len(t)) & (t[steps] <= entry_t[idx, None] + s.clear_behind_entry_mm)
        idx = idx[~np.any(behind & ~outside(idx, steps), axis=1)]
    return idx, entry, entry_t
