"""The safety checker on geometry with known answers (a box 'body' and a box 'canal')."""

import json

import numpy as np
import pytest
import trimesh

from bvn_plan import InputError
from bvn_plan.paths import InstrumentPath
from bvn_plan.planning import RuleSet, SafetyZones, check_path, gertzbein_robbins_grade
from boxes import box_safety_zones  # tests/boxes.py

R = 1.7  # 10 G introducer radius, mm


@pytest.fixture(scope="module")
def zones():
    """Body x -20..20 (right), y -15..15 (anterior), z -13..13 (superior); canal behind it."""
    return box_safety_zones()


def _exact_min(mesh, points, signed=False):
    closest, dist, _ = trimesh.proximity.closest_point(mesh, points)
    if signed:
        dist = np.where(mesh.contains(points), -dist, dist)
    return dist


CLEAN = InstrumentPath.straight([30, -40, 2], [0, 3, 0], R)


def test_clean_path_passes_with_reasons(zones):
    result = check_path(zones, CLEAN)
    assert result.verdict == "pass", result.reasons
    assert result.intraosseous and result.gertzbein_robbins_grade == 0
    assert result.bone_entry[1] == pytest.approx(-15, abs=0.5)


def test_clearances_are_exact_mesh_distances(zones):
    result = check_path(zones, CLEAN)
    samples = CLEAN.sample()
    points, depth = samples.points, samples.depth_mm
    canal = _exact_min(zones.landmarks.canal_mesh, points, signed=True) - R
    assert result.clearances["spinal_canal:instrument"].clearance_mm == pytest.approx(canal.min(), abs=0.1)
    after = points[depth - result.bone_entry_depth_mm >= SafetyZones.ENTRY_ZONE_MM]
    depth_in_bone = -_exact_min(zones.mesh, after, signed=True) - R
    assert result.clearances["bone:instrument"].clearance_mm == pytest.approx(depth_in_bone.min(), abs=0.1)
    # analytic: distance to the planes z = +-13 and y = 15 from the deepest samples
    assert result.clearances["superior_endplate:instrument"].clearance_mm == pytest.approx((13 - after[:, 2]).min() - R, abs=0.1)
    assert result.clearances["inferior_endplate:instrument"].clearance_mm == pytest.approx((after[:, 2] + 13).min() - R, abs=0.1)
    assert result.clearances["anterior_cortex:instrument"].clearance_mm == pytest.approx(15 - 3 - R, abs=0.1)
    assert result.clearances["lateral_cortex:instrument"].clearance_mm == pytest.approx((20 - np.abs(after[:, 0])).min() - R, abs=0.1)


@pytest.mark.parametrize("breach,grade", [(1.0, 1), (3.0, 2), (5.0, 3)])
def test_medial_breach_is_graded(zones, breach, grade):
    # the instrument surface reaches `breach` mm into the canal (canal's right wall is x = 10)
    x = 10 + R - breach
    path = InstrumentPath.straight([x, -40, 0], [x, 5, 0], R)
    result = check_path(zones, path)
    assert result.verdict == "fail"
    assert result.medial_breach_mm == pytest.approx(breach, abs=0.05)
    assert result.gertzbein_robbins_grade == grade
    assert any(f"Gertzbein-Robbins grade {grade}" in r and "medial pedicle wall" in r for r in result.reasons)


def test_grades():
    assert [gertzbein_robbins_grade(x) for x in (0, 1.9, 2.0, 4.0, 4.1)] == [0, 1, 2, 2, 3]


def test_endplate_and_anterior_breaches_fail_with_the_right_reason(zones):
    up = check_path(zones, InstrumentPath.straight([30, -40, 2], [0, 3, 12.5], R))
    assert up.verdict == "fail" and any("superior endplate" in r for r in up.reasons)
    through = check_path(zones, InstrumentPath.straight([30, -40, 0], [0, 17, 0], R))
    assert through.verdict == "fail" and not through.intraosseous
    assert any("anterior cortex" in r for r in through.reasons)


def test_lesion_near_the_canal_fails_and_far_passes(zones):
    near = trimesh.creation.icosphere(subdivisions=3, radius=5.0)
    near.apply_translation([0, -15 + 5 + 4, 0])  # 4 mm from the posterior wall / canal
    result = check_path(zones, CLEAN, lesion=near)
    assert result.verdict == "fail"
    assert result.clearances["spinal_canal:lesion"].clearance_mm == pytest.approx(5.0, abs=0.1)
    assert any("ablation zone" in r and "spinal canal" in r for r in result.reasons)
    far = trimesh.creation.icosphere(subdivisions=3, radius=5.0)
    far.apply_translation([0, 3, 0])
    assert check_path(zones, CLEAN, lesion=far).verdict == "pass"


