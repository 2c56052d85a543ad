"""The ablation zone (lesion) behind one interface, whichever model made it.

Every lesion is a closed region in **model coordinates (mm)** of the vertebra. The common
interface, used by the safety checker and the planner:

* ``contains(points)`` -> bool per point;
* ``signed_distance(points)`` -> mm, **negative inside, positive outside** (so at a safety point
  outside the lesion it is the margin);
* ``surface_mesh()`` -> closed ``trimesh.Trimesh`` (mm, model coordinates);
* ``volume`` (mm³), ``extent_along(axis)`` / ``extent_across(axis)`` (mm, along / across the probe
  axis by default);
* ``covers(point)``, ``path_coverage(start, end)`` for the BVN terminus and the nerve path.

Implementations: :class:`EllipsoidLesion` (the device profile's geometric spheroid, exact),
:class:`UnionLesion` (two probes, bi-pedicular) and :class:`FieldLesion` (iso-surface of lethal
thermal dose from bvn_plan.thermal.bioheat).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import lru_cache
from typing import Callable

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from .device import DeviceProfile
from .errors import InputError
from .geometry.vectors import as_points, perpendicular_basis, unit_vector


@lru_cache(maxsize=None)
def unit_icosphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of trimesh's unit icosphere of ``subdivisions`` levels, built once per
    level (read-only arrays: building one costs about as much as a whole safety check)."""
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    # plain arrays: trimesh's tracked arrays slow every operation on the samples derived from them
    vertices, faces = np.array(sphere.vertices, float), np.array(sphere.faces)
    vertices.flags.writeable = False
    faces.flags.writeable = False
    return vertices, faces


class Lesion(ABC):
    """A closed ablation zone in model coordinates (mm). ``axis``: unit probe direction (shaft -> tip)."""

    axis: np.ndarray

    @abstractmethod
    def contains(self, points) -> np.ndarray:
        """Bool per point (N, 3 mm, model coordinates): inside the lesion."""

    @abstractmethod
    def signed_distance(self, points) -> np.ndarray:
        """Distance (mm) from each point to the lesion surface, negative inside."""

    @abstractmethod
    def surface_mesh(self) -> trimesh.Trimesh:
        """The lesion boundary as a closed triangle mesh (mm, model coordinates)."""

    @property
    def volume(self) -> float:
        """Lesion volume (mm³)."""
        return float(abs(self.surface_mesh().volume))

    def extent_along(self, axis=None) -> float:
        """Length of the lesion along ``axis`` (default: the probe axis), mm."""
        a = self.axis if axis is None else unit_vector(axis, "axis")
        return float(np.ptp(self.surface_mesh().vertices @ a))

    def extent_across(self, axis=None, n_directions: int = 90) -> float:
        """Largest width of the lesion perpendicular to ``axis`` (default: the probe axis), mm."""
        a = self.axis if axis is None else unit_vector(axis, "axis")
        e1, e2 = perpendicular_basis(a)
        angles = np.linspace(0.0, np.pi, n_directions, endpoint=False)
        dirs = np.cos(angles)[:, None] * e1 + np.sin(angles)[:, None] * e2
        return float(np.ptp(self.surface_mesh().vertices @ dirs.T, axis=0).max())

    def covers(self, point, margin_mm: float = 0.0) -> bool:
        """True when ``point`` (mm) lies inside the lesion at least ``margin_mm`` from its surface."""
        return bool(self.signed_distance(as_points(point))[0] <= -margin_mm)

    def path_coverage(self, start, end, spacing_mm: float = 0.1) -> float:
        """Fraction (0-1) of the straight segment ``start`` -> ``end`` (mm) that lies inside the lesion.

        Used for the nerve path from the basivertebral foramen to the terminus.
        """
        a, b = as_points(start, "start")[0], as_points(end, "end")[0]
        n = max(2, int(np.ceil(np.linalg.norm(b - a) / spacing_mm)) + 1)
        t = (np.arange(n) + 0.5) / n
        return float(self.contains(a + t[:, None] * (b - a)).mean())


