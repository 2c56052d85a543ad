"""Checks of the BVN target zone made without the planner's search: the exact canal clearance of
points (trimesh), the zone's coverage by Monte Carlo, and a brute-force search for a lesion that
keeps the canal margin and reaches the zone (tips on a 1 mm grid, directions every 5 deg).

The brute force proves a refusal by exhaustion on its grid: every (tip, direction) is discarded only
on a bound that shows its lesion breaks the canal margin or cannot hold a zone point by the coverage
margin, and whatever survives the bounds is judged exactly (trimesh distances, the spheroid's exact
depth). Bounds: the canal surface sampled densely gives distances at least the true ones (an upper
bound of every clearance); on a 0.5 mm lattice, the distance function being 1-Lipschitz, a lattice
node's value plus the distance to it bounds a point's from above (canal) and minus it from below
(nearest zone point); a spheroid holds the ball of its smaller semi-axis about its centre and the
segment of its major axis; a point of ellipsoidal radius rho lies at most (1 - rho) x the larger
semi-axis inside; a lesion that keeps the margin holds no zone point nearer the canal than the
margin (exact distances).
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from bvn_plan.lesion import EllipsoidLesion

#: Brute-force grids: tip spacing (mm) and direction step (deg), as issue 18 asks.
TIP_STEP_MM, DIRECTION_STEP_DEG = 1.0, 5.0
#: Lattice of the distance bounds (mm) and the canal surface samples behind them.
LATTICE_MM, CANAL_SAMPLES = 0.6, 30000
PAIR_CHUNK = 400_000


def canal_clearance(canal: trimesh.Trimesh, points: np.ndarray) -> float:
    """Smallest signed distance (mm) from points to the canal surface, negative inside (trimesh,
    exact), computed for the points that a vertex search cannot rule out."""
    near_vertex = cKDTree(canal.vertices).query(points)[0]
    longest_edge = canal.edges_unique_length.max()
    candidates = points[near_vertex <= near_vertex.min() + longest_edge]
    _, dist, _ = trimesh.proximity.closest_point(canal, candidates)
    return float(np.where(canal.contains(candidates), -dist, dist).min())


def canal_distances(canal: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Signed distance (mm) of each point to the canal surface, negative inside (trimesh, exact)."""
    _, dist, _ = trimesh.proximity.closest_point(canal, points)
    return np.where(canal.contains(points), -dist, dist)


def monte_carlo_zone_coverage(landmarks, parameters, lesion, samples: int = 20000, seed: int = 0) -> float:
    """Share of the target zone's volume inside ``lesion``, from uniform random points of the zone
    built here from its definition (vertebra frame: midline half-width, depth fractions of the
    mid-sagittal body depth forward of the foramen, height fractions between the endplate planes),
    each weighed by its local body height."""
    lm, frame = landmarks, landmarks.frame
    rng = np.random.default_rng(seed)
    depth = lm.morphometry["body_depth_mm"]
    lo, hi = parameters.s1_depth_fractions if lm.level == "S1" else parameters.depth_fractions
    wall_y, mid_x = frame.to_local(lm.basivertebral_foramen)[1], frame.to_local(lm.bvn_terminus)[0]
    x = mid_x + rng.uniform(-parameters.half_width_mm, parameters.half_width_mm, samples)
    y = wall_y + depth * rng.uniform(lo, hi, samples)
    base = frame.to_model(np.stack([x, y, np.zeros(samples)], axis=1))
    up = frame.superior
    t_inf = -lm.inferior_endplate.signed_distance(base) / (up @ lm.inferior_endplate.normal)
    t_sup = -lm.superior_endplate.signed_distance(base) / (up @ lm.superior_endplate.normal)
    f = rng.uniform(*parameters.height_fractions, samples)
    points = base + (t_inf + f * (t_sup - t_inf))[:, None] * up
    weight = t_sup - t_inf
    return float((lesion.contains(points) * weight).sum() / weight.sum())


