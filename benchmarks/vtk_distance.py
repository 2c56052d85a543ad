"""The checker's distance engine before issue 17, kept as the reference that benchmarks/bench_check.py
times beside the compiled-tree engine and that benchmarks/record_check_reference.py can record with:
VTK exact distances (vtkImplicitPolyDataDistance) and sequential VTK cell-locator ball searches,
pruned by the package's grid bounds (its classes, with the VTK engine swapped in) and by the patch
boxes and convex-hull planes that the package dropped with the tree. Not part of the package; use :func:`vtk_zones` to build
SafetyZones on it.

Its own description, as it stood in bvn_plan/geometry/distance.py:
Fast exact distances from points to vertebra surfaces (mm, model coordinates).

A coarse signed-distance grid (voxelised mesh + Euclidean distance transform) answers most
queries; points near a surface, and the candidates for a minimum, are re-evaluated exactly with
VTK (exact point-to-triangle distances). A minimum first evaluates the point with the lowest
estimate exactly, then visits the others in the order of their lower bounds (from a grid of
distances to densely sampled surface points, read with a curvature bound; for many candidates also
the distance to oriented boxes holding the surface's faces in small patches, or outside a closed
surface the height above its convex hull's planes) until a bound exceeds the best value so far;
a visited point far from the surface costs one VTK cell-locator search of the ball in which it
could still beat that value, which is quick because the ball is nearly always empty. This keeps
one trajectory check in the millisecond range while the reported minimum is the exact mesh
distance.
"""

from __future__ import annotations

import math

import numpy as np
import trimesh
from scipy.spatial import ConvexHull, cKDTree

from bvn_plan.geometry import distance

#: Added (mm) to a ball search's radius so that rounding cannot lose a point exactly at the limit.
_TIE_MM = 1e-9
#: Side (mm) of the cubes that group a surface's faces (by centroid) into patches, each held in a box
#: along its principal axes: a patch's box is a thin slab, so a point's distance to the nearest box
#: is within about a patch's thickness of its distance to the surface.
PATCH_CUBE_MM = 5.0
#: A minimum raises its far candidates' bounds by a costlier bound (patch boxes, hull planes) only when
#: there are more than this many: a ball search costs a few microseconds, the costlier bound about a
#: tenth of a millisecond however few the points.
REFINE_ABOVE = 40


def _vtk_distance(mesh: trimesh.Trimesh):
    import pyvista as pv
    import vtk

    implicit = vtk.vtkImplicitPolyDataDistance()
    implicit.SetInput(pv.wrap(mesh))
    return implicit


class _BallSearch:
    """Exact distance (mm) from a point to a surface, if the surface comes within a given radius of
    it, by one search of a VTK cell locator over that ball (quick when the ball is empty)."""

    def __init__(self, mesh: trimesh.Trimesh):
        import pyvista as pv
        import vtk

        self._locator = vtk.vtkCellLocator()
        self._locator.SetDataSet(pv.wrap(mesh))
        self._locator.BuildLocator()
        self._closest = [0.0, 0.0, 0.0]
        self._cell = vtk.vtkGenericCell()
        self._cell_id, self._sub_id, self._inside = vtk.reference(0), vtk.reference(0), vtk.reference(0)
        self._squared = vtk.reference(0.0)

    def __call__(self, point: list, radius: float) -> float:
        """Distance (mm) from ``point`` (3 floats, model coordinates) to the surface, inf if beyond ``radius``."""
        found = self._locator.FindClosestPointWithinRadius(point, radius, self._closest, self._cell, self._cell_id,
                                                           self._sub_id, self._squared, self._inside)
        return math.sqrt(self._squared.get()) if found else math.inf

    def least(self, points: list, offsets: list, lower: list, indices: list, best: float,
              where: int) -> tuple[float, int]:
        """The least of ``best`` (point ``where``'s value) and the values (distance - offset, mm) of
        ``points`` (lists of 3 floats, by ascending lower bound ``lower`` of their values), with the
        index (from ``indices``) of the point holding it: each point's ball reaches the best value so
        far, and the search stops at a bound above it. The locator is called directly: this loop is the
        checker's hot spot."""
        find = self._locator.FindClosestPointWithinRadius
        closest, cell, cell_id, sub_id, squared, inside = (self._closest, self._cell, self._cell_id, self._sub_id,
                                                           self._squared, self._inside)
        for i, bound, point, offset in zip(indices, lower, points, offsets):
            if bound > best:
                break
            radius = best + offset
            if radius >= 0 and find(point, radius + _TIE_MM, closest, cell, cell_id, sub_id, squared, inside):
                value = math.sqrt(squared.get()) - offset
                if value < best:
                    best, where = value, i
        return best, where


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