class EllipsoidLesion(Lesion):
    """A spheroid ``length_mm`` (along ``axis``) by ``diameter_mm`` (across) centred at ``centre`` (mm);
    ``half_length_mm`` and ``radius_mm`` are its semi-axes.

    ``signed_distance`` is exact (nearest point on the spheroid by Eberly's bisection in the
    meridian plane).
    """

    def __init__(self, centre, axis, length_mm: float, diameter_mm: float):
        if not (length_mm > 0 and diameter_mm > 0):
            raise InputError(f"lesion length and diameter must be positive, got {length_mm} and {diameter_mm} mm")
        self.centre = as_points(centre, "lesion centre")[0]
        self.axis = unit_vector(axis, "lesion axis")
        self.half_length_mm = 0.5 * float(length_mm)
        self.radius_mm = 0.5 * float(diameter_mm)

    @classmethod
    def from_probe(cls, tip, direction, device: DeviceProfile | None = None) -> "EllipsoidLesion":
        """The device profile's lesion for a probe with ``tip`` (mm, model coordinates) and unit
        ``direction`` pointing from the shaft toward the tip."""
        device = device or DeviceProfile()
        d = unit_vector(direction, "probe direction")
        centre = as_points(tip, "probe tip")[0] - device.lesion_offset_mm * d
        return cls(centre, d, device.lesion_length_mm, device.lesion_diameter_mm)

    def contains(self, points) -> np.ndarray:
        u, v = _meridian(as_points(points), self.centre, self.axis)
        return (u / self.half_length_mm) ** 2 + (v / self.radius_mm) ** 2 <= 1.0

    def signed_distance(self, points) -> np.ndarray:
        return spheroid_signed_distance(as_points(points), self.centre, self.axis, self.half_length_mm, self.radius_mm)

    def surface_points(self, subdivisions: int = 4) -> np.ndarray:
        """The vertices of :meth:`surface_mesh` (mm, model coordinates), see :func:`spheroid_surface_points`."""
        return spheroid_surface_points(self.centre, self.axis, self.half_length_mm, self.radius_mm, subdivisions)

    def surface_mesh(self, subdivisions: int = 4) -> trimesh.Trimesh:
        return trimesh.Trimesh(self.surface_points(subdivisions), unit_icosphere(subdivisions)[1], process=False)

    @property
    def volume(self) -> float:
        return float(4.0 / 3.0 * np.pi * self.half_length_mm * self.radius_mm ** 2)

    def extent_along(self, axis=None) -> float:
        if axis is None:
            return 2 * self.half_length_mm
        return super().extent_along(axis)

    def extent_across(self, axis=None, n_directions: int = 90) -> float:
        if axis is None:
            return 2 * self.radius_mm
        return super().extent_across(axis, n_directions)


def _meridian(points: np.ndarray, centre, axis) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) of points along and across a spheroid's axis from its centre; ``centre`` and
    ``axis`` may be one (3,) or one per point (N, 3)."""
    rel = points - centre
    u = np.einsum("nk,nk->n", rel, np.broadcast_to(axis, rel.shape))
    v = np.linalg.norm(rel - u[:, None] * axis, axis=1)
    return np.abs(u), v


def spheroid_surface_points(centre: np.ndarray, axis: np.ndarray, half_length_mm: float, radius_mm: float,
                            subdivisions: int) -> np.ndarray:
    """Surface samples of spheroids of ``half_length_mm`` along their unit ``axis`` and ``radius_mm``
    across, centred at ``centre`` (one (3,) or a batch (N, 3) of each; mm, model coordinates): the
    vertices of a unit icosphere of ``subdivisions`` levels mapped onto each, (K, 3) or (N, K, 3)."""
    e1, e2 = perpendicular_basis(axis)
    local = _spheroid_pattern(subdivisions, float(radius_mm), float(half_length_mm))
    return centre[..., None, :] + local @ np.stack([e1, e2, np.asarray(axis, float)], axis=-2)


@lru_cache(maxsize=64)
def _spheroid_pattern(subdivisions: int, radius_mm: float, half_length_mm: float) -> np.ndarray:
    """The unit icosphere's vertices scaled to a spheroid's semi-axes (mm, its own frame: z along
    its axis), made once per shape: a device's lesions share one shape, only placed differently.
    Read-only, as the cache's other arrays."""
    local = unit_icosphere(subdivisions)[0] * np.array([radius_mm, radius_mm, half_length_mm])
    local.flags.writeable = False
    return local


