"""The synthetic vertebra generator: closed genus-1 bones of plausible size whose ground truth is
what a measurement on the mesh gives, reproducible to the byte (bvn_plan.synthetic)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import trimesh

from bvn_plan.anatomy import HEIGHT_POSITIONS
from bvn_plan.errors import InputError
from bvn_plan.levels import LEVELS, MORPHOMETRY
from bvn_plan.synthetic import DISC_HEIGHT_MM, PART_NAMES, make_parameters, synthesize, write_ply, write_vertebrae

MESHES = Path(__file__).resolve().parents[1] / "meshes"

# Plausible whole-vertebra sizes (mm, cm3). The real VHM lumbar vertebrae (one adult male) are
# 74-98 mm wide, 83-89 mm deep, 47-62 mm tall and 69-81 cm3; published morphometry SDs are about
# 10%, and the generator varies them by up to 2 SD, so the ranges are widened by roughly 25%. The
# synthetic arch is slimmer than VHM's (plates instead of real laminae), hence the lower volume bound.
WIDTH_MM, DEPTH_MM, HEIGHT_MM, VOLUME_CM3 = (60, 120), (60, 105), (34, 66), (38, 100)


@pytest.fixture(scope="module")
def defaults():
    return {level: synthesize(level) for level in LEVELS}


@pytest.fixture(scope="module")
def variants():
    return [synthesize("L3", vary=True, seed=1), synthesize("L5", vary=True, seed=2)]


def ray_hits(mesh, origin, direction):
    locs, _, _ = mesh.ray.intersects_location([origin], [direction], multiple_hits=True)
    return np.sort((locs - origin) @ np.asarray(direction, float))


def section_extent(mesh, centre, axis, transverse, radius):
    """Test-side slicing: extents (along transverse, along axis x transverse) of the section
    segments within ``radius`` of ``centre`` in the plane normal to ``axis``."""
    e1 = transverse - axis * np.dot(transverse, axis)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    segments = trimesh.intersections.mesh_plane(mesh, axis, centre)
    pts = segments.reshape(-1, 3) - centre
    pts = pts[np.linalg.norm(pts, axis=1) < radius]
    return np.ptp(pts @ e1), np.ptp(pts @ e2)


def check_closed_bone(sv):
    mesh = sv.mesh
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert len(mesh.split(only_watertight=False)) == 1
    assert mesh.euler_number == 0          # genus 1: the vertebral (or sacral) foramen
    assert sv.body_mesh.is_watertight and sv.body_mesh.euler_number == 2
    assert sv.canal_mesh.is_watertight and sv.canal_mesh.volume > 1000
    width, depth, height = mesh.extents
    assert WIDTH_MM[0] < width < WIDTH_MM[1] and DEPTH_MM[0] < depth < DEPTH_MM[1]
    assert HEIGHT_MM[0] < height < HEIGHT_MM[1]
    assert VOLUME_CM3[0] < mesh.volume / 1000 < VOLUME_CM3[1]
    assert sv.body_mesh.volume < mesh.volume


def test_every_default_level_is_one_closed_genus1_bone(defaults):
    for sv in defaults.values():
        check_closed_bone(sv)
        assert len(sv.face_labels) == len(sv.mesh.faces)
        present = {PART_NAMES[i] for i in np.unique(sv.face_labels)}
        assert {"body", "left_pedicle", "right_pedicle", "posterior_arch"} <= present
        assert ("sacral_ala" in present) == (sv.parameters.level == "S1")


def test_random_variants_are_closed_and_differ_from_the_defaults(defaults, variants):
    for sv in variants:
        check_closed_bone(sv)
        base = defaults[sv.parameters.level]
        assert sv.parameters.morph != base.parameters.morph
        for name in ("body_width_mm", "pedicle_width_mm", "canal_depth_mm"):
            mean, sd = getattr(MORPHOMETRY[sv.parameters.level], name), MORPHOMETRY[sv.parameters.level].sd(name)
            assert abs(getattr(sv.parameters.morph, name) - mean) <= 2 * sd + 1e-9


def test_vertebral_body_shape_follows_the_morphometry(defaults):
    for level, sv in defaults.items():
        m, body, lm = sv.parameters.morph, sv.body_mesh, sv.landmarks
        assert np.ptp(body.vertices[:, 0]) == pytest.approx(m.body_width_mm, abs=0.3)
        depth = ray_hits(body, [0, -60.0, 0], [0, 1.0, 0])
        assert depth[-1] - depth[0] == pytest.approx(m.body_depth_mm, abs=0.3)
        # Wedge: the rim planes tilt by atan((Ha - Hp) / (2 D)) each, symmetric about +z.
        tilt = math.degrees(math.atan((m.body_height_anterior_mm - m.body_height_posterior_mm) / (2 * m.body_depth_mm)))
        sup_tilt = math.degrees(math.atan2(-lm.superior_endplate.normal[1], lm.superior_endplate.normal[2]))
        assert sup_tilt == pytest.approx(tilt, abs=0.01)
        bisector = lm.superior_endplate.normal - lm.inferior_endplate.normal
        assert np.allclose(bisector / np.linalg.norm(bisector), lm.frame.superior)
        # Endplate concavity: 1.5 mm (cranial) and 0.7 mm (caudal) below the rim at the centre.
        y_mid = (depth[0] + depth[-1]) / 2 - 60.0
        top = 60.0 - ray_hits(body, [0, y_mid, 60.0], [0, 0, -1.0])[0]
        bottom = ray_hits(body, [0, y_mid, -60.0], [0, 0, 1.0])[0] - 60.0
        rim_top = lm.superior_endplate.point[2] - lm.superior_endplate.normal[1] / lm.superior_endplate.normal[2] * y_mid
        rim_bottom = lm.inferior_endplate.point[2] - lm.inferior_endplate.normal[1] / lm.inferior_endplate.normal[2] * y_mid
        assert rim_top - top == pytest.approx(1.5, abs=0.25)
        assert bottom - rim_bottom == pytest.approx(0.7, abs=0.25)
        # The rim (outside the central concave zone) lies on the endplate planes.
        y_front, y_back = depth[-1] - 60.0 - 3.5, depth[0] - 60.0 + 3.5
        for x, y in ((0.0, y_front), (0.0, y_back), (0.4 * m.body_width_mm, y_mid), (-0.4 * m.body_width_mm, y_mid)):
            z_top = 60.0 - ray_hits(body, [x, y, 60.0], [0, 0, -1.0])[0]
            z_bottom = ray_hits(body, [x, y, -60.0], [0, 0, 1.0])[0] - 60.0
            assert abs(lm.superior_endplate.signed_distance([x, y, z_top])) < 0.15
            assert abs(lm.inferior_endplate.signed_distance([x, y, z_bottom])) < 0.15


def test_posterior_wall_is_kidney_shaped_at_l1_and_not_at_l5(defaults):
    def wall_y(sv, x):
        return -ray_hits(sv.body_mesh, [x, 0, 0], [0, -1.0, 0])[0]

    l1, l5 = defaults["L1"], defaults["L5"]
    assert wall_y(l1, 0.0) - wall_y(l1, 10.0) > 1.0      # concave toward the canal
    assert wall_y(l5, 0.0) - wall_y(l5, 10.0) < 0.3      # flat to convex


def test_terminus_and_foramen_lie_where_the_definitions_put_them(defaults):
    for level, sv in defaults.items():
        lm, body = sv.landmarks, sv.body_mesh
        assert lm.bvn_terminus[0] == 0.0 and lm.midsagittal_plane.signed_distance(lm.bvn_terminus) == 0.0
        assert body.contains([lm.bvn_terminus])[0]
        hits = ray_hits(body, [0, -60.0, lm.bvn_terminus[2]], [0, 1.0, 0]) - 60.0
        fraction = (lm.bvn_terminus[1] - hits[0]) / (hits[-1] - hits[0])
        bottom = lm.inferior_endplate.signed_distance(lm.bvn_terminus)
        top = lm.superior_endplate.signed_distance(lm.bvn_terminus)
        if level == "S1":
            assert fraction == pytest.approx(0.5, abs=0.02)           # body centre (no posterior foramen)
        else:
            assert fraction == pytest.approx(0.35, abs=0.02)
        assert bottom == pytest.approx(top, abs=0.05)                  # mid-height between the planes
        distance = trimesh.proximity.closest_point(body, [lm.basivertebral_foramen])[1][0]
        assert distance < 0.3 and lm.basivertebral_foramen[0] == 0.0


def test_canal_lies_behind_the_posterior_wall_and_outside_the_bone(defaults):
    for sv in defaults.values():
        lm = sv.landmarks
        assert abs(lm.canal_centroid[0]) < 0.3
        assert lm.canal_centroid[1] < lm.posterior_wall_points[:, 1].min()
        assert lm.canal_centroid[1] < lm.basivertebral_foramen[1] - sv.parameters.morph.canal_depth_mm / 3
        inside = sv.mesh.contains(trimesh.sample.volume_mesh(sv.canal_mesh, 400))
        assert inside.mean() < 0.02
        assert np.abs(lm.canal_centroid - sv.canal_mesh.center_mass).max() < 1e-9
        gap = trimesh.proximity.closest_point(sv.body_mesh, lm.posterior_wall_points)[1]
        assert len(lm.posterior_wall_points) > 20 and gap.max() < 0.3


def test_pedicle_ground_truth_matches_slicing_the_mesh(defaults):
    for level, sv in defaults.items():
        m = sv.parameters.morph
        for side, ped in sv.landmarks.pedicles.items():
            axis = ped.axis_direction
            transverse = np.cross([0, 0, 1.0], axis)
            reach = 0.5 * max(m.pedicle_width_mm, m.pedicle_height_mm) + 1.0
            width, height = section_extent(sv.mesh, ped.isthmus_centre, axis, transverse, reach)
            assert width == pytest.approx(ped.isthmus_width_mm, abs=0.3)
            assert height == pytest.approx(ped.isthmus_height_mm, abs=0.3)
            assert ped.isthmus_width_mm == pytest.approx(m.pedicle_width_mm, abs=0.3)
            assert ped.isthmus_height_mm == pytest.approx(m.pedicle_height_mm, abs=0.3)
            # Narrowest: sections 4 mm before and behind the isthmus are wider.
            for t in (-4.0, 4.0):
                w, _ = section_extent(sv.mesh, ped.isthmus_centre + t * axis, axis, transverse, reach + 2.0)
                assert w > width
            # The axis runs inside the bone from the isthmus to the body junction and beyond.
            run = np.linalg.norm(ped.body_junction - ped.isthmus_centre)
            samples = ped.isthmus_centre + np.linspace(-3.0, run + 3.0, 20)[:, None] * axis
            assert sv.mesh.contains(samples).all()
            assert axis[1] > 0 and (axis[0] < 0) == (side == "right")    # anterior and medial
            angle = math.degrees(math.atan2(abs(axis[0]), axis[1]))
            assert angle == pytest.approx(m.pedicle_transverse_angle_deg, abs=0.01)


def test_morphometry_measured_on_the_mesh_matches_the_request(defaults):
    for level, sv in defaults.items():
        measured, wanted = sv.landmarks.morphometry, sv.parameters.morph
        for name in ("body_width_mm", "body_depth_mm", "pedicle_width_mm", "pedicle_height_mm"):
            assert measured[name] == pytest.approx(getattr(wanted, name), abs=0.3), (level, name)
        # The requested heights are the wall (rim) heights; the measured ones are chords at
        # HEIGHT_POSITIONS, on the straight rims between them, the middle one under both concavities.
        front, back = wanted.body_height_anterior_mm, wanted.body_height_posterior_mm
        for where, share in HEIGHT_POSITIONS.items():
            concavity = sv.parameters.endplate_concavity_superior_mm + sv.parameters.endplate_concavity_inferior_mm
            expected = back + share * (front - back) - (concavity if where == "middle" else 0.0)
            assert measured[f"body_height_{where}_mm"] == pytest.approx(expected, abs=0.3), (level, where)
        if level != "S1":    # at S1 the interpedicular distance follows from the pedicle entry
            assert measured["canal_width_mm"] == pytest.approx(wanted.canal_width_mm, abs=0.5)
            assert measured["canal_depth_mm"] == pytest.approx(wanted.canal_depth_mm, abs=1.0)


def test_pedicle_width_override_gives_that_isthmus():
    sv = synthesize("L4", pedicle_width_mm=5.0)
    for ped in sv.landmarks.pedicles.values():
        width, _ = section_extent(sv.mesh, ped.isthmus_centre, ped.axis_direction,
                                  np.cross([0, 0, 1.0], ped.axis_direction), 10.0)
        assert width == pytest.approx(5.0, abs=0.3)


def test_asymmetric_pedicles_differ_by_the_requested_width_and_angle():
    sv = synthesize("L4", pedicle_width_asymmetry_mm=3.0, pedicle_transverse_asymmetry_deg=10.0)
    m, peds = sv.parameters.morph, sv.landmarks.pedicles
    for side, sign in (("right", 1.0), ("left", -1.0)):
        ped = peds[side]
        width, _ = section_extent(sv.mesh, ped.isthmus_centre, ped.axis_direction,
                                  np.cross([0, 0, 1.0], ped.axis_direction), 12.0)
        assert width == pytest.approx(m.pedicle_width_mm + sign * 1.5, abs=0.3), side
        angle = math.degrees(math.atan2(abs(ped.axis_direction[0]), ped.axis_direction[1]))
        assert angle == pytest.approx(m.pedicle_transverse_angle_deg + sign * 5.0, abs=0.01), side


def test_transverse_process_root_fills_the_pedicle_narrowing():
    """With the root along the pedicle's lateral wall, the bone reaches more than 2 mm further out
    from the isthmus centre than the tube's half-width, while the medial wall stays where it was."""
    sv = synthesize("L5", tp_root_span_mm=18.0)
    plain = synthesize("L5")
    half = sv.parameters.morph.pedicle_width_mm / 2
    for side, sign in (("right", 1.0), ("left", -1.0)):
        ped = sv.landmarks.pedicles[side]
        lateral = np.array([sign, 0.0, 0.0]) - sign * ped.axis_direction[0] * ped.axis_direction
        lateral /= np.linalg.norm(lateral)
        out = {name: mesh.ray.intersects_location([ped.isthmus_centre], [d])[0]
               for name, mesh, d in (("root", sv.mesh, lateral), ("plain", plain.mesh, lateral),
                                     ("medial", sv.mesh, -lateral))}
        reach = {name: np.linalg.norm(hits - ped.isthmus_centre, axis=1).min() for name, hits in out.items()}
        assert reach["plain"] == pytest.approx(half, abs=0.3), side
        assert reach["root"] > half + 2.0 and reach["medial"] == pytest.approx(half, abs=0.3), (side, reach)
        assert ped.isthmus_width_mm > 2 * half + 2.0, side


