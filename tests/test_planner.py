"""Trajectory planning on synthetic ground truth and on real vertebrae (VHM, TotalSegmentator).

Every plan is judged again here, independently of the planner's own numbers: the lesion's distance
to the canal from trimesh on the exact spheroid surface, the terminus depth inside the lesion, the
cannula arc geometry, the passage through the pedicle isthmus.

``BVN_PLAN_VARIANTS`` sets how many random synthetic variants are planned (default all 50 of issue
18's acceptance, about 4 s each, two worker processes at a time; fewer for a quick local run). Synthetic vertebrae are sampled at
VOXEL_MM (generator default 0.6 mm) to keep that affordable.
"""

import dataclasses
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
import json
import os
import warnings

import numpy as np
import pytest

from bvn_plan import InputError
from bvn_plan.anatomy import find_anatomy, reflect
from bvn_plan.device import DeviceProfile
from bvn_plan.workflow import load_labelmap
from bvn_plan.landmarks import TerminusParameters
from bvn_plan.paths import InstrumentPath
from bvn_plan.planning import (MIRROR_CENTRING_TOLERANCE_MM, PEDICLE_CONFIDENCE_MIN, PlannerSettings, RuleSet,
                               SafetyZones, check_path, plan_level, write_plan)
from bvn_plan.synthetic import PART_NAMES, synthesize
from bvn_plan.vertebra import Vertebra
from zone_checks import brute_force_reach, canal_clearance, canal_distances, monte_carlo_zone_coverage

VARIANTS = int(os.environ.get("BVN_PLAN_VARIANTS", "50"))
VOXEL_MM = 0.8
TRANSPEDICULAR = ("transpedicular",)
SETTINGS = PlannerSettings()
DEVICE = DeviceProfile()
CANAL_MARGIN = RuleSet()["canal_lesion"].margin_mm
#: Farthest tip-to-target distance the default rules allow in the levels measured here (the
#: 10 mm canal margin pushes the tip up to 4.5 mm in front of the terminus at synthetic L2; see
#: the planner docstring); the target tolerance of 2 mm is reached where the canal is far enough.
ACHIEVABLE_TIP_MM = 5.0
#: The zone's share inside the lesion from its 1 mm lattice against 20000 random points of the
#: zone built by the test (binomial sd < 0.004; the lattice's error about its cell size).
ZONE_COVERAGE_TOLERANCE = 0.04


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def assert_sound_transpedicular(level_plan, side):
    """The acceptance of issue 5 for one side, checked independently of the planner."""
    lm = level_plan.landmarks
    result = level_plan.result("transpedicular", side)
    assert result.plan is not None, f"{lm.level} {side}: {result.blocked}"
    plan = result.plan
    check = plan.check
    assert check.verdict == "pass", check.reasons
    assert check.intraosseous and check.gertzbein_robbins_grade == 0 and check.medial_breach_mm == 0
    # lesion keeps the canal margin: exact spheroid surface (2562 points) against the canal mesh
    lesion_surface = plan.lesion.surface_mesh(subdivisions=4).vertices
    assert canal_clearance(lm.canal_mesh, lesion_surface) >= CANAL_MARGIN - 0.05
    assert_target_covered(level_plan, plan)
    assert plan.tip_to_target_mm <= ACHIEVABLE_TIP_MM
    # the cannula: device radius, at most its maximum arc, tangent to the introducer, ends at the tip
    path = plan.path
    assert path.arc.radius_mm == DEVICE.cannula_radius_mm and 0 < path.arc.angle_deg <= DEVICE.cannula_max_arc_deg
    centre = path.arc_start + path.arc.radius_mm * path.arc.bend_direction
    assert np.allclose(np.linalg.norm(path.vertices[1:] - centre, axis=1), path.arc.radius_mm, atol=1e-6)
    assert np.linalg.norm(path.tip - centre) == pytest.approx(path.arc.radius_mm, abs=1e-6)
    # the closed-form arc reaches its tip target exactly: a point of the 0.5 mm tip lattice around
    # the terminus
    offset = 2 * (lm.frame.to_local(path.tip) - lm.frame.to_local(plan.target_point))
    assert np.abs(offset - np.round(offset)).max() < 1e-6
    # the introducer passes through the isthmus (within the off-centre offsets) and bends past the wall
    ped = lm.pedicles[side]
    axis = (path.arc_start - path.start) / np.linalg.norm(path.arc_start - path.start)
    rel = ped.isthmus_centre - path.start
    # (a mirror image of the other side's plan may miss by the found pedicles' left/right difference)
    assert np.linalg.norm(rel - (rel @ axis) * axis) <= SETTINGS.isthmus_offset_mm + MIRROR_CENTRING_TOLERANCE_MM + 1e-6
    past = (path.arc_start - ped.body_junction) @ lm.frame.anterior
    assert SETTINGS.arc_start_past_wall_mm[0] - 1e-6 <= past <= SETTINGS.arc_start_past_wall_mm[1] + 1e-6
    return plan


