"""The common lesion interface: exact spheroid geometry, two-probe unions, coverage of the nerve."""

import numpy as np
import pytest
import trimesh

from bvn_plan.device import DeviceProfile
from bvn_plan.errors import InputError
from bvn_plan.lesion import EllipsoidLesion, FieldLesion, Lesion, UnionLesion, coverage_report


def brute_force_distance(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    return np.abs(trimesh.proximity.closest_point(mesh, points)[1])


def test_profile_lesion_sits_proximal_to_tip_along_the_probe():
    tip, direction = np.array([10.0, -4.0, 60.0]), np.array([0.0, 3.0, 4.0])   # not unit on purpose
    lesion = EllipsoidLesion.from_probe(tip, direction, DeviceProfile())
    d = direction / 5.0
    assert np.allclose(lesion.centre, tip - 3.0 * d)
    # 14 mm along: it reaches 4 mm past the tip and 10 mm behind it; 10 mm across
    assert lesion.contains(tip + 3.9 * d)[0] and not lesion.contains(tip + 4.1 * d)[0]
    assert lesion.contains(tip - 9.9 * d)[0] and not lesion.contains(tip - 10.1 * d)[0]
    side = np.cross(d, [1.0, 0.0, 0.0])
    assert lesion.contains(lesion.centre + 4.9 * side)[0] and not lesion.contains(lesion.centre + 5.1 * side)[0]
    assert lesion.extent_along() == pytest.approx(14.0) and lesion.extent_across() == pytest.approx(10.0)
    assert lesion.volume == pytest.approx(4 / 3 * np.pi * 7 * 5 * 5)


@pytest.mark.parametrize("length, diameter", [(14.0, 10.0), (6.0, 10.0), (10.0, 10.0)])
def test_spheroid_signed_distance_matches_a_fine_mesh(length, diameter):
    lesion = EllipsoidLesion([1.0, 2.0, 3.0], [1.0, 1.0, 0.0], length, diameter)
    points = lesion.centre + np.random.default_rng(1).normal(scale=6.0, size=(150, 3))
    sd = lesion.signed_distance(points)
    fine = lesion.surface_mesh(subdivisions=5)
    assert np.abs(np.abs(sd) - brute_force_distance(fine, points)).max() < 0.02   # mesh chord error ~ 0.01 mm
    assert np.array_equal(sd < 0, lesion.contains(points))
    # sphere case against the closed form
    sphere = EllipsoidLesion([0, 0, 0], [0, 0, 1], 8.0, 8.0)
    assert np.allclose(sphere.signed_distance(points - lesion.centre), np.linalg.norm(points - lesion.centre, axis=1) - 4.0)


def test_generic_extent_and_volume_from_mesh_agree_with_closed_form():
    lesion = EllipsoidLesion([0, 0, 0], [0.0, 0.6, 0.8], 14.0, 10.0)
    assert Lesion.extent_along(lesion) == pytest.approx(14.0, abs=1e-6)
    assert Lesion.extent_across(lesion) == pytest.approx(10.0, abs=0.05)
    assert abs(lesion.surface_mesh().volume - lesion.volume) / lesion.volume < 0.01
    # extent along another axis: the spheroid is 10 mm wide perpendicular to its axis
    assert lesion.extent_along([0.0, 0.8, -0.6]) == pytest.approx(10.0, abs=0.05)


def test_bipedicular_union_covers_both_and_measures_the_merged_zone():
    left = EllipsoidLesion.from_probe([0.0, 3.0, 0.0], [0.6, 0.8, 0.0])      # two probes converging
    right = EllipsoidLesion.from_probe([0.0, -3.0, 0.0], [0.6, -0.8, 0.0])
    union = UnionLesion([left, right])
    points = np.random.default_rng(2).uniform(-14, 14, size=(5000, 3))
    assert np.array_equal(union.contains(points), left.contains(points) | right.contains(points))
    outside = ~union.contains(points)
    exact = brute_force_distance(union.surface_mesh(), points[outside][:300])
    assert np.abs(union.signed_distance(points[outside][:300]) - exact).max() < 0.05
    inclusion_exclusion = left.volume + right.volume - np.mean(left.contains(points) & right.contains(points)) * 28 ** 3
    assert union.volume == pytest.approx(inclusion_exclusion, rel=0.05)
    assert union.volume < left.volume + right.volume
    assert np.allclose(union.axis, [1.0, 0.0, 0.0])


def test_coverage_of_terminus_and_nerve_path():
    lesion = EllipsoidLesion([0, 0, 0], [0, 1, 0], 14.0, 10.0)   # spans y -7..7
    assert lesion.covers([0, 5, 0]) and not lesion.covers([0, 5, 0], margin_mm=3.0)
    assert lesion.covers([0, 2, 0], margin_mm=3.0)
    # a path from y = -17 to y = 3: inside from y = -7, i.e. 10 of 20 mm
    assert lesion.path_coverage([0, -17, 0], [0, 3, 0]) == pytest.approx(0.5, abs=0.01)
    sphere = EllipsoidLesion([0, 0, 0], [0, 1, 0], 14.0, 14.0)
    report = coverage_report(sphere, terminus=[0, 3, 0], foramen=[0, -17, 0], margin_mm=3.0)
    assert report["terminus_depth_mm"] == pytest.approx(4.0)
    assert report["terminus_covered"] and report["nerve_path_coverage"] == pytest.approx(0.5, abs=0.01)
    assert not coverage_report(sphere, [0, 6, 0], [0, -17, 0], margin_mm=3.0)["terminus_covered"]


def test_field_lesion_from_a_sphere_level_set():
    def level(points):   # >= 0 inside a 4 mm sphere about (1, 1, 1)
        return 4.0 - np.linalg.norm(points - 1.0, axis=1)

    lesion = FieldLesion.from_grid(level, [-5.0, -5.0, -5.0], np.eye(3), 0.25, (49, 49, 49), [0, 0, 1])
    assert lesion.volume == pytest.approx(4 / 3 * np.pi * 64, rel=0.01)
    assert lesion.extent_across() == pytest.approx(8.0, abs=0.1)
    points = np.random.default_rng(3).uniform(-6, 8, size=(500, 3))
    assert np.abs(lesion.signed_distance(points) + level(points)).max() < 0.15


@pytest.mark.parametrize("make", [
    lambda: EllipsoidLesion([0, 0, 0], [0, 0, 0], 10, 10),
    lambda: EllipsoidLesion([0, 0, 0], [0, 0, 1], -1, 10),
    lambda: EllipsoidLesion([0, 0, np.nan], [0, 0, 1], 10, 10),
    lambda: EllipsoidLesion([0, 0, 0], [0, 0, 1], 10, 10).contains(np.zeros((4, 2))),
    lambda: UnionLesion([]),
])
def test_bad_input_raises_input_error(make):
    with pytest.raises(InputError):
        make()