def test_rules_are_editable_and_round_trip(zones):
    near = trimesh.creation.icosphere(subdivisions=3, radius=5.0)
    near.apply_translation([0, -6, 0])
    relaxed = RuleSet().with_changes("canal_lesion", margin_mm=4.0)
    assert check_path(zones, CLEAN, lesion=near, rules=relaxed).verdict == "pass"
    assert RuleSet.from_json(relaxed.to_json()) == relaxed
    assert json.loads(RuleSet().to_json())[0]["source"]
    with pytest.raises(InputError):
        RuleSet().with_changes("no_such_rule", margin_mm=1)


def test_bad_trajectories_get_clear_errors(zones):
    with pytest.raises(InputError, match="zero length"):
        InstrumentPath.straight([1, 2, 3], [1, 2, 3], R)
    with pytest.raises(InputError, match="NaN"):
        InstrumentPath.straight([np.nan, 2, 3], [1, 2, 3], R)
    with pytest.raises(InputError, match="tighter than the device allows"):
        InstrumentPath.straight_then_arc([30, -40, 0], [10, -5, 0], [-1, 0, 0], 8.0, 60, R, min_arc_radius_mm=15.0)
    with pytest.raises(InputError, match="never enters"):
        check_path(zones, InstrumentPath.straight([100, 0, 0], [80, 0, 0], R))
    with pytest.raises(InputError, match="outside the vertebra"):
        check_path(zones, InstrumentPath.straight([0, 0, 0], [0, 60, 0], R))


def test_curved_path_geometry():
    path = InstrumentPath.straight_then_arc([0, -40, 0], [0, -10, 0], [1, 0, 0], 15.0, 90, R)
    # a quarter circle of radius 15 bending toward +x ends 15 mm ahead and 15 mm to the side
    np.testing.assert_allclose(path.tip, [15, 5, 0], atol=1e-9)
    np.testing.assert_allclose(path.tip_direction, [1, 0, 0], atol=0.02)
    assert path.length == pytest.approx(30 + np.pi * 15 / 2, abs=0.01)


def test_instrument_wall_through_the_cortex_fails_even_with_its_axis_in_bone(zones):
    # axis 1 mm inside the right lateral wall (x = 20): the 1.7 mm wall pokes 0.7 mm out
    path = InstrumentPath.straight([19, -40, 0], [19, 10, 0], R)
    result = check_path(zones, path)
    assert result.intraosseous  # the axis stays in bone
    assert result.verdict == "fail"
    assert result.clearances["bone:instrument"].clearance_mm == pytest.approx(-0.7, abs=0.05)
    assert any("instrument wall breaches the lateral cortex" in r for r in result.reasons), result.reasons


def test_a_lesion_reaching_into_the_canal_reports_its_negative_clearance(zones):
    """The pruning of candidate points must keep points inside the canal (negative distances)."""
    lesion = trimesh.creation.icosphere(subdivisions=3, radius=5.0)
    lesion.apply_translation([0, -15 - 2, 0])  # centre 1 mm inside the canal's front face (y = -16)
    result = check_path(zones, CLEAN, lesion=lesion)
    points = lesion.vertices
    _, dist, _ = trimesh.proximity.closest_point(zones.landmarks.canal_mesh, points)
    exact = np.where(zones.landmarks.canal_mesh.contains(points), -dist, dist).min()
    assert exact < 0
    assert result.clearances["spinal_canal:lesion"].clearance_mm == pytest.approx(exact, abs=0.1)
    assert result.verdict == "fail"


def test_the_exiting_root_corridor_hangs_under_a_plausible_pedicle_height(zones):
    """Box L4 (pedicle 14 mm tall, centre z = 3): the corridor's capsule starts gap + radius below the
    pedicle's inferior edge. A pedicle read 30 mm tall (a surface filling the notches) is taken at
    the prior's height + 3 SD, so the corridor moves up toward the pedicle's centre, not down."""
    from dataclasses import replace

    from bvn_plan.levels import morphometry
    from bvn_plan.planning.safety import ExitingRootCorridor

    root = ExitingRootCorridor()
    below = root.gap_mm + root.radius_mm
    assert [a[2] for a, _ in zones.root_segments] == pytest.approx([3.0 - 7.0 - below] * 2)
    prior = morphometry("L4")
    tallest = prior.pedicle_height_mm + root.max_height_sd * prior.sd("pedicle_height_mm")
    tall = {side: replace(p, isthmus_height_mm=30.0) for side, p in zones.landmarks.pedicles.items()}
    tall_zones = SafetyZones(zones.mesh, replace(zones.landmarks, pedicles=tall))
    assert [a[2] for a, _ in tall_zones.root_segments] == pytest.approx([3.0 - tallest / 2 - below] * 2)
    assert 3.0 - tallest / 2 - below > 3.0 - 15.0 - below