def spheroid_signed_distance(points: np.ndarray, centre, axis, half_length_mm: float, radius_mm: float,
                             iterations: int = 80) -> np.ndarray:
    """Exact signed distance (mm, negative inside) from points (N, 3) to a spheroid of
    ``half_length_mm`` along its unit ``axis`` and ``radius_mm`` across, centred at ``centre``; centre
    and axis may be given per point (N, 3) to measure N different spheroids at once (model coordinates)."""
    u, v = _meridian(points, centre, axis)
    if half_length_mm >= radius_mm:
        dist = _ellipse_distance(half_length_mm, radius_mm, u, v, iterations)
    else:
        dist = _ellipse_distance(radius_mm, half_length_mm, v, u, iterations)
    inside = (u / half_length_mm) ** 2 + (v / radius_mm) ** 2 <= 1.0
    return np.where(inside, -dist, dist)


def _ellipse_distance(e0: float, e1: float, y0: np.ndarray, y1: np.ndarray, iterations: int = 80) -> np.ndarray:
    """Distance from points (y0, y1) >= 0 to the ellipse with semi-axes e0 >= e1 (D. Eberly,
    "Distance from a point to an ellipse", 2013), vectorised bisection."""
    dist = np.empty_like(y0)
    on_major = y1 <= 1e-12 * e1
    # points on the major axis: closed form
    y0m = y0[on_major]
    xde0 = np.minimum(e0 * y0m / (e0 ** 2 - e1 ** 2 + 1e-300), 1.0)
    near = e0 * y0m < e0 ** 2 - e1 ** 2
    x0 = e0 * xde0
    x1 = e1 * np.sqrt(np.clip(1 - xde0 ** 2, 0.0, None))
    dist[on_major] = np.where(near, np.hypot(x0 - y0m, x1), np.abs(y0m - e0))
    # general points: root of F(s) = (r0 z0 / (s + r0))^2 + (z1 / (s + 1))^2 - 1 by bisection
    y0g, y1g = y0[~on_major], y1[~on_major]
    z0, z1 = y0g / e0, y1g / e1
    r0 = (e0 / e1) ** 2
    n0 = r0 * z0
    g = z0 ** 2 + z1 ** 2 - 1
    s0 = z1 - 1
    s1 = np.where(g < 0, 0.0, np.hypot(n0, z1) - 1)
    for _ in range(iterations):
        s = 0.5 * (s0 + s1)
        f = (n0 / (s + r0)) ** 2 + (z1 / (s + 1)) ** 2 - 1
        s0 = np.where(f > 0, s, s0)
        s1 = np.where(f > 0, s1, s)
    s = 0.5 * (s0 + s1)
    x0 = r0 * y0g / (s + r0)
    x1 = y1g / (s + 1)
    dist[~on_major] = np.hypot(x0 - y0g, x1 - y1g)
    return dist


class UnionLesion(Lesion):
    """The union of several lesions (bi-pedicular / two-probe ablation).

    ``signed_distance`` is the minimum over the parts: exact outside the union; inside it is a
    lower bound on the depth (conservative for coverage margins).
    """

    def __init__(self, parts: list[Lesion]):
        if len(parts) < 1 or not all(isinstance(p, Lesion) for p in parts):
            raise InputError("a union lesion needs one or more Lesion parts")
        self.parts = list(parts)
        total = np.sum([p.axis for p in self.parts], axis=0)
        self.axis = total / np.linalg.norm(total) if np.linalg.norm(total) > 1e-6 else self.parts[0].axis
        self._mesh: trimesh.Trimesh | None = None

    def contains(self, points) -> np.ndarray:
        return np.any([p.contains(points) for p in self.parts], axis=0)

    def signed_distance(self, points) -> np.ndarray:
        return np.min([p.signed_distance(points) for p in self.parts], axis=0)

    def surface_mesh(self) -> trimesh.Trimesh:
        if self._mesh is None:
            meshes = [p.surface_mesh() for p in self.parts]
            self._mesh = meshes[0] if len(meshes) == 1 else trimesh.boolean.union(meshes, engine="manifold")
        return self._mesh


