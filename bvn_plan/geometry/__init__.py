"""Geometry on triangle meshes and points, with no anatomy in it (mm, any frame): validated
vectors and bases, exact line crossings, voxelization, mask and field surfaces (marching cubes,
smoothing, trimesh <-> VTK), self-intersections, and the exact point-mesh distances the safety
checker is built on."""

from .crossings import gap_around, interval_around, line_crossings
from .distance import SignedDistance, SurfaceDistance, SurfaceGroup
from .meshing import decimate, field_surface, mask_surface, polydata_to_trimesh, taubin_smooth, trimesh_to_polydata
from .self_intersection import self_intersections
from .vectors import as_point, as_points, cross3, perpendicular_basis, perpendicular_part, unit_vector
from .voxelize import VoxelGrid, grid_cover, voxelize

__all__ = [
    "SignedDistance", "SurfaceDistance", "SurfaceGroup", "VoxelGrid", "as_point", "as_points", "cross3", "decimate",
    "field_surface", "gap_around", "grid_cover", "interval_around", "line_crossings", "mask_surface",
    "perpendicular_basis", "perpendicular_part", "polydata_to_trimesh", "self_intersections", "taubin_smooth",
    "trimesh_to_polydata", "unit_vector", "voxelize",
]
