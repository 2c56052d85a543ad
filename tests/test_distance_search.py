"""The compiled tree behind the checker's exact distances and pruned minima, and the checker's lesion samples."""

import numpy as np
import trimesh

from scipy import ndimage

from bvn_plan.geometry.distance import EDT_REACH_MM, SignedDistance, SurfaceDistance, SurfaceGroup, _marked_distance, _Tree
from bvn_plan.lesion import EllipsoidLesion
from bvn_plan.planning import LESION_CHECK_SUBDIVISIONS, lesion_check_points


def test_tree_distances_are_exact_and_signed_on_faces_edges_and_corners(vhm_dir):
    mesh = trimesh.load(vhm_dir / "L4_whole.stl")
    rng = np.random.default_rng(0)
    # random points about the bone, and points just off its corners and edge midpoints, where the
    # nearest point is a vertex or an edge and the sign needs that feature's pseudo-normal
    v = rng.integers(len(mesh.vertices), size=300)
    e = mesh.edges_unique[rng.integers(len(mesh.edges_unique), size=300)]
    middle = mesh.vertices[e].mean(axis=1)
    normal = mesh.vertex_normals[e].sum(axis=1)
    normal /= np.linalg.norm(normal, axis=1)[:, None]
    step = rng.choice([-1.0, 1.0], size=(600, 1)) * rng.uniform(0.01, 0.3, (600, 1))
    points = np.vstack([mesh.bounds[0] - 20 + rng.random((300, 3)) * (mesh.extents + 40),
                        np.vstack([mesh.vertices[v] + mesh.vertex_normals[v] * step[:300],
                                   middle + normal * step[300:]])])
    _, exact, _ = trimesh.proximity.closest_point(mesh, points)
    tree = _Tree(mesh)
    found = tree.unsigned(points)
    # trimesh's candidate faces can miss the nearest by under a micrometre; the tree is never farther
    np.testing.assert_allclose(found, exact, atol=1e-6)
    assert (found <= exact + 1e-12).all()
    inside = mesh.contains(points)
    clear = exact > 1e-6  # on the surface the sign is either
    assert inside[clear].any() and (~inside[clear]).any()
    np.testing.assert_array_equal(tree.signed(points)[clear] < 0, inside[clear])
    assert tree.unsigned(np.zeros((0, 3))).shape == (0,) and tree.signed(np.zeros((0, 3))).shape == (0,)


def test_pruned_minima_match_the_exact_minimum_over_every_point(vhm_dir):
    mesh = trimesh.load(vhm_dir / "L4_whole.stl")
    rng = np.random.default_rng(1)
    points = mesh.bounds[0] - 5 + rng.random((2000, 3)) * (mesh.extents + 10)
    offset = rng.uniform(0.0, 2.0, len(points))
    _, exact, _ = trimesh.proximity.closest_point(mesh, points)
    signed = np.where(mesh.contains(points), -exact, exact)
    for sign in (1.0, -1.0):
        value, i = SignedDistance(mesh).minimum(points, offset, sign=sign)
        assert abs(value - np.min(sign * signed - offset)) < 1e-6
        assert abs(sign * signed[i] - offset[i] - value) < 1e-6
    patch = mesh.submesh([np.arange(0, len(mesh.faces), 5)], append=True)  # open and scattered
    _, patch_exact, _ = trimesh.proximity.closest_point(patch, points)
    value, i = SurfaceDistance(patch).minimum(points, offset)
    assert abs(value - np.min(patch_exact - offset)) < 1e-6 and abs(patch_exact[i] - offset[i] - value) < 1e-6


def test_signed_minimum_outside_a_convex_surface_whose_hull_bound_is_tight():
    # outside a convex mesh the hull planes bound the distance exactly: the minimum must still be
    # found (not pruned by a bound that rounds above its own value) at the right point
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=10.0)
    rng = np.random.default_rng(3)
    # a thin shell about 4 mm out, beyond the grid's band so ball searches decide: many near-equal distances
    directions = rng.normal(size=(3000, 3))
    points = directions / np.linalg.norm(directions, axis=1)[:, None] * rng.uniform(14.0, 14.01, (3000, 1))
    _, exact, _ = trimesh.proximity.closest_point(mesh, points)
    value, i = SignedDistance(mesh).minimum(points, 0.5)
    assert abs(value - (exact.min() - 0.5)) < 1e-9 and i == int(np.argmin(exact))