def assert_target_covered(level_plan, plan):
    """The target of issue 18, checked without the planner's numbers: the nominal terminus covered
    by the coverage margin, or, only when no lesion keeping the canal margin can do that, a zone point
    the canal margin allows; the zone and nerve-path coverage and the terminus's distance outside
    the lesion as measured here."""
    lm, lesion = level_plan.landmarks, plan.lesion
    margin = SETTINGS.coverage_margin_mm
    assert -lesion.signed_distance(plan.target_point)[0] >= margin - 1e-6
    terminus_depth = -float(lesion.signed_distance(lm.bvn_terminus)[0])
    if plan.target_kind == "terminus":
        assert np.array_equal(plan.target_point, lm.bvn_terminus) and terminus_depth >= margin - 1e-6
        assert plan.why_not_terminus == ""
    else:
        assert plan.target_kind == "zone" and plan.why_not_terminus
        assert np.min(np.linalg.norm(level_plan.zone.points - plan.target_point, axis=1)) < 1e-9
        assert canal_distances(lm.canal_mesh, plan.target_point[None])[0] >= CANAL_MARGIN + margin - 0.05
    assert plan.terminus_outside_mm == pytest.approx(max(0.0, -terminus_depth), abs=1e-9)
    measured = monte_carlo_zone_coverage(lm, SETTINGS.target_zone, lesion)
    assert abs(plan.zone_coverage - measured) <= ZONE_COVERAGE_TOLERANCE, (plan.zone_coverage, measured)
    t = np.linspace(0, 1, 400)[:, None]
    path = lm.basivertebral_foramen + t * (lm.bvn_terminus - lm.basivertebral_foramen)
    assert plan.nerve_path_coverage == pytest.approx(lesion.contains(path).mean(), abs=0.01)


def assert_refused_for_the_zone(level_plan, side, approach="transpedicular", rules=RuleSet()):
    """A refusal for the target (no lesion that keeps the canal margin reaches the zone) whose
    numbers hold when measured here and that a brute-force search confirms (tips on a 1 mm grid,
    directions every 5 deg; tests/zone_checks.py)."""
    lm = level_plan.landmarks
    result = level_plan.result(approach, side)
    numbers = result.zone_refusal
    assert result.plan is None and numbers is not None, (side, result.blocked)
    margin = rules["canal_lesion"].margin_mm
    distances = canal_distances(lm.canal_mesh, level_plan.zone.points)
    assert numbers["needed_mm"] == pytest.approx(margin + SETTINGS.coverage_margin_mm)
    assert numbers["zone_farthest_from_canal_mm"] == pytest.approx(distances.max(), abs=0.05)
    assert numbers["zone_farthest_from_canal_mm"] < numbers["needed_mm"]
    assert numbers["terminus_to_canal_mm"] == pytest.approx(canal_distances(lm.canal_mesh, lm.bvn_terminus[None])[0],
                                                            abs=0.05)
    assert numbers["zone_coverage"] == 0 and numbers["nerve_path_coverage"] == 0
    assert f"farthest from the spinal canal is {numbers['zone_farthest_from_canal_mm']:.1f} mm" in result.blocked[0]
    found = brute_force_reach(lm, level_plan.zone.points, level_plan.device, margin, SETTINGS.coverage_margin_mm)
    assert found is None, f"a lesion keeping the canal margin reaches the zone: {found}"


def assert_planned_or_refused_for_the_zone(level_plan, side):
    """A sound plan, or a refusal for the target that holds."""
    if level_plan.result("transpedicular", side).plan is not None:
        return assert_sound_transpedicular(level_plan, side)
    assert_refused_for_the_zone(level_plan, side)
    return None


