"""Solid voxel grids of closed surfaces, by ray parity along the grid's z axis (vectorised numpy).
Their masks become surfaces by :func:`bvn_plan.geometry.meshing.mask_surface` with :attr:`VoxelGrid.affine`.

Grids are axis-aligned in whatever coordinates the vertices are given in (bvn-plan uses the
vertebra frame: x right, y anterior, z superior, mm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Sub-voxel shift of the sampling lattice so that rays rarely pass exactly through mesh
#: vertices or edges (which would count a crossing twice).
_JITTER = 0.0137


def grid_cover(points: np.ndarray, spacing: float, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Origin (first node, mm) and shape of the grid of ``spacing`` mm over the points' bounds plus
    ``margin`` mm, its corner jittered by a fraction of a voxel: grids of one spacing over one box coincide."""
    origin = points.min(axis=0) - margin + _JITTER * spacing
    return origin, np.ceil((points.max(axis=0) + margin - origin) / spacing).astype(int) + 1


@dataclass
class VoxelGrid:
    """Boolean occupancy ``solid[i, j, k]`` of the voxel centred at ``origin + (i, j, k) * spacing`` (mm)."""

    solid: np.ndarray
    origin: np.ndarray
    spacing: float

    def centres(self, index: np.ndarray) -> np.ndarray:
        """Coordinates (mm) of voxel centres from integer indices of shape (..., 3)."""
        return self.origin + np.asarray(index, dtype=float) * self.spacing

    def index(self, points: np.ndarray) -> np.ndarray:
        """Nearest voxel indices (possibly outside the grid) of points (mm)."""
        return np.rint((np.asarray(points, dtype=float) - self.origin) / self.spacing).astype(int)

    @property
    def affine(self) -> np.ndarray:
        """Voxel index -> coordinates (mm) as a 4x4 matrix."""
        affine = np.diag([self.spacing, self.spacing, self.spacing, 1.0])
        affine[:3, 3] = self.origin
        return affine

    def axis_coordinates(self, axis: int) -> np.ndarray:
        """Voxel-centre coordinates (mm) along one grid axis."""
        return self.origin[axis] + np.arange(self.solid.shape[axis]) * self.spacing


def voxelize(vertices: np.ndarray, faces: np.ndarray, spacing: float, margin: float = 2.0,
             origin: np.ndarray | None = None, shape: tuple | None = None) -> VoxelGrid:
    """Solid occupancy of the closed surface ``(vertices, faces)`` on a grid of ``spacing`` mm.

    The grid covers the surface's bounds plus ``margin`` (its corner jittered by a fraction of a
    voxel), unless ``origin`` (first voxel centre, mm) and ``shape`` are given. A voxel is inside
    when a ray from it towards -z crosses the surface an odd number of times. The surface should
    be watertight; small defects give isolated wrong columns only.
    """
    vertices = np.asarray(vertices, dtype=float)
    if origin is None:
        lo, shape = grid_cover(vertices, spacing, margin)
    else:
        lo = np.asarray(origin, dtype=float)
        shape = np.asarray(shape, dtype=int)
    tri = (vertices[faces] - lo) / spacing  # triangle corners in voxel units
    xy = tri[:, :, :2]
    imin = np.clip(np.ceil(xy.min(axis=1)).astype(int), 0, None)
    imax = np.minimum(np.floor(xy.max(axis=1)).astype(int), shape[:2] - 1)
    counts = np.clip(imax - imin + 1, 0, None)
    per_tri = counts[:, 0] * counts[:, 1]
    t = np.repeat(np.arange(len(tri)), per_tri)
    k = np.arange(len(t)) - np.repeat(np.cumsum(per_tri) - per_tri, per_tri)
    ix = imin[t, 0] + k // counts[t, 1]
    iy = imin[t, 1] + k % counts[t, 1]
    a, b, c = tri[t, 0], tri[t, 1], tri[t, 2]
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        w1 = ((ix - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (iy - a[:, 1])) / det
        w2 = ((b[:, 0] - a[:, 0]) * (iy - a[:, 1]) - (ix - a[:, 0]) * (b[:, 1] - a[:, 1])) / det
        hit = (np.abs(det) > 1e-12) & (w1 >= 0) & (w2 >= 0) & (w1 + w2 <= 1)
    z = a[hit, 2] + w1[hit] * (b[hit, 2] - a[hit, 2]) + w2[hit] * (c[hit, 2] - a[hit, 2])
    iz = np.clip(np.ceil(z).astype(int), 0, shape[2] - 1)
    flat = np.ravel_multi_index((ix[hit], iy[hit], iz), tuple(shape))
    flips = np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)
    solid = (np.cumsum(flips, axis=2, dtype=np.int32) % 2).astype(bool)
    return VoxelGrid(solid, lo, float(spacing))