def test_surface_group_sharing_grid_places_match_each_exact_minimum(vhm_dir):
    mesh = trimesh.load(vhm_dir / "L4_whole.stl")
    rng = np.random.default_rng(2)
    points = mesh.bounds[0] + rng.random((1500, 3)) * mesh.extents
    offset = rng.uniform(0.0, 2.0, len(points))
    upper = np.flatnonzero(mesh.triangles_center[:, 2] > np.median(mesh.triangles_center[:, 2]))
    patches = [mesh.submesh([faces], append=True) for faces in (np.arange(0, len(mesh.faces), 7), upper)]
    # both patches with bound grids spanning the vertebra's box (one geometry), then the upper one with its own grid
    surfaces = [SurfaceDistance(p, covers=mesh.bounds) for p in patches] + [SurfaceDistance(patches[1])]
    assert surfaces[2]._bound.shape != surfaces[0]._bound.shape
    for surface, patch, (value, i) in zip(surfaces, patches + patches[1:], SurfaceGroup(surfaces).minima(points, offset)):
        _, exact, _ = trimesh.proximity.closest_point(patch, points)
        assert abs(value - np.min(exact - offset)) < 1e-6 and abs(exact[i] - offset[i] - value) < 1e-6


def test_ellipsoid_lesion_samples_are_its_surface_mesh_vertices():
    lesion = EllipsoidLesion([3.0, -2.0, 140.0], [0.3, -0.8, 0.2], 14.0, 9.0)
    expected = lesion.surface_mesh(subdivisions=LESION_CHECK_SUBDIVISIONS).vertices
    np.testing.assert_array_equal(lesion_check_points(lesion), expected)


def _lesions_inside(mesh, count, rng):
    """Random ellipsoid lesions (mm) centred 1-15 mm inside the mesh below random vertices."""
    for _ in range(count):
        v = rng.integers(len(mesh.vertices))
        centre = mesh.vertices[v] - mesh.vertex_normals[v] * rng.uniform(1.0, 15.0)
        yield EllipsoidLesion(centre, rng.normal(size=3), rng.uniform(8.0, 16.0), rng.uniform(6.0, 12.0))


def test_lesion_minima_on_an_open_patch_are_exact(vhm_dir):
    mesh = trimesh.load(vhm_dir / "L2_whole.stl")
    upper = np.flatnonzero(mesh.triangles_center[:, 2] > np.median(mesh.triangles_center[:, 2]))
    patch = mesh.submesh([upper], append=True)  # open, like the checker's regions
    surface = SurfaceDistance(patch, covers=mesh.bounds)
    rng = np.random.default_rng(4)
    for lesion in _lesions_inside(patch, 12, rng):
        points = lesion_check_points(lesion)
        _, exact, _ = trimesh.proximity.closest_point(patch, points)
        assert (surface._bound(points) <= exact).all()  # the grid bound is a lower bound
        value, i = surface.minimum(points)
        assert abs(value - exact.min()) < 1e-9 and abs(exact[i] - value) < 1e-9


def test_signed_grid_read_at_shared_places_matches_scipy_inside_and_beyond_the_grid(vhm_dir):
    mesh = trimesh.load(vhm_dir / "L2_whole.stl")
    bone = SignedDistance(mesh)
    rng = np.random.default_rng(6)
    points = mesh.bounds[0] - 8 + rng.random((3000, 3)) * (mesh.extents + 16)  # some beyond the grid
    places = bone.places(points)
    assert places.key == bone._key  # the bound grid's nodes are the signed grid's voxels: the shortcut is taken
    assert (~places.inside).any() and places.inside.any()
    # scipy returns the float32 grid's type; the shared read sums in float64
    for read, expected in zip(bone._interpolate(points, places), bone._read(points)):
        np.testing.assert_allclose(read, expected, rtol=0, atol=1e-5)


def test_cropped_distance_transform_is_exact_near_the_marks_and_a_lower_bound_beyond():
    rng = np.random.default_rng(17)
    for _ in range(10):
        shape = tuple(int(n) for n in rng.integers(30, 70, 3))
        centre, size = rng.integers(0, shape), rng.integers(1, 12, 3)
        marks = np.clip(centre + rng.integers(-size, size + 1, (int(rng.integers(1, 150)), 3)), 0, np.array(shape) - 1)
        empty = np.ones(shape, bool)
        empty[tuple(marks.T)] = False
        full = ndimage.distance_transform_edt(empty)
        cropped = _marked_distance(shape, marks)
        near = full <= EDT_REACH_MM
        np.testing.assert_allclose(cropped[near], full[near], atol=1e-12)
        assert (cropped <= full + 1e-12).all()  # a lower bound everywhere, the bound grid's premise
        assert (cropped[~near] >= EDT_REACH_MM).all()  # beyond the reach: at least the reach