# ---------------------------------------------------------------------------------------------
# Synthetic vertebrae: ground-truth landmarks


@pytest.fixture(scope="module")
def synthetic_l4():
    sv = synthesize("L4", voxel_mm=VOXEL_MM)
    zones = SafetyZones(sv.mesh, sv.landmarks)
    return sv, zones, plan_level(sv.vertebra, sv.landmarks, zones=zones)


@pytest.mark.parametrize("osteoporotic", [False, True])
@pytest.mark.parametrize("level", ["L1", "L2", "L3", "L4", "L5", "S1"])
def test_synthetic_levels_plan_both_sides(level, osteoporotic):
    """Every synthetic level, normal and osteoporotic (the S1 segment: target at the body centre,
    sacral ala): a sound plan on both sides (measured: none is refused, see the report of issue 18)."""
    sv = synthesize(level, osteoporotic=osteoporotic, voxel_mm=VOXEL_MM)
    level_plan = plan_level(sv.vertebra, sv.landmarks, approaches=TRANSPEDICULAR)
    for side in ("right", "left"):
        plan = assert_sound_transpedicular(level_plan, side)
        # the skin-side passage enters the bone on this side's pedicle or the posterior arch behind it
        face = sv.mesh.nearest.on_surface([plan.check.bone_entry])[2][0]
        assert PART_NAMES[sv.face_labels[face]] in (f"{side}_pedicle", "posterior_arch")


def test_synthetic_l4_every_approach(synthetic_l4):
    sv, zones, level_plan = synthetic_l4
    for side in ("right", "left"):
        assert_sound_transpedicular(level_plan, side)
        extra = level_plan.result("extrapedicular", side).plan
        # the introducer enters the extrapedicular window; the curved cannula reaches the midline
        assert extra is not None and extra.check.entry["window"] == "extrapedicular"
        # it enters through the lateral body wall, not through the pedicle
        face = sv.mesh.nearest.on_surface([extra.check.bone_entry])[2][0]
        assert PART_NAMES[sv.face_labels[face]] == "body"
        assert face in set(sv.landmarks.face_regions["lateral_cortex"].tolist())
        assert extra.check.verdict != "fail"
    # every returned plan was judged by the checker and none fails
    plans = [p for r in level_plan.results for p in ([r.plan] if r.plan else []) + r.alternatives]
    assert plans and all(p.check.verdict != "fail" for p in plans)
    assert level_plan.recommendation.approach == "transpedicular"
    assert any("Liu 2019" in reason for reason in level_plan.recommendation_reasons)


#: Of the 50 random variants at most this many may be refused (issue 18). A refusal is only ever
#: one the zone proves (the variant test below), so counting the variants whose zone no lesion
#: keeping the canal margin can reach counts the refusals (measured with BVN_PLAN_VARIANTS=50: none
#: of the 50 refused on either side).
MOST_REFUSED_OF_50 = 5
VARIANT_LEVELS = ["L1", "L2", "L3", "L4", "L5", "S1"]


def _variant(seed):
    return synthesize(VARIANT_LEVELS[seed % 6], vary=True, seed=seed, osteoporotic=bool(seed % 2), voxel_mm=VOXEL_MM)


def _judge_variant(seed):
    """Plan variant ``seed`` and hold both sides to the acceptance (a sound plan, or a refusal the
    zone proves); its failure message ("" when sound) and its zone's farthest distance from the
    canal (mm). Runs in a worker process, on one BLAS thread."""
    from threadpoolctl import threadpool_limits

    from bvn_plan.anatomy.target_zone import TargetZone

    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sv = _variant(seed)
        farthest = float(canal_distances(sv.landmarks.canal_mesh, TargetZone.of(sv.landmarks, SETTINGS.target_zone).points).max())
        level_plan = plan_level(sv.vertebra, sv.landmarks, approaches=TRANSPEDICULAR)
        try:
            for side in ("right", "left"):
                assert_planned_or_refused_for_the_zone(level_plan, side)
        except AssertionError as error:
            return f"variant {seed} ({VARIANT_LEVELS[seed % 6]}): {error}", farthest
    return "", farthest