class _PatchBoxes:
    """A lower bound (mm) on the distance from points to a surface (model coordinates): the least
    distance to boxes that hold its faces in patches (faces grouped by the cube of side
    PATCH_CUBE_MM holding their centroid), each box along its patch's principal axes."""

    def __init__(self, mesh: trimesh.Trimesh):
        cube = np.floor(mesh.triangles_center / PATCH_CUBE_MM).astype(int)
        patch = np.unique(cube, axis=0, return_inverse=True)[1].ravel()
        count = patch.max() + 1
        corners = np.asarray(mesh.triangles, float).reshape(-1, 3)
        owner = np.repeat(patch, 3)
        weight = np.bincount(owner, minlength=count)[:, None]
        mean = np.stack([np.bincount(owner, corners[:, d], count) for d in range(3)], axis=1) / weight
        spread = corners - mean[owner]
        moments = np.stack([np.bincount(owner, spread[:, a] * spread[:, b], count)
                            for a in range(3) for b in range(3)], axis=1).reshape(-1, 3, 3)
        self._axes = np.linalg.eigh(moments)[1].transpose(0, 2, 1)  # rows: each patch's principal axes
        # the boxes' extents along their axes: a box holds its patch's corners, hence its triangles
        along = np.einsum("nij,nj->ni", self._axes[owner], corners)
        self._low = np.full((count, 3), np.inf)
        self._high = np.full((count, 3), -np.inf)
        np.minimum.at(self._low, owner, along)
        np.maximum.at(self._high, owner, along)

    @staticmethod
    def _to_boxes(points: np.ndarray, axes: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Squared distances (mm^2) from points (rows) to boxes (columns)."""
        along = (points @ axes.reshape(-1, 3).T).reshape(len(points), *low.shape)
        gap = np.maximum(low - along, along - high)
        np.maximum(gap, 0.0, out=gap)
        np.square(gap, out=gap)
        return (gap.reshape(-1, 3) @ np.ones(3)).reshape(len(points), -1)  # a matrix product sums fastest

    def __call__(self, points: np.ndarray, limit: float) -> np.ndarray:
        """Lower bound (mm) on each point's distance to the surface where that distance is at most
        ``limit`` (mm), less a rounding allowance; elsewhere possibly any value above ``limit``. Only the
        boxes within ``limit`` of the ball about the points' mean that holds them are read."""
        centre = points.mean(axis=0)
        reach = np.sqrt(np.square(points - centre).sum(axis=1).max())
        to_centre = np.sqrt(self._to_boxes(centre[None], self._axes, self._low, self._high)[0])
        near = to_centre <= limit + reach + _TIE_MM
        if not near.any():
            return np.full(len(points), np.inf)
        squared = self._to_boxes(points, self._axes[near], self._low[near], self._high[near])
        return np.sqrt(squared.min(axis=1)) - _TIE_MM


class _VtkTriangles:
    """The VTK engine behind one surface: exact signed distances and ball searches."""

    def __init__(self, mesh: trimesh.Trimesh):
        self.implicit = _vtk_distance(mesh)
        self.ball = _BallSearch(mesh)

    def signed(self, points: np.ndarray) -> np.ndarray:
        return _exact(self.implicit, points)

    def unsigned(self, points: np.ndarray) -> np.ndarray:
        return np.abs(_exact(self.implicit, points))


def _upper(triangles: _VtkTriangles, points: np.ndarray, i: int) -> float:
    """Upper bound (mm) on point ``i``'s distance to the surface, the radius of its first ball search:
    its exact distance (the package's node grids hold lower bounds only)."""
    return float(triangles.unsigned(points[i:i + 1])[0]) + _TIE_MM


def _each_group(starts: np.ndarray, count: int, search) -> tuple[np.ndarray, np.ndarray]:
    """The package's grouped minima (or maxima) from ``search(rows)``, one group at a time: each
    group's (value, index among its rows), as (values, rows)."""
    bounds = np.append(np.asarray(starts, int), count)
    found = [search(np.arange(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
    return np.array([v for v, _ in found]), np.array([a + k for a, (_, k) in zip(bounds[:-1], found)], int)


class SignedDistance(distance.SignedDistance):
    """The package's signed distance with the VTK engine and its sequential ball searches."""

    _engine = _VtkTriangles
    _joint = False  # its own sequential ball searches

    def __init__(self, mesh: trimesh.Trimesh, *args, **kwargs):
        super().__init__(mesh, *args, **kwargs)
        # the convex hull's facet planes (outward unit normals n, offsets c: n.x + c <= 0 inside): a
        # point's largest height above them bounds its distance to the hull, which holds the surface
        planes = ConvexHull(mesh.vertices).equations
        self._hull_normals, self._hull_offsets = planes[:, :3], planes[:, 3]

    def _hull_bound(self, points: np.ndarray, limit: np.ndarray | float = np.inf) -> np.ndarray:
        """Lower bound (mm) on the points' unsigned distance to the surface: their largest height
        above the convex hull's facet planes (the hull holds the surface), less a rounding allowance.
        Tight where the nearest part of the surface is convex, as the canal's wall facing the body.
        A point within r of the points' mean has each height within r of the mean's, so only the
        planes within 2 r of the mean's largest height can hold a point's largest: the others are
        skipped. Where the height above the mean's highest plane alone exceeds ``limit`` (mm, per point
        or one for all), that height is the bound: then the largest exceeds the limit too."""
        centre = points.mean(axis=0)
        heights = self._hull_normals @ centre + self._hull_offsets
        top = int(np.argmax(heights))
        bound = points @ self._hull_normals[top] + (self._hull_offsets[top] - _TIE_MM)
        rest = np.flatnonzero(bound <= limit)
        if len(rest):
            reach = np.sqrt(np.square(points - centre).sum(axis=1).max())
            planes = heights >= heights[top] - 2 * reach - _TIE_MM
            highest = (points[rest] @ self._hull_normals[planes].T + self._hull_offsets[planes]).max(axis=1)
            bound[rest] = highest - _TIE_MM
        return bound

    def minima(self, points, offset, starts, sign=1.0, places=None, read=None) -> tuple[np.ndarray, np.ndarray]:
        """The package's grouped minima by this engine's search, group by group."""
        points = np.asarray(points, float)
        offset = np.broadcast_to(np.asarray(offset, float), (len(points),))
        approx, lower, unsigned = self._estimates(points, offset, sign, places, read)
        return _each_group(starts, len(points), lambda rows: self._search(
            points[rows], offset[rows], sign, approx[rows], lower[rows], unsigned[rows]))

    def _search(self, points, offset, sign, approx, lower, unsigned) -> tuple[float, int]:
        refine = (lambda i, limit: self._hull_bound(points[i], limit + offset[i]) - offset[i]) if sign > 0 else None
        return _pruned_minimum(approx, lower, lambda i: sign * self.exact(points[i]) - offset[i],
                               _BoundedValue(self._triangles.ball, points, offset), unsigned,
                               lambda i: _upper(self._triangles, points, i) - offset[i], refine)


class SurfaceDistance(distance.SurfaceDistance):
    """The package's surface distance with the VTK engine, its ball searches and its sampled maximum."""

    _engine = _VtkTriangles
    _joint = False  # its own sequential ball searches

    def __init__(self, mesh: trimesh.Trimesh, spacing: float = 1.0, covers: np.ndarray | None = None):
        super().__init__(mesh, covers)
        self._patches = _PatchBoxes(mesh)
        samples, _ = trimesh.sample.sample_surface_even(mesh, max(200, int(mesh.area / spacing**2)), seed=0)
        self._tree = cKDTree(np.vstack([samples, mesh.vertices]))
        # every surface point lies within this distance of a sample
        self.slack = float(max(spacing, mesh.edges_unique_length.max() / 2 if len(mesh.edges_unique) else spacing))

    def maximum(self, points: np.ndarray) -> tuple[float, int]:
        points = np.asarray(points, float)
        approx, _ = self._tree.query(points)
        candidates = np.flatnonzero(approx >= approx.max() - self.slack)
        exact = self._triangles.unsigned(points[candidates])
        best = int(np.argmax(exact))
        return float(exact[best]), int(candidates[best])

    def maxima(self, points, starts) -> tuple[np.ndarray, np.ndarray]:
        """The package's grouped maxima by this engine's sampled maximum, group by group."""
        points = np.asarray(points, float)
        return _each_group(starts, len(points), lambda rows: self.maximum(points[rows]))

    def minima(self, points, offset, starts, places=None, lower=None) -> tuple[np.ndarray, np.ndarray]:
        """The package's grouped minima by this engine's search, group by group."""
        points = np.asarray(points, float)
        offset = np.broadcast_to(np.asarray(offset, float), (len(points),))
        lower = (self._bound(points, places) if lower is None else lower) - offset
        return _each_group(starts, len(points), lambda rows: self._search(points[rows], offset[rows], lower[rows]))

    def _search(self, points, offset, lower) -> tuple[float, int]:
        return _pruned_minimum(lower, lower, None, _BoundedValue(self._triangles.ball, points, offset), None,
                               lambda i: _upper(self._triangles, points, i) - offset[i],
                               lambda i, limit: self._patches(points[i], limit + offset[i].max()) - offset[i])


class _BoundedValue:
    """(distance - offset) of points by ball searches: exact where it does not exceed a limit."""

    def __init__(self, ball: _BallSearch, points: np.ndarray, offset: np.ndarray):
        self._ball, self._points, self._offset = ball, points, offset

    def __call__(self, i: int, limit: float) -> float:
        """Point i's value if it does not exceed ``limit`` (inf otherwise)."""
        radius = limit + self._offset[i]
        if radius < 0:
            return np.inf
        return self._ball(self._points[i].tolist(), radius + _TIE_MM) - self._offset[i]

    def least(self, order: np.ndarray, lower: np.ndarray, best: float, where: int) -> tuple[float, int]:
        """The least of ``best`` (point ``where``'s value) and the values of the points ``order``
        (indices by ascending lower bound ``lower``) and its index, searching until a bound exceeds
        the best value so far. Points that cannot beat the first best value are not converted."""
        count = int(np.searchsorted(lower, best, side="right"))
        order = order[:count]
        return self._ball.least(self._points[order].tolist(), self._offset[order].tolist(), lower[:count].tolist(),
                                order.tolist(), best, where)


def _pruned_minimum(approx: np.ndarray, lower: np.ndarray, exact, bounded: _BoundedValue,
                    unsigned: np.ndarray | None, upper, refine=None) -> tuple[float, int]:
    """Exact minimum of the points' values and its index, given an estimate ``approx`` and a lower
    bound ``lower`` of each value, ``exact(indices)`` (exact values; unused if ``unsigned`` is None) and ``bounded``
    (ball searches, valid where ``unsigned``, everywhere if None) and ``upper(index)`` (an upper bound of an
    unsigned point's value). The point with the lowest estimate is evaluated first (by a ball search
    of radius ``upper``); then those near the surface whose bound does not exceed the best value, in
    one exact call; then the others in the order of their lower bounds, by ball searches, until a
    bound exceeds the best value so far. The bounds of those others are first raised by
    ``refine(indices, limit)`` (costlier bounds, valid where a value does not exceed ``limit``), if
    given and there are more than REFINE_ABOVE."""
    where = int(np.argmin(approx))
    if unsigned is None or unsigned[where]:
        best = bounded(where, upper(where))
    else:
        best = float(exact(np.array([where]))[0])
    candidates = lower <= best
    candidates[where] = False
    if unsigned is not None:
        near = np.flatnonzero(candidates & ~unsigned)
        if len(near):
            values = exact(near)
            if values.min() < best:
                best, where = float(values.min()), int(near[np.argmin(values)])
        candidates &= unsigned
    far = np.flatnonzero(candidates)
    bounds = lower[far] if refine is None or len(far) <= REFINE_ABOVE else np.maximum(lower[far], refine(far, best))
    order = np.argsort(bounds, kind="stable")
    return bounded.least(far[order], bounds[order], best, where)


def vtk_zones(mesh: trimesh.Trimesh, landmarks, **options):
    """SafetyZones of ``mesh`` (mm, model coordinates) built on this VTK engine instead of the
    package's (``options``: SafetyZones' own, e.g. ``organs``)."""
    from unittest import mock

    from bvn_plan.planning import safety

    with mock.patch.multiple(safety, SignedDistance=SignedDistance, SurfaceDistance=SurfaceDistance):
        return safety.SafetyZones(mesh, landmarks, **options)
