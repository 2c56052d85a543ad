"""The spinal canal (vertebral foramen): its axis, its lumen and a closed volume of it.

The vertebral foramen is the one hole a lumbar vertebra shows when looked at along its
superior-inferior axis. :func:`find_canal_axis` searches the directions in the mid-sagittal plane
for the view with the largest hole on the symmetry line. :func:`lumen_mask` reads the lumen off a
solid voxel grid in the vertebra frame and :func:`canal_volume` turns it into a closed mesh: the
lumen (the narrowest passage, seen along the canal axis) grown by CANAL_MARGIN_MM and extruded
between the endplate planes, so the safety zone is never smaller than the canal.
All coordinates are millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy import ndimage

from ..errors import AnatomyError
from ..geometry.meshing import mask_surface
from ..geometry.vectors import cross3, perpendicular_basis
from ..geometry.voxelize import VoxelGrid
from ..landmarks import Plane

#: Pixel size (mm) of the silhouettes searched for the canal hole.
SILHOUETTE_PIXEL_MM = 1.0
#: Coarse and fine angular steps (degrees) of the search for the canal axis in the mid-sagittal plane.
AXIS_SEARCH_STEPS_DEG = (6.0, 1.0)
#: Smallest hole area (mm^2) accepted as a vertebral foramen. Lumbar canals are about
#: 15 x 20-28 mm (>= 200 mm^2, docs/sources.md 'Morphometry'); a 3 mm CT may show much less [A].
MIN_CANAL_AREA_MM2 = 40.0
#: Outward margin (mm) added to the projected lumen when it is turned into the canal volume. The
#: projected lumen is the narrowest passage (where no bone at any height covers it), so it is
#: already no larger than the canal at any height; the margin makes the safety zone conservative [A].
CANAL_MARGIN_MM = 1.0
#: When the whole surface shows no canal (a whole sacrum: its canal curves with the sacral
#: kyphosis), only the part within this distance (mm) of either end along the view direction is
#: looked at: enough for the S1 segment, whose canal opening is the top of the sacral canal [A].
END_WINDOW_MM = 40.0
#: Gaussian blur (voxels) of the masks turned into canal and body surfaces, so that they are no staircase.
MASK_BLUR_VOXELS = 0.6
#: Canal lumen area (mm^2) at and above which the canal finding is fully confident [A].
CANAL_CONFIDENT_AREA_MM2 = 100.0


@dataclass
class CanalView:
    """The best view down the canal: ``direction`` (unit, sign arbitrary), hole area (mm^2),
    hole centroid (mm, model coordinates, on the symmetry plane's line of sight)."""

    direction: np.ndarray
    area_mm2: float
    centroid: np.ndarray
    window: int = 0   # 0: whole surface; +1 / -1: only the end in the +/- direction showed the canal


def _holes(u: np.ndarray, v: np.ndarray, pixel: float):
    """Rasterise 2D points; return the label image of enclosed background regions and the grid origin."""
    lo = np.array([u.min(), v.min()]) - 3 * pixel
    iu = ((u - lo[0]) / pixel).astype(int)
    iv = ((v - lo[1]) / pixel).astype(int)
    image = np.zeros((iu.max() + 4, iv.max() + 4), dtype=bool)
    image[iu, iv] = True
    image = ndimage.binary_closing(image, structure=np.ones((3, 3)), border_value=0)
    labels, _ = ndimage.label(~image)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    labels[np.isin(labels, border)] = 0
    return labels, lo


def _hole_on_midline(points: np.ndarray, plane: Plane, direction: np.ndarray, window: int = 0):
    """Area (mm^2) and centroid (mm, model coords) of the largest hole crossing the symmetry line.

    ``window``: 0 looks at all points, +1 / -1 only at those within :data:`END_WINDOW_MM` of the
    end of the surface in the +/- ``direction``.
    """
    normal = plane.normal
    if window:
        along = points @ direction * window
        points = points[along >= along.max() - END_WINDOW_MM]
    across = cross3(direction, normal)
    rel = points - plane.point
    u, v = rel @ normal, rel @ across
    labels, lo = _holes(u, v, SILHOUETTE_PIXEL_MM)
    column = int((0.0 - lo[0]) / SILHOUETTE_PIXEL_MM)
    candidates = np.unique(labels[max(column - 1, 0):column + 2])
    candidates = candidates[candidates > 0]
    if len(candidates) == 0:
        return 0.0, None
    areas = ndimage.sum_labels(np.ones_like(labels), labels, candidates)
    best = candidates[int(np.argmax(areas))]
    iu, iv = np.nonzero(labels == best)
    cv = lo[1] + (iv.mean() + 0.5) * SILHOUETTE_PIXEL_MM
    centroid = plane.point + cv * across  # kept on the symmetry plane
    return float(areas.max()) * SILHOUETTE_PIXEL_MM ** 2, centroid


def find_canal_axis(points: np.ndarray, plane: Plane) -> CanalView | None:
    """Direction in the mid-sagittal ``plane`` along which the surface samples ``points`` (mm)
    show the largest hole on the symmetry line: the canal (superior-inferior) axis, sign arbitrary.

    Returns ``None`` when no view shows a hole of at least :data:`MIN_CANAL_AREA_MM2`.
    """
    first, second = perpendicular_basis(plane.normal)
    best = _search(points, plane, first, second, 0)
    if best.area_mm2 < MIN_CANAL_AREA_MM2:
        best = max((_search(points, plane, first, second, w) for w in (1, -1)), key=lambda view: view.area_mm2)
    return best if best.area_mm2 >= MIN_CANAL_AREA_MM2 else None


def _search(points: np.ndarray, plane: Plane, first: np.ndarray, second: np.ndarray, window: int) -> CanalView:
    def view(angle_deg: float) -> CanalView:
        a = np.radians(angle_deg)
        d = np.cos(a) * first + np.sin(a) * second
        area, centroid = _hole_on_midline(points, plane, d, window)
        return CanalView(d, area, centroid, window)

    coarse, fine = AXIS_SEARCH_STEPS_DEG
    views = [view(a) for a in np.arange(0.0, 180.0, coarse)]
    best_angle = float(np.arange(0.0, 180.0, coarse)[int(np.argmax([w.area_mm2 for w in views]))])
    views += [view(best_angle + a) for a in np.arange(-coarse + fine, coarse, fine) if a != 0]
    return max(views, key=lambda w: w.area_mm2)


@dataclass
class Lumen:
    """The canal lumen seen along z in the vertebra frame (mm): its (x, y) ``mask`` on the grid
    columns, its extents ``x_range`` and ``y_range`` (voxel edges), ``wall_y`` (the posterior wall
    of the body at the midline: the lumen's front edge there), ``area_mm2`` and ``centre_xy``
    (centroid of the lumen's columns)."""

    mask: np.ndarray
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    wall_y: float
    area_mm2: float
    centre_xy: tuple[float, float]

    @property
    def confidence(self) -> float:
        """Canal confidence from the lumen area (CANAL_CONFIDENT_AREA_MM2), 0..1."""
        return float(np.clip(self.area_mm2 / CANAL_CONFIDENT_AREA_MM2, 0.0, 1.0))


def find_lumen(grid: VoxelGrid) -> Lumen:
    """The canal lumen of the solid ``grid`` (vertebra frame, mm); AnatomyError if there is none."""
    xs, ys = grid.axis_coordinates(0), grid.axis_coordinates(1)
    lumen = lumen_mask(grid.solid, xs)
    if lumen is None:
        raise AnatomyError("no closed vertebral foramen in the aligned vertebra: not a vertebra")
    li, lj = np.nonzero(lumen)
    half = grid.spacing / 2
    x_range = (xs[li].min() - half, xs[li].max() + half)
    y_range = (ys[lj].min() - half, ys[lj].max() + half)
    mid_cols = np.abs(xs[li] - (x_range[0] + x_range[1]) / 2) <= grid.spacing
    wall_y = ys[lj[mid_cols]].max() + half if mid_cols.any() else y_range[1]
    return Lumen(lumen, x_range, y_range, wall_y, len(li) * grid.spacing ** 2, (xs[li].mean(), ys[lj].mean()))


def lumen_mask(solid: np.ndarray, xs: np.ndarray) -> np.ndarray | None:
    """The canal lumen seen along z, as a boolean (x, y) image.

    ``solid``: voxel grid in the vertebra frame; ``xs``: its voxel-centre x coordinates (mm). The
    lumen is the largest region that no bone covers at any height, that bone encloses, and that
    crosses the mid-sagittal plane x = 0. ``None`` if there is none.
    """
    shadow = ndimage.binary_closing(solid.any(axis=2), structure=np.ones((3, 3)), border_value=0)
    labels, count = ndimage.label(~shadow)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    labels[np.isin(labels, border)] = 0
    column = int(np.argmin(np.abs(xs)))
    candidates = np.unique(labels[max(column - 1, 0):column + 2])
    candidates = candidates[candidates > 0]
    if len(candidates) == 0:
        return None
    areas = ndimage.sum_labels(np.ones_like(labels), labels, candidates)
    return labels == candidates[int(np.argmax(areas))]


def canal_volume(lumen: np.ndarray, grid: VoxelGrid, z_range) -> trimesh.Trimesh:
    """The canal lumen grown by CANAL_MARGIN_MM and extruded between the endplate planes at the
    midline posterior wall, CANAL_MARGIN_MM beyond each (vertebra frame, mm), as a closed surface.
    The margin grows into open space only: where it would reach into bone (``grid``, the solid
    voxels of the vertebra) that is the posterior wall or a pedicle, not canal."""
    grow = int(round(CANAL_MARGIN_MM / grid.spacing))
    footprint = ndimage.binary_dilation(lumen, iterations=grow) if grow else lumen
    zs = grid.axis_coordinates(2)
    inside_z = (zs >= z_range[0] - CANAL_MARGIN_MM) & (zs <= z_range[1] + CANAL_MARGIN_MM)
    mask = footprint[:, :, None] & inside_z[None, None, :] & ~grid.solid
    return mask_surface(mask, grid.affine, blur_sigma=MASK_BLUR_VOXELS, process=True)
