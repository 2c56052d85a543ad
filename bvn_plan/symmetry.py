"""The mid-sagittal (left-right symmetry) plane of a vertebra surface.

A lumbar vertebra is close to mirror-symmetric about its mid-sagittal plane. The plane is found
from area-weighted surface samples: each principal plane of the samples is a starting guess,
refined by an iterative closest-point fit of the samples to their own mirror image; the candidate
with the smallest mirror residual wins. All coordinates are millimetres in model coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from .landmarks import Plane

#: Fraction of sample pairs kept in each refinement step (the rest are asymmetric parts such as
#: osteophytes or segmentation noise) [A: a trimmed fit, value chosen on the VHM meshes].
SYMMETRY_INLIER_FRACTION = 0.8
#: Refinement steps of the mirror fit.
SYMMETRY_ITERATIONS = 25
#: Starting normals tried (evenly spread over a hemisphere) and how many of the best are refined.
#: Principal axes alone are not enough: L5 is about as wide as it is deep.
SYMMETRY_START_DIRECTIONS = 64
SYMMETRY_REFINED_STARTS = 3


@dataclass
class SymmetryFit:
    """The fitted plane and its residual: median distance (mm) from mirrored samples to the surface."""

    plane: Plane
    residual_mm: float
    runner_up_residual_mm: float


def surface_samples(mesh: trimesh.Trimesh, count: int, seed: int = 0) -> np.ndarray:
    """``count`` area-weighted random points on ``mesh`` (mm, model coordinates).

    The fixed ``seed`` makes the samples move with the mesh under rigid motions and mirroring,
    so every finding built on them is pose-equivariant.
    """
    points, _ = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(points, dtype=float)


def hemisphere_directions(count: int) -> np.ndarray:
    """``count`` unit vectors spread evenly over the hemisphere z >= 0 (a Fibonacci lattice)."""
    i = np.arange(count) + 0.5
    z = 1.0 - i / count
    r = np.sqrt(1.0 - z * z)
    phi = np.pi * (3.0 - np.sqrt(5.0)) * i
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


def reflect(points: np.ndarray, plane: Plane) -> np.ndarray:
    """Mirror points (mm) through ``plane``."""
    d = plane.signed_distance(points)
    return points - 2.0 * d[:, None] * plane.normal


def _refine(points: np.ndarray, tree: cKDTree, target: np.ndarray, plane: Plane) -> tuple[Plane, float]:
    normal, point = plane.normal.copy(), plane.point.copy()
    for _ in range(SYMMETRY_ITERATIONS):
        mirrored = reflect(points, Plane(point, normal))
        dist, idx = tree.query(mirrored)
        keep = dist <= np.quantile(dist, SYMMETRY_INLIER_FRACTION)
        p, q = points[keep], target[idx[keep]]
        diff = p - q
        scatter = diff.T @ diff
        _, vecs = np.linalg.eigh(scatter)
        new_normal = vecs[:, -1] * np.sign(vecs[:, -1] @ normal or 1.0)
        new_point = ((p + q) / 2).mean(axis=0)
        new_point = point + ((new_point - point) @ new_normal) * new_normal
        converged = np.degrees(np.arccos(np.clip(new_normal @ normal, -1, 1))) < 0.01
        normal, point = new_normal, new_point
        if converged:
            break
    dist, _ = tree.query(reflect(points, Plane(point, normal)))
    return Plane(point, normal), float(np.median(dist))


def find_symmetry_plane(points: np.ndarray, target: np.ndarray | None = None) -> SymmetryFit:
    """Best mirror plane of ``points`` (mm, model coordinates).

    ``target``: a denser sample of the same surface that the mirrored points are matched to
    (defaults to ``points``). The plane's point is the centre of the samples projected onto it.
    """
    target = points if target is None else target
    tree = cKDTree(target)
    centre = points.mean(axis=0)
    starts = hemisphere_directions(SYMMETRY_START_DIRECTIONS)
    coarse = points[:: max(1, len(points) // 400)]
    scores = [np.median(tree.query(reflect(coarse, Plane(centre, n)))[0]) for n in starts]
    best: list[int] = []
    for i in np.argsort(scores):  # the best starts that are not near-duplicates of each other
        if all(abs(starts[i] @ starts[j]) < np.cos(np.radians(20)) for j in best):
            best.append(int(i))
        if len(best) == SYMMETRY_REFINED_STARTS:
            break
    fits = sorted((_refine(points, tree, target, Plane(centre, starts[i])) for i in best),
                  key=lambda fit: fit[1])
    plane, residual = fits[0]
    plane = Plane(centre - plane.signed_distance(centre[None])[0] * plane.normal, plane.normal)
    return SymmetryFit(plane, residual, fits[1][1])
