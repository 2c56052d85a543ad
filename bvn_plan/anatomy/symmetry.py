"""The mid-sagittal (left-right symmetry) plane of a vertebra surface.

A lumbar vertebra is close to mirror-symmetric about its mid-sagittal plane. The plane is found
from area-weighted surface samples: the best-scoring of many trial planes through the sample
centre are refined by a point-to-plane fit of the mirrored samples to the surface; the candidate
with the smallest mirror residual wins. All coordinates are millimetres in model coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from ..geometry.vectors import perpendicular_basis
from ..landmarks import Plane

#: Fraction of sample pairs kept in each Gauss-Newton step (the rest are asymmetric parts such as
#: osteophytes or segmentation noise) [A: a trimmed fit, value chosen on the VHM meshes].
SYMMETRY_INLIER_FRACTION = 0.8
#: Gauss-Newton steps for each trial start, and at most for the winner.
SYMMETRY_TRIAL_ITERATIONS = 6
SYMMETRY_ITERATIONS = 30
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


def surface_samples(mesh: trimesh.Trimesh, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` area-weighted random points on ``mesh`` and their face normals (mm, model coordinates).

    The fixed ``seed`` and a winding-independent vertex order in each face make the samples move
    with the mesh under rigid motions and mirroring (which flips the winding), so every finding
    built on them is pose-equivariant.
    """
    unwound = trimesh.Trimesh(mesh.vertices, np.sort(mesh.faces, axis=1), process=False)
    points, face_index = trimesh.sample.sample_surface(unwound, count, seed=seed)
    return np.asarray(points, dtype=float), mesh.face_normals[face_index]


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


def _refine(points: np.ndarray, tree: cKDTree, target: np.ndarray, target_normals: np.ndarray,
            plane: Plane, iterations: int) -> tuple[Plane, float]:
    """Gauss-Newton on point-to-plane distances between the mirrored samples and the surface
    (nearest target sample and its normal), trimmed to SYMMETRY_INLIER_FRACTION, re-matched each step."""
    centre = plane.point
    rel = points - centre
    normal, offset = plane.normal.copy(), 0.0
    for _ in range(iterations):
        side = rel @ normal - offset
        mirrored = rel - 2.0 * side[:, None] * normal
        dist, idx = tree.query(mirrored + centre)
        keep = dist <= np.quantile(dist, SYMMETRY_INLIER_FRACTION)
        m = target_normals[idx[keep]]
        r = np.einsum("ij,ij->i", mirrored[keep] + centre - target[idx[keep]], m)
        u, v = perpendicular_basis(normal)
        nm = m @ normal
        jac = np.column_stack([
            -2.0 * (rel[keep] @ u) * nm - 2.0 * side[keep] * (m @ u),
            -2.0 * (rel[keep] @ v) * nm - 2.0 * side[keep] * (m @ v),
            2.0 * nm,
        ])
        step, *_ = np.linalg.lstsq(jac, -r, rcond=None)
        step[:2] = np.clip(step[:2], -0.1, 0.1)  # at most ~6 degrees per step
        normal = normal + step[0] * u + step[1] * v
        normal /= np.linalg.norm(normal)
        offset += step[2]
        if np.abs(step[:2]).max() < 1e-5 and abs(step[2]) < 1e-3:
            break
    fitted = Plane(centre + offset * normal, normal)
    dist, _ = tree.query(reflect(points, fitted))
    return fitted, float(np.median(dist))


def find_symmetry_plane(points: np.ndarray, target: np.ndarray, target_normals: np.ndarray) -> SymmetryFit:
    """Best mirror plane of ``points`` (mm, model coordinates).

    ``target`` / ``target_normals``: a denser sample of the same surface and its unit normals,
    which the mirrored points are matched to. The plane's point is the centre of ``points``
    projected onto it.
    """
    tree = cKDTree(target)
    centre = points.mean(axis=0)
    starts = hemisphere_directions(SYMMETRY_START_DIRECTIONS)
    coarse = points[:: max(1, len(points) // 200)] - centre
    mirrored = coarse[None] - 2.0 * (coarse @ starts.T).T[:, :, None] * starts[:, None, :]
    scores = np.median(tree.query((mirrored + centre).reshape(-1, 3))[0].reshape(len(starts), -1), axis=1)
    best: list[int] = []
    for i in np.argsort(scores):  # the best starts that are not near-duplicates of each other
        if all(abs(starts[i] @ starts[j]) < np.cos(np.radians(20)) for j in best):
            best.append(int(i))
        if len(best) == SYMMETRY_REFINED_STARTS:
            break
    fits = sorted((_refine(points, tree, target, target_normals, Plane(centre, starts[i]), SYMMETRY_TRIAL_ITERATIONS)
                   for i in best), key=lambda fit: fit[1])
    plane, residual = _refine(points, tree, target, target_normals, fits[0][0], SYMMETRY_ITERATIONS)
    plane = Plane(centre - plane.signed_distance(centre[None])[0] * plane.normal, plane.normal)
    return SymmetryFit(plane, residual, fits[1][1])