def directions(step_deg: float = DIRECTION_STEP_DEG) -> np.ndarray:
    """Unit directions on a latitude-longitude grid of ``step_deg`` (each pole once)."""
    polar = np.radians(np.arange(0.0, 180.0 + 1e-9, step_deg))
    azimuth = np.radians(np.arange(0.0, 360.0 - 1e-9, step_deg))
    p, a = (g.ravel() for g in np.meshgrid(polar, azimuth, indexing="ij"))
    d = np.stack([np.sin(p) * np.cos(a), np.sin(p) * np.sin(a), np.cos(p)], axis=1)
    return np.unique(np.round(d, 12), axis=0)


class _Lattice:
    """Distance bounds on a regular lattice of LATTICE_MM over a box (mm, model coordinates)."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, canal_tree: cKDTree, zone_tree: cKDTree):
        self.lo = lo
        self.shape = np.ceil((hi - lo) / LATTICE_MM).astype(int) + 1
        axes = [lo[i] + LATTICE_MM * np.arange(self.shape[i]) for i in range(3)]
        nodes = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        self.canal = canal_tree.query(nodes)[0]       # >= the true (unsigned) distance
        self.zone = zone_tree.query(nodes)[0]         # exact distance to the nearest zone point
        self.nodes = nodes

    def _node(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each point's nearest lattice node (flat index; clipped to the lattice) and its distance (mm)."""
        q = (points - self.lo) / LATTICE_MM
        idx = np.clip(np.rint(q), 0, self.shape - 1)
        gap = LATTICE_MM * np.sqrt(((q - idx) ** 2).sum(axis=-1))
        idx = idx.astype(np.int64)
        return (idx[..., 0] * self.shape[1] + idx[..., 1]) * self.shape[2] + idx[..., 2], gap

    def canal_upper(self, points: np.ndarray) -> np.ndarray:
        """An upper bound of each point's canal distance (mm)."""
        flat, gap = self._node(points)
        return self.canal[flat] + gap

    def zone_lower(self, points: np.ndarray) -> np.ndarray:
        """A lower bound of each point's distance to the nearest zone point (mm)."""
        flat, gap = self._node(points)
        return self.zone[flat] - gap


