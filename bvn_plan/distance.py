"""Fast exact distances from points to vertebra surfaces (mm, model coordinates).

A coarse signed-distance grid (voxelised mesh + Euclidean distance transform) answers most
queries; points near a surface, and the candidates for a minimum, are re-evaluated exactly with
VTK's implicit polydata distance (exact point-to-triangle distance). This keeps one trajectory
check in the millisecond range while the reported minimum is the exact mesh distance.
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy import ndimage
from scipy.spatial import cKDTree

from .errors import InputError
from .voxelize import voxelize

#: Grid spacing (mm) of the coarse signed-distance field.
GRID_PITCH_MM = 1.0


def _vtk_distance(mesh: trimesh.Trimesh):
    import pyvista as pv
    import vtk

    implicit = vtk.vtkImplicitPolyDataDistance()
    implicit.SetInput(pv.wrap(mesh))
    return implicit


def _exact(implicit, points: np.ndarray) -> np.ndarray:
    from vtk.util.numpy_support import numpy_to_vtk, vtk_to_numpy
    import vtk

    points = np.ascontiguousarray(points, dtype=float)
    if len(points) == 0:
        return np.zeros(0)
    out = vtk.vtkDoubleArray()
    out.SetNumberOfTuples(len(points))
    implicit.FunctionValue(numpy_to_vtk(points, deep=True), out)
    return vtk_to_numpy(out).copy()


class SignedDistance:
    """Signed distance (mm) to a closed surface: negative inside, positive outside."""

    def __init__(self, mesh: trimesh.Trimesh, pitch: float = GRID_PITCH_MM, name: str = "surface"):
        if not mesh.is_watertight:
            raise InputError(f"the {name} surface is not closed; a signed distance needs a watertight mesh")
        self.mesh = mesh
        self.name = name
        self.pitch = float(pitch)
        self._implicit = _vtk_distance(mesh)
        grid = voxelize(mesh.vertices, mesh.faces, self.pitch, margin=4 * self.pitch)
        self.origin, inside = grid.origin, grid.solid
        outside_d = ndimage.distance_transform_edt(~inside)
        inside_d = ndimage.distance_transform_edt(inside)
        # voxel centres: the surface lies between inside and outside voxels
        self.grid = (np.where(inside, -(inside_d - 0.5), outside_d - 0.5) * self.pitch).astype(np.float32)
        #: the grid's worst-case error, beyond which a value's sign is trusted without refinement
        self.band = 2.0 * self.pitch

    def approximate(self, points: np.ndarray) -> np.ndarray:
        """Grid estimate: error below ``band`` inside the grid (the mesh's bounds plus 4 pitches);
        beyond it the value at the nearest grid point plus the distance to the grid, which can
        overestimate by up to that distance. ``minimum`` and ``__call__`` refine near values exactly."""
        idx = (np.asarray(points, float) - self.origin) / self.pitch
        values = ndimage.map_coordinates(self.grid, idx.T, order=1, mode="nearest")
        upper = np.array(self.grid.shape) - 1
        overshoot = np.linalg.norm(np.clip(idx - np.clip(idx, 0, upper), None, None), axis=1) * self.pitch
        return values + overshoot

    def exact(self, points: np.ndarray) -> np.ndarray:
        """Exact signed distance to the triangles (sign from VTK's pseudo-normals)."""
        return _exact(self._implicit, points)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Signed distance: exact within ``band`` of the surface, the grid value elsewhere."""
        values = self.approximate(points)
        near = np.abs(values) < self.band
        if near.any():
            values[near] = self.exact(np.asarray(points, float)[near])
        return values

    def minimum(self, points: np.ndarray, offset: np.ndarray | float = 0.0, sign: float = 1.0) -> tuple[float, int]:
        """Exact minimum over ``points`` of (sign * signed distance - offset) and its index.

        ``sign=-1`` measures depth inside the surface (e.g. how deep in bone a path stays)."""
        approx = sign * self.approximate(points) - offset
        candidates = np.flatnonzero(approx <= approx.min() + 2 * self.band)
        exact = sign * self.exact(np.asarray(points, float)[candidates]) - np.broadcast_to(offset, approx.shape)[candidates]
        best = int(np.argmin(exact))
        return float(exact[best]), int(candidates[best])


class SurfaceDistance:
    """Unsigned distance (mm) to a surface patch (e.g. an endplate's faces), which may be open."""

    def __init__(self, mesh: trimesh.Trimesh, spacing: float = 1.0):
        self.mesh = mesh
        samples, _ = trimesh.sample.sample_surface_even(mesh, max(200, int(mesh.area / spacing**2)), seed=0)
        samples = np.vstack([samples, mesh.vertices])
        self._tree = cKDTree(samples)
        # every surface point lies within this distance of a sample
        self.slack = float(max(spacing, mesh.edges_unique_length.max() / 2 if len(mesh.edges_unique) else spacing))
        self._implicit = _vtk_distance(mesh)

    def minimum(self, points: np.ndarray, offset: np.ndarray | float = 0.0) -> tuple[float, int]:
        """Exact minimum over ``points`` of (distance - offset) and its index."""
        points = np.asarray(points, float)
        offset = np.broadcast_to(np.asarray(offset, float), (len(points),))
        # a few points bound the answer, so the full query can stop early for the far ones
        bound = (self._tree.query(points[::8])[0] - offset[::8]).min() + self.slack
        approx = self._tree.query(points, distance_upper_bound=bound + offset.max() + 1e-9)[0] - offset
        candidates = np.flatnonzero(approx <= approx.min() + self.slack)
        exact = np.abs(_exact(self._implicit, points[candidates])) - offset[candidates]
        best = int(np.argmin(exact))
        return float(exact[best]), int(candidates[best])

    def maximum(self, points: np.ndarray) -> tuple[float, int]:
        """Exact maximum over ``points`` of the distance and its index."""
        points = np.asarray(points, float)
        approx, _ = self._tree.query(points)
        candidates = np.flatnonzero(approx >= approx.max() - self.slack)
        exact = np.abs(_exact(self._implicit, points[candidates]))
        best = int(np.argmax(exact))
        return float(exact[best]), int(candidates[best])

    def distances(self, points: np.ndarray) -> np.ndarray:
        """Exact unsigned distance of every point (mm)."""
        return np.abs(_exact(self._implicit, np.asarray(points, float)))