@lru_cache(maxsize=None)  # the variant test and the count below share one run
def _variant_outcomes() -> dict:
    """Every variant judged, two at a time (the CI machine's two cores): seed -> (failure, farthest)."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        return dict(zip(range(VARIANTS), pool.map(_judge_variant, range(VARIANTS))))


def test_random_variants_plan_both_sides_or_prove_why_not():
    failures = [failure for failure, _ in _variant_outcomes().values() if failure]
    assert not failures, "\n".join(failures)


def test_at_most_five_of_fifty_variants_have_a_zone_no_lesion_can_reach():
    """The zone of each variant against the canal (trimesh, exact): a zone point the canal margin
    plus the coverage margin from the canal is what a lesion needs to reach it. At most 5 in 50 (of
    the BVN_PLAN_VARIANTS planned, that share rounded down)."""
    need = CANAL_MARGIN + SETTINGS.coverage_margin_mm
    unreachable = {seed: round(d, 1) for seed, (_, d) in _variant_outcomes().items() if d < need}
    assert len(unreachable) <= MOST_REFUSED_OF_50 * VARIANTS // 50, unreachable


def test_a_zone_beyond_the_canal_margin_is_refused_with_numbers_a_brute_force_confirms(synthetic_l4):
    """Synthetic L4 with the canal margin raised until the zone's farthest point lies 0.5 mm short
    of it plus the coverage margin: both sides refused for the target, the numbers and the brute
    force agree; 2 mm below that margin the brute force finds a lesion (it can find one)."""
    sv, zones, level_plan = synthetic_l4
    farthest = canal_distances(sv.landmarks.canal_mesh, level_plan.zone.points).max()
    rules = RuleSet().with_changes("canal_lesion", margin_mm=round(farthest - SETTINGS.coverage_margin_mm + 0.5, 2))
    refused = plan_level(sv.vertebra, sv.landmarks, rules=rules, zones=zones, approaches=TRANSPEDICULAR)
    for side in ("right", "left"):
        assert_refused_for_the_zone(refused, side, rules=rules)
    assert refused.recommendation is None
    reachable = farthest - SETTINGS.coverage_margin_mm - 2.0
    found = brute_force_reach(sv.landmarks, level_plan.zone.points, DEVICE, reachable, SETTINGS.coverage_margin_mm)
    assert found is not None and found["canal_clearance_mm"] >= reachable and found["zone_depth_mm"] >= 1.0


def test_narrow_pedicles_give_no_plan_and_say_why():
    sv = synthesize("L4", pedicle_width_mm=4.5, voxel_mm=VOXEL_MM)
    level_plan = plan_level(sv.vertebra, sv.landmarks, approaches=("transpedicular", "transpedicular-straight"))
    for result in level_plan.results:
        assert result.plan is None and not result.alternatives
        width = sv.landmarks.pedicles[result.side].isthmus_width_mm
        assert f"isthmus {width:.1f} mm is narrower than the introducer 3.4 mm + 2 x 1.0 mm" in result.blocked[0]
    assert level_plan.recommendation is None


def test_a_lesion_too_big_for_the_canal_margin_is_refused_with_numbers(synthetic_l4):
    sv, zones, _ = synthetic_l4
    big = DEVICE.replace(lesion_diameter_mm=26.0, lesion_length_mm=30.0)
    level_plan = plan_level(sv.vertebra, sv.landmarks, device=big, zones=zones, approaches=TRANSPEDICULAR)
    for result in level_plan.results:
        assert result.plan is None
        assert any("lesion clearance from the spinal canal" in b and "mm" in b for b in result.blocked), result.blocked


def test_planning_is_deterministic(synthetic_l4):
    sv, zones, level_plan = synthetic_l4
    again = plan_level(sv.vertebra, sv.landmarks, zones=zones, approaches=TRANSPEDICULAR)
    for side in ("right", "left"):
        assert np.array_equal(again.result("transpedicular", side).plan.path.vertices,
                              level_plan.result("transpedicular", side).plan.path.vertices)


def test_clinician_numbers_match_an_analytic_path(synthetic_l4):
    sv, zones, level_plan = synthetic_l4
    lm = sv.landmarks  # identity frame: model coordinates are the vertebra frame
    tip = lm.bvn_terminus + np.array([0.0, 4.0, 0.0])
    medial, cranial = np.radians(30.0), np.radians(8.0)
    direction = np.array([-np.sin(medial) * np.cos(cranial), np.cos(medial) * np.cos(cranial), np.sin(cranial)])
    path = InstrumentPath.straight(tip - 70.0 * direction, tip, DEVICE.introducer_radius_mm)
    from bvn_plan.planning.path_numbers import path_numbers

    numbers = path_numbers(path, lm, check_path(zones, path))
    assert numbers["introducer_medial_angle_deg"] == pytest.approx(30.0, abs=1e-9)
    assert numbers["introducer_craniocaudal_angle_deg"] == pytest.approx(8.0, abs=1e-9)
    assert numbers["ap_tip_from_midline_mm"] == pytest.approx(0.0, abs=1e-9)
    wall_y = lm.basivertebral_foramen[1]
    assert numbers["lateral_tip_depth_percent"] == pytest.approx(100 * (tip[1] - wall_y) / lm.morphometry["body_depth_mm"])
    assert numbers["tip_to_terminus_mm"] == pytest.approx(4.0)
    # the endplate-relative tilt differs from the frame's by the endplate's own tilt
    n = lm.superior_endplate.normal
    assert numbers["introducer_craniocaudal_angle_to_endplate_deg"] == pytest.approx(np.degrees(np.arcsin(direction @ n)))
    assert numbers["depth_total_mm"] == pytest.approx(70.0)
    assert numbers["depth_skin_side_to_bone_entry_mm"] + numbers["depth_bone_entry_to_tip_mm"] == pytest.approx(70.0)


# ---------------------------------------------------------------------------------------------
# Real vertebrae


#: VHM levels planned in the tests: L2 shows both pedicles clearly; at L3-L5 the shrink-wrapped
#: surface fills the pedicle notches and the anatomy gives the pedicles (near) zero confidence.
VHM_LEVELS = ("L2", "L3", "L4", "L5")


@pytest.fixture(scope="module")
def vhm_plans(vhm_dir):
    plans = {}
    for level in VHM_LEVELS:
        vertebra = Vertebra.load(vhm_dir / f"{level}_whole.stl", level=level)
        plans[level] = (vertebra, plan_level(vertebra, _quiet(find_anatomy, vertebra), approaches=TRANSPEDICULAR))
    return plans


def assert_sound_or_refused_for_the_pedicle(level_plan, side):
    """A pedicle the anatomy trusts gets a sound plan or a refusal for the target that holds; one
    it does not is refused, saying why."""
    confidence = level_plan.landmarks.confidence[f"{side}_pedicle"]
    if confidence >= PEDICLE_CONFIDENCE_MIN:
        return assert_planned_or_refused_for_the_zone(level_plan, side) is not None
    for approach in TRANSPEDICULAR:
        result = level_plan.result(approach, side)
        assert result.plan is None
        assert any("not recognised with confidence" in b for b in result.blocked), result.blocked
    return False


@pytest.mark.parametrize("level", VHM_LEVELS)
def test_real_vhm_levels_plan_or_refuse_unclear_pedicles(vhm_plans, level):
    _, level_plan = vhm_plans[level]
    planned = [assert_sound_or_refused_for_the_pedicle(level_plan, side) for side in ("right", "left")]
    assert all(planned), f"VHM {level}: both pedicles are recognised, both sides must plan"


def test_symmetrised_vhm_plans_mirror_each_other(vhm_plans):
    mirrored = 0
    for level, (vertebra, level_plan) in vhm_plans.items():
        right = level_plan.result("transpedicular", "right").plan
        left = level_plan.result("transpedicular", "left").plan
        if right is None or left is None:
            continue
        plane = level_plan.landmarks.midsagittal_plane
        for a, b in ((right.path.start, left.path.start), (right.path.arc_start, left.path.arc_start),
                     (right.path.tip, left.path.tip)):
            assert np.linalg.norm(reflect(a[None], plane)[0] - b) <= 1.0, level
        mirrored += 1
    assert mirrored == len(vhm_plans)


def test_real_vhm_sacrum_plans_s1_both_sides(vhm_dir):
    """The whole VHM sacrum (alae, sacral foramina): its S1 pedicles read 27 mm wide (published
    22.3 +- 2.7 mm) and too tall (shrink-wrapped notches, noted and capped), both sides plan soundly
    to the body-centre target within the target tolerance (measured 1.5 and 1.4 mm)."""
    vertebra = Vertebra.load(vhm_dir / "S1_whole.stl", level="S1")
    level_plan = plan_level(vertebra, _quiet(find_anatomy, vertebra), approaches=TRANSPEDICULAR)
    for side in ("right", "left"):
        assert assert_sound_or_refused_for_the_pedicle(level_plan, side), side
        assert level_plan.result("transpedicular", side).plan.tip_to_terminus_mm <= SETTINGS.target_tolerance_mm
        assert any(note.startswith(f"the {side} pedicle reads too tall") for note in level_plan.landmarks.notes)


@pytest.mark.parametrize("level", ["L3", "L4", "L5", "S1"])
def test_totalsegmentator_levels_plan_or_refuse_unclear_pedicles(totalseg_dir, level):
    """A 3 mm CT segmentation (coarse staircase surface, found anatomy): the same acceptance. Its
    S1 label is the S1 segment without the alae (short pedicles ending at the label's edge): the
    tip reaches the body-centre target within the target tolerance (measured 0.5 and 1.0 mm)."""
    vertebra = load_labelmap(totalseg_dir / "totalseg.nii.gz").vertebra(level)
    level_plan = plan_level(vertebra, _quiet(find_anatomy, vertebra), approaches=TRANSPEDICULAR)
    planned = [assert_sound_or_refused_for_the_pedicle(level_plan, side) for side in ("right", "left")]
    assert all(planned), f"TotalSegmentator {level}: both pedicles are recognised, both sides must plan"
    if level == "S1":
        for side in ("right", "left"):
            plan = level_plan.result("transpedicular", side).plan
            assert plan.tip_to_terminus_mm <= SETTINGS.target_tolerance_mm


# ---------------------------------------------------------------------------------------------
# Output


def test_plan_files_are_in_the_input_units_and_written_whole(synthetic_l4, tmp_path):
    sv, _, level_plan = synthetic_l4
    as_cm = Vertebra(sv.mesh, "L4", "RAS", input_units="cm", source="synthetic L4 read as cm")
    written = write_plan(level_plan, as_cm, tmp_path / "out")
    document = json.loads(written["plan"].read_text())["levels"][level_plan.level]
    assert document["coordinates"]["frame"] == "RAS" and document["coordinates"]["units"] == "cm"
    assert document["landmarks"]["bvn_terminus_placement"] == dataclasses.asdict(sv.landmarks.terminus)
    assert document["landmarks"]["bvn_terminus_placement"]["depth_fraction"] == TerminusParameters().depth_fraction
    entry = next(a for a in document["approaches"] if a["approach"] == "transpedicular" and a["side"] == "right")
    path = level_plan.result("transpedicular", "right").plan.path
    assert np.allclose(np.array(entry["plan"]["path"]["polyline"]) * 10.0, path.vertices, atol=1e-4)
    assert entry["plan"]["verdict"] == "pass" and "spinal_canal:lesion" in entry["plan"]["clearances_mm"]
    assert document["device"]["cannula_radius_mm"] == DEVICE.cannula_radius_mm
    summary = written["summary"].read_text()
    assert summary.count("RIGHT transpedicular: verdict PASS") == 1 and "RECOMMENDATION: " in summary
    # a failed write raises a typed error and leaves no partial or temp file behind
    blocked = tmp_path / "blocked"
    (blocked / "summary.txt").mkdir(parents=True)
    with pytest.raises(InputError):
        write_plan(level_plan, as_cm, blocked)
    assert not [p for p in blocked.iterdir() if p.name.endswith(".tmp")]


def test_bad_planner_input_is_refused(synthetic_l4):
    sv, zones, _ = synthetic_l4
    with pytest.raises(InputError, match="unknown approach"):
        plan_level(sv.vertebra, sv.landmarks, zones=zones, approaches=("sideways",))
    with pytest.raises(InputError, match="coverage_margin_mm"):
        PlannerSettings(coverage_margin_mm=-1.0)
    with pytest.raises(InputError, match="DeviceProfile"):
        plan_level(sv.vertebra, sv.landmarks, device={"cannula_radius_mm": 15}, zones=zones)
