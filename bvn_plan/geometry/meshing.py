"""Surfaces of voxel fields and masks (marching cubes), and the bridge to VTK surfaces.

:func:`mask_surface` turns a boolean mask on a grid with a voxel -> world affine into a closed
surface with outward normals (optionally blurred first, optionally smoothed after);
:func:`field_surface` gives the raw marching-cubes surface of a distance-like field on an
isotropic grid. :func:`trimesh_to_polydata` / :func:`polydata_to_trimesh` convert between
trimesh and pyvista surfaces, for VTK's smoothing (:func:`taubin_smooth`) and decimation
(:func:`decimate`). Coordinates are mm in whatever frame the affine or origin is given in.

pyvista is imported inside the functions that need it, so that ``import bvn_plan`` stays free of it.
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy import ndimage
from skimage.measure import marching_cubes

#: Windowed-sinc (Taubin) smoothing pass band (VTK's normalised units) [A]: 0.05 removes a 3 mm
#: staircase while keeping the volume within ~1% of the unsmoothed surface.
SINC_PASS_BAND = 0.05


def mask_surface(mask: np.ndarray, affine: np.ndarray, offset: np.ndarray | None = None, *,
                 blur_sigma: float = 0.0, smoothing: int = 0, process: bool = False) -> trimesh.Trimesh:
    """Closed surface (world mm, outward normals) of a boolean voxel mask.

    ``affine``: voxel index -> world 4x4; ``offset``: voxel index of ``mask[0, 0, 0]`` in the grid
    the affine belongs to (for a cropped mask). The mask is cropped to its bounding box, padded with empty voxels, blurred
    (Gaussian, ``blur_sigma`` voxels; 0: none) so that its surface is not a staircase, cut by
    marching cubes at 0.5, mapped by the affine (faces re-wound when the affine mirrors) and
    smoothed by ``smoothing`` windowed-sinc iterations (:func:`taubin_smooth`; 0: none).
    ``process``: let trimesh merge coincident vertices.
    """
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    start = np.array([sl.start for sl in box]) + (0 if offset is None else np.asarray(offset))
    pad = 1 + (int(4.0 * blur_sigma + 0.5) if blur_sigma else 0)   # room for the blur's kernel
    padded = np.pad(mask[box].astype(np.float32), pad)
    if blur_sigma:
        padded = ndimage.gaussian_filter(padded, blur_sigma)
    vertices, faces, _, _ = marching_cubes(padded, 0.5)
    ijk = vertices.astype(float) - pad + start
    affine = np.asarray(affine, dtype=float)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    if smoothing > 0:
        world = taubin_smooth(world, faces, smoothing)
    surface = trimesh.Trimesh(world, faces[:, ::-1], process=process)
    if surface.volume < 0:
        surface.invert()
    return surface


def field_surface(values: np.ndarray, origin: np.ndarray, spacing: float,
                  pad_value: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (float32, mm) and faces of the zero level set of ``values`` (negative inside) on
    the isotropic grid of ``spacing`` mm whose first node is at ``origin`` (mm).

    The field is padded by one node of ``pad_value`` (outside), so the surface is closed; exact
    zeros are nudged outside so that no vertex falls on a node; degenerate faces are dropped.
    """
    padded = np.pad(np.where(values == 0.0, 1e-6, values), 1, constant_values=pad_value)  # no exact ties
    vertices, faces, _, _ = marching_cubes(padded, 0.0, spacing=(spacing,) * 3, allow_degenerate=False)
    vertices += origin - spacing
    return vertices, faces


def trimesh_to_polydata(mesh: trimesh.Trimesh):
    """The triangle surface ``mesh`` as a pyvista PolyData (same points and faces)."""
    import pyvista as pv  # here, not at the top: keeps pyvista out of `import bvn_plan`

    return pv.PolyData(mesh.vertices, np.hstack([np.full((len(mesh.faces), 1), 3), mesh.faces]).ravel())


def polydata_to_trimesh(surface, process: bool = False, vertex_dtype=float) -> trimesh.Trimesh:
    """The triangles of a pyvista PolyData as a trimesh (mm as given). ``vertex_dtype``: the
    precision the points are rounded to first (float32 gives reproducible bytes); ``process``: let
    trimesh merge coincident vertices."""
    faces = surface.faces.reshape(-1, 4)[:, 1:]
    points = np.asarray(surface.points, dtype=vertex_dtype).astype(np.float64)
    return trimesh.Trimesh(points, faces, process=process)


def taubin_smooth(points: np.ndarray, faces: np.ndarray, iterations: int) -> np.ndarray:
    """``points`` (mm) after ``iterations`` windowed-sinc smoothing steps of the triangle surface
    (VTK, pass band :data:`SINC_PASS_BAND`, normalised coordinates): barely shrinks the surface."""
    surface = trimesh_to_polydata(trimesh.Trimesh(points, faces, process=False)).smooth_taubin(
        n_iter=int(iterations), pass_band=SINC_PASS_BAND, normalize_coordinates=True)
    return np.asarray(surface.points, dtype=float)


def decimate(surface, faces_wanted: int, preserve_topology: bool = False):
    """The pyvista surface thinned to about ``faces_wanted`` faces and cleaned: VTK quadric
    decimation, or with ``preserve_topology`` the topology-preserving decimation (no splitting,
    feature angle 45 deg)."""
    reduction = 1.0 - faces_wanted / surface.n_cells
    if preserve_topology:
        thin = surface.decimate_pro(reduction, preserve_topology=True, splitting=False, feature_angle=45.0)
    else:
        thin = surface.decimate(reduction)
    return thin.clean()