class FieldLesion(Lesion):
    """The region where a scalar field is >= 0, e.g. log10(thermal dose / lethal dose).

    ``level`` maps (N, 3) model-coordinate points (mm) to the field; ``mesh`` is its zero
    iso-surface (marching cubes, closed). ``signed_distance`` is the distance to the nearest mesh
    vertex or face centre, signed by ``level``: accurate to about half the mesh spacing.
    """

    def __init__(self, level: Callable[[np.ndarray], np.ndarray], mesh: trimesh.Trimesh, axis):
        if len(mesh.faces) == 0:
            raise InputError("the lethal-dose region is empty: no lesion formed (check set temperature and duration)")
        self.level = level
        self.mesh = mesh
        self.axis = unit_vector(axis, "lesion axis")
        self._tree = cKDTree(np.vstack([mesh.vertices, mesh.triangles_center]))

    @classmethod
    def from_grid(cls, level: Callable[[np.ndarray], np.ndarray], origin, axes: np.ndarray, spacing_mm: float,
                  shape: tuple[int, int, int], axis) -> "FieldLesion":
        """Mesh the zero level of ``level`` sampled on a regular grid.

        The grid point (i, j, k) is ``origin + spacing_mm * (i, j, k) @ axes`` (rows of ``axes``:
        orthonormal grid directions in model coordinates). The field is padded with "outside" so the
        mesh is closed.
        """
        from skimage.measure import marching_cubes

        idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).reshape(-1, 3)
        points = np.asarray(origin, dtype=float) + spacing_mm * idx @ axes
        values = np.asarray(level(points), dtype=float).reshape(shape)
        if not (values >= 0).any():
            raise InputError("the lethal-dose region is empty: no lesion formed (check set temperature and duration)")
        values = np.pad(np.maximum(values, -10.0), 1, constant_values=-10.0)
        verts, faces, _, _ = marching_cubes(values, level=0.0, spacing=(spacing_mm,) * 3)
        verts = np.asarray(origin, dtype=float) + (verts - spacing_mm) @ axes
        mesh = trimesh.Trimesh(verts, faces, process=True)
        if mesh.volume < 0:
            mesh.invert()
        return cls(level, mesh, axis)

    def contains(self, points) -> np.ndarray:
        return np.asarray(self.level(as_points(points))) >= 0

    def signed_distance(self, points) -> np.ndarray:
        pts = as_points(points)
        dist, _ = self._tree.query(pts)
        return np.where(self.contains(pts), -dist, dist)

    def surface_mesh(self) -> trimesh.Trimesh:
        return self.mesh


def coverage_report(lesion: Lesion, terminus, foramen, margin_mm: float = 0.0) -> dict:
    """How well ``lesion`` treats the nerve: the terminus and the straight nerve path from the
    basivertebral ``foramen`` to the ``terminus`` (points in mm, model coordinates).

    ``terminus_depth_mm``: how far inside the lesion surface the terminus lies (negative: outside
    by that much); ``terminus_covered``: depth >= ``margin_mm``; ``nerve_path_coverage``: fraction
    (0-1) of the path inside the lesion.
    """
    depth = -float(lesion.signed_distance(as_points(terminus, "terminus"))[0])
    return {
        "terminus_depth_mm": depth,
        "terminus_covered": depth >= margin_mm,
        "nerve_path_coverage": lesion.path_coverage(foramen, terminus),
        "margin_mm": float(margin_mm),
    }