def test_same_seed_same_bytes_and_different_seeds_differ(tmp_path, variants):
    again = synthesize("L3", vary=True, seed=1)
    other = synthesize("L3", vary=True, seed=7)
    paths = [tmp_path / f"{name}.ply" for name in ("a", "b", "c")]
    for sv, path in zip((variants[0], again, other), paths):
        write_ply(sv.mesh, path, "test")
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    assert other.parameters.morph != again.parameters.morph


def test_osteoporotic_variant_changes_bone_metadata_not_shape():
    normal, weak = make_parameters("L4"), make_parameters("L4", osteoporotic=True)
    assert weak.cortical_thickness_mm < normal.cortical_thickness_mm
    assert weak.bone_volume_fraction < normal.bone_volume_fraction
    assert weak.morph == normal.morph
    assert make_parameters("L4", osteoporotic=True, bone_volume_fraction=0.05).bone_volume_fraction == 0.05


def test_committed_meshes_match_a_fresh_regeneration(tmp_path, defaults):
    manifest = write_vertebrae(tmp_path, defaults)
    committed = json.loads((MESHES / "manifest.json").read_text())
    assert committed["units"] == "mm" and set(committed["levels"]) == set(LEVELS)
    for path in sorted(tmp_path.iterdir()):
        assert path.read_bytes() == (MESHES / path.name).read_bytes(), path.name
    for level, entry in manifest["levels"].items():
        rot = np.array(entry["placement"])[:3, :3]
        assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-4)
    # Adjacent levels sit one disc height apart, endplate centre to endplate centre.
    for upper, lower in zip(LEVELS[:-1], LEVELS[1:]):
        place_u, place_l = (np.array(manifest["levels"][lv]["placement"]) for lv in (upper, lower))
        top = place_l[:3, :3] @ defaults[lower].landmarks.superior_endplate.point + place_l[:3, 3]
        bottom = place_u[:3, :3] @ defaults[upper].landmarks.inferior_endplate.point + place_u[:3, 3]
        assert np.linalg.norm(bottom - top) == pytest.approx(DISC_HEIGHT_MM[upper], abs=1e-3)


def test_committed_files_load_as_the_generated_meshes(defaults):
    loaded = trimesh.load(MESHES / "L4.ply", process=False)
    assert np.array_equal(np.asarray(loaded.faces), defaults["L4"].mesh.faces)
    assert np.allclose(loaded.vertices, defaults["L4"].mesh.vertices, atol=0)
    record = json.loads((MESHES / "L4_landmarks.json").read_text())
    assert np.allclose(record["bvn_terminus"], defaults["L4"].landmarks.bvn_terminus, atol=1e-5)


@pytest.mark.parametrize("level, overrides", [
    ("L4", {"body_width_mm": -40.0}),
    ("L4", {"pedicle_width_mm": 0.0}),
    ("L4", {"canal_depth_mm": float("nan")}),
    ("L4", {"pedicle_wdth": 8.0}),
    ("L4", {"pedicle_width_asymmetry_mm": 9.0}),
    ("L5", {"tp_root_span_mm": -1.0}),
    ("L7", {}),
    ("T12", {}),
])
def test_bad_parameters_raise_input_error(level, overrides):
    with pytest.raises(InputError):
        make_parameters(level, **overrides)