def brute_force_reach(landmarks, zone_points: np.ndarray, device, canal_margin_mm: float,
                      coverage_margin_mm: float) -> dict | None:
    """A lesion of ``device`` (tip on a 1 mm grid, direction every 5 deg) that keeps
    ``canal_margin_mm`` from the canal and holds a zone point ``coverage_margin_mm`` deep, with its
    numbers, or None when none exists on the grids."""
    canal = landmarks.canal_mesh
    h, offset = device.lesion_length_mm / 2, device.lesion_offset_mm
    r = min(h, device.lesion_diameter_mm / 2)    # the ball about the centre the spheroid holds
    h = max(h, device.lesion_diameter_mm / 2)    # no lesion point lies farther from the centre
    m, c = canal_margin_mm, coverage_margin_mm
    # a lesion keeping the margin holds no point nearer the canal than the margin: only the zone's
    # points at least that far (exact distances) can be reached
    zone_points = zone_points[canal_distances(canal, zone_points) >= m]
    if not len(zone_points):
        return None
    samples = np.vstack([canal.vertices, trimesh.sample.sample_surface(canal, CANAL_SAMPLES, seed=1)[0]])
    canal_tree, zone_tree = cKDTree(samples), cKDTree(zone_points)
    reach = h - c + offset                       # a tip farther than this from every zone point cannot reach one
    lo, hi = zone_points.min(axis=0) - reach - h - 1, zone_points.max(axis=0) + reach + h + 1
    lattice = _Lattice(lo, hi, canal_tree, zone_tree)
    axes = [np.arange(zone_points.min(axis=0)[i] - reach, zone_points.max(axis=0)[i] + reach + 1e-9, TIP_STEP_MM)
            for i in range(3)]
    tips = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    # every direction's centre lies `offset` behind the tip: the ball of radius r about it keeps the margin
    tips = tips[(lattice.canal_upper(tips) >= m + r - offset) & (lattice.zone_lower(tips) <= reach)]
    # nearest the zone point farthest from the canal first: where a lesion that reaches is likeliest
    deepest = zone_points[np.argmax(canal_tree.query(zone_points)[0])]
    tips = tips[np.argsort(np.linalg.norm(tips - deepest, axis=1), kind="stable")]
    dirs = directions()
    coarse, ball = (trimesh.creation.icosphere(subdivisions=n).vertices for n in (0, 2))
    for start in range(0, len(tips) * len(dirs), PAIR_CHUNK):
        k = np.arange(start, min(start + PAIR_CHUNK, len(tips) * len(dirs)))
        T, D = tips[k // len(dirs)], dirs[k % len(dirs)]
        C = T - offset * D
        keep = (lattice.canal_upper(C) >= m + r) & (lattice.zone_lower(C) <= h - c)
        T, D, C = T[keep], D[keep], C[keep]
        keep = (lattice.canal_upper(C + h * D) >= m) & (lattice.canal_upper(C - h * D) >= m)
        T, D, C = T[keep], D[keep], C[keep]
        keep = lattice.canal_upper(_spheroid_points(C, D, (h, r), coarse)).min(axis=1) >= m
        T, D, C = T[keep], D[keep], C[keep]
        found = _survivors(landmarks, zone_points, device, (lattice, canal_tree), (T, D, C), (m, c), ball)
        if found is not None:
            return found
    return None


def _spheroid_points(centres: np.ndarray, axes: np.ndarray, semi_axes: tuple[float, float],
                     sphere: np.ndarray) -> np.ndarray:
    """(N, K, 3) points of each spheroid's surface (semi-axes along, across; mm): the unit-sphere
    points ``sphere`` stretched along each unit axis."""
    h, r = semi_axes
    e1 = np.cross(axes, np.where(np.abs(axes[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]]))
    e1 /= np.linalg.norm(e1, axis=1)[:, None]
    basis = np.stack([r * e1, r * np.cross(axes, e1), h * axes], axis=1)     # (N, 3, 3): rows map x, y, z
    return centres[:, None, :] + sphere[None] @ basis


def _survivors(landmarks, zone_points, device, bounds, pairs, margins, ball) -> dict | None:
    """The pairs left by the cheap bounds: the zone-depth bound, the lesion-surface bound on the
    lattice, then on the canal samples themselves, then exact."""
    lattice, canal_tree = bounds
    T, D, C = pairs
    m, c = margins
    h, r = device.lesion_length_mm / 2, device.lesion_diameter_mm / 2
    for s in range(0, len(T), 2000):
        t, d, ctr = T[s:s + 2000], D[s:s + 2000], C[s:s + 2000]
        rel = zone_points[None, :, :] - ctr[:, None, :]
        along = np.einsum("nkj,nj->nk", rel, d)
        across2 = np.maximum(np.einsum("nkj,nkj->nk", rel, rel) - along ** 2, 0)
        rho = np.sqrt(along ** 2 / h ** 2 + across2 / r ** 2)
        ok = ((1 - rho) * max(h, r) >= c).any(axis=1)
        t, d, ctr = t[ok], d[ok], ctr[ok]
        if not len(t):
            continue
        surface = _spheroid_points(ctr, d, (h, r), ball)
        ok = lattice.canal_upper(surface).min(axis=1) >= m
        t, d, surface = t[ok], d[ok], surface[ok]
        if not len(t):
            continue
        ok = canal_tree.query(surface.reshape(-1, 3))[0].reshape(surface.shape[:2]).min(axis=1) >= m
        for tip, direction in zip(t[ok], d[ok]):
            lesion = EllipsoidLesion.from_probe(tip, direction, device)
            depth = float(-lesion.signed_distance(zone_points).min())
            if depth < c:
                continue
            clearance = canal_clearance(landmarks.canal_mesh, lesion.surface_mesh(subdivisions=4).vertices)
            if clearance >= m:
                return {"tip": tip, "direction": direction, "canal_clearance_mm": clearance, "zone_depth_mm": depth}
    return None
