"""Property-based tests (hypothesis) of the geometry kernels.

* rigid-transform equivariance: the signed distance to a real vertebral body and every safety
  clearance of a check are unchanged when the mesh, the zones and the path move together;
* monotonicity: a path moved away from the spinal canal never gets closer to it;
* the checker never passes a path whose axis leaves the bone after entering it (real VHM L4,
  judged against trimesh's independent inside test);
* robustness: a case file with any field deleted or replaced by any JSON value, and a real mesh
  file truncated and overwritten anywhere, load or raise InputError, never another exception.

Geometry in mm. Expensive fixtures are built once per module; examples are few and deadline-free.
"""

import warnings

import numpy as np
import pytest
import trimesh
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from bvn_plan.geometry import SignedDistance
from bvn_plan.errors import InputError
from bvn_plan.paths import InstrumentPath
from bvn_plan.planning import SafetyZones, check_path
from bvn_plan.planning.soft_tissue import SoftTissueModel
from bvn_plan.vertebra import Vertebra
from boxes import box_safety_zones  # tests/boxes.py

R = 1.7  # 10 G introducer radius, mm
MODEL_VOXEL_DIAGONAL_MM = float(np.sqrt(3.0)) * SoftTissueModel().voxel_mm
#: few examples, no deadline, no slow "explain" phase (each example builds or checks real geometry)
SETTINGS = settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

rotations = st.integers(0, 2**31 - 1).map(lambda seed: Rotation.random(random_state=seed).as_matrix())
translations = st.tuples(*[st.floats(-200, 200)] * 3).map(np.array)
unit_interval = st.floats(0.0, 1.0)


@pytest.fixture(scope="module")
def box_zones():
    return box_safety_zones()


@pytest.fixture(scope="module")
def vertebral_body(vhm_dir):
    body = trimesh.load(vhm_dir / "L4_body.stl")  # processed: vertices merged, watertight
    return body, SignedDistance(body)


@SETTINGS
@given(rotation=rotations, shift=translations, seed=st.integers(0, 10_000))
def test_signed_distance_is_rigid_equivariant(vertebral_body, rotation, shift, seed):
    body, distance = vertebral_body
    rng = np.random.default_rng(seed)
    # points inside, near and outside the real body (it is about 50 x 40 x 30 mm)
    points = body.bounds[0] - 10 + rng.random((300, 3)) * (body.extents + 20)
    moved = body.copy()
    moved.vertices = body.vertices @ rotation.T + shift
    moved_distance = SignedDistance(moved)
    moved_points = points @ rotation.T + shift
    exact = distance.exact(points)
    np.testing.assert_allclose(moved_distance.exact(moved_points), exact, atol=1e-6)
    # within its grid (every point inside or < 3 mm outside the surface, in any pose) the grid
    # answers to within its stated band, and exactly near the surface
    in_grid = exact < 3.0
    for d, p in ((distance, points), (moved_distance, moved_points)):
        values = d(p[in_grid])
        assert np.all(np.abs(values - exact[in_grid]) < d.band)
        near = np.abs(exact[in_grid]) < d.band / 2
        np.testing.assert_allclose(values[near], exact[in_grid][near], atol=1e-6)
    value, _ = distance.minimum(points)
    moved_value, _ = moved_distance.minimum(points @ rotation.T + shift)
    assert moved_value == pytest.approx(value, abs=1e-6)


@SETTINGS
@given(rotation=rotations, shift=translations, u=st.tuples(unit_interval, unit_interval, unit_interval),
       lesion=st.booleans())
# a lesion reaching into the canal: its two samplings differ by 0.086 mm
@example(rotation=Rotation.random(random_state=23).as_matrix(), shift=np.zeros(3), u=(0.796875, 0.0, 0.0), lesion=True)
def test_check_clearances_are_rigid_equivariant(box_zones, rotation, shift, u, lesion):
    from bvn_plan.device import DeviceProfile
    from bvn_plan.lesion import EllipsoidLesion
    from bvn_plan.planning.safety import LESION_CHECK_SUBDIVISIONS

    # a posterolateral start and a tip anywhere in the body's central part
    start = np.array([30.0, -40.0, 2.0])
    tip = np.array([-12 + 24 * u[0], -8 + 16 * u[1], -8 + 16 * u[2]])
    moved_zones = box_safety_zones(rotation, shift)
    results = []
    for zones, a, b in ((box_zones, start, tip), (moved_zones, start @ rotation.T + shift, tip @ rotation.T + shift)):
        path = InstrumentPath.straight(a, b, R)
        ablation = EllipsoidLesion.from_probe(path.tip, path.tip_direction, DeviceProfile()) if lesion else None
        results.append(check_path(zones, path, lesion=ablation))
    before, after = results
    assert after.verdict == before.verdict
    assert set(after.clearances) == set(before.clearances)
    # the lesion surface is sampled at fixed points (642) whose spin about the probe axis depends on
    # the pose: a clearance is 1-Lipschitz, so its minimum over the samples lies within the samples'
    # covering radius (the largest circumradius of their triangles) of the true one, whatever the
    # spin; the instrument's clearances agree exactly, except from the soft tissue modelled on a voxel
    # grid in the vertebra frame (SoftTissueModel.voxel_mm): each pose may place a point and the
    # zone's faces in different voxels, so those agree to a voxel's diagonal
    sampled = EllipsoidLesion.from_probe(start, tip - start, DeviceProfile()).surface_mesh(LESION_CHECK_SUBDIVISIONS)
    edges = [np.linalg.norm(sampled.triangles[:, i] - sampled.triangles[:, (i + 1) % 3], axis=1) for i in range(3)]
    covering = float((edges[0] * edges[1] * edges[2] / (4 * sampled.area_faces)).max())
    for name, c in before.clearances.items():
        tolerance = covering if c.applies_to == "lesion" else MODEL_VOXEL_DIAGONAL_MM if c.zone.endswith("_model") else 1e-4
        assert after.clearances[name].clearance_mm == pytest.approx(c.clearance_mm, abs=tolerance), name
    assert after.medial_breach_mm == pytest.approx(before.medial_breach_mm, abs=1e-4)


@SETTINGS
@given(x=st.floats(-15, 15), z=st.floats(-9, 9), y=st.floats(-12, 0), length=st.floats(3, 10),
       steps=st.lists(st.floats(0.0, 8.0), min_size=2, max_size=4))
def test_canal_clearance_never_shrinks_as_the_path_moves_away(box_zones, x, z, y, length, steps):
    """The canal lies behind the body (y < -16): moving a path anteriorly moves it away."""
    clearances = []
    for d in sorted(steps):
        path = InstrumentPath.straight([x, y + d, z], [x, y + d + length, z], R)
        clearances.append(check_path(box_zones, path).clearances["spinal_canal:instrument"].clearance_mm)
    assert np.all(np.diff(clearances) >= -1e-6), clearances
    # and the value is the analytic distance from the path to the canal box, minus the radius
    assert clearances[0] == pytest.approx(np.hypot(max(abs(x) - 10, 0), y + min(steps) + 16) - R, abs=1e-3)


@pytest.fixture(scope="module")
def real_zones(vhm_dir):
    from bvn_plan.anatomy import find_anatomy

    vertebra = Vertebra.load(vhm_dir / "L4_whole.stl", level="L4")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        landmarks = find_anatomy(vertebra)
    return vertebra.mesh, landmarks, SafetyZones(vertebra.mesh, landmarks)


def _leaves_bone(mesh, start, tip) -> bool:
    """Ground truth by trimesh's ray-parity inside test on 0.25 mm samples of the axis: does the
    axis go outside (by more than 0.1 mm) after it first entered the bone?"""
    n = int(np.ceil(np.linalg.norm(tip - start) / 0.25)) + 1
    points = start + np.linspace(0, 1, n)[:, None] * (tip - start)
    inside = mesh.contains(points)
    if not inside.any():
        return True
    after = points[np.argmax(inside):][~inside[np.argmax(inside):]]
    if len(after) == 0:
        return False
    _, distance, _ = trimesh.proximity.closest_point(mesh, after)
    return bool((distance > 0.1).any())


@settings(SETTINGS, max_examples=40)
@given(side=st.sampled_from(["right", "left"]), back=st.floats(15, 35),
       start_jitter=st.tuples(*[st.floats(-4, 4)] * 3), tip_offset=st.tuples(*[st.floats(-8, 8)] * 3))
def test_the_checker_never_passes_a_path_that_leaves_the_bone(real_zones, side, back, start_jitter, tip_offset):
    mesh, landmarks, zones = real_zones
    pedicle = landmarks.pedicles[side]
    start = pedicle.isthmus_centre - back * pedicle.axis_direction + np.asarray(start_jitter)
    tip = landmarks.bvn_terminus + np.asarray(tip_offset)
    if np.linalg.norm(tip - start) < 5:
        return
    try:
        result = check_path(zones, InstrumentPath.straight(start, tip, R))
        verdict, reasons = result.verdict, result.reasons
    except InputError as exc:  # e.g. "the path never enters the vertebra": refused, not passed
        verdict, reasons = "refused", [str(exc)]
    leaves = _leaves_bone(mesh, start, tip)
    event(f"leaves bone: {leaves}, verdict: {verdict}")
    if leaves:
        assert verdict != "pass", reasons


def _case_document(totalseg_dir) -> dict:
    """A valid case file (as parsed YAML) with every optional section filled."""
    return {
        "case_id": "fuzz", "levels": "L3-S1",
        "clinical": {"modic": {"L3": 2, "L4": 1}, "symptomatic_levels": "L3-L4", "symptom_duration_months": 14,
                     "acute_episode_days": None, "conservative_care": {"months": 9, "treatments": ["PT"]},
                     "odi": 46, "nrs": 7, "bone_density": {"status": "osteopenia", "t_score": -1.7},
                     "contraindications": []},
        "plan": {"preferred_approach": "transpedicular", "approaches": ["transpedicular"], "device": {},
                 "terminus": {"depth_fraction": 0.35, "height_fraction": 0.5}, "settings": {}, "stage": "plan",
                 "images": False},
        "input": {"labelmap": str(totalseg_dir / "totalseg.nii.gz"), "scheme": "totalseg",
                  "ct": str(totalseg_dir / "example_ct.nii.gz")},
    }


def _field_paths(document, prefix=()):
    for key, value in document.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _field_paths(value, prefix + (key,))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6)


@settings(SETTINGS, max_examples=200)
@given(data=st.data())
def test_a_mutated_case_file_loads_or_says_what_is_wrong(totalseg_dir, data):
    """Delete a field or replace it by any JSON value: the case loads (the field was optional or
    the value acceptable) or raises InputError, never another exception."""
    from bvn_plan.workflow.case import case_from_dict

    document = _case_document(totalseg_dir)
    path = data.draw(st.sampled_from(sorted(_field_paths(document))))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values)
    try:
        case_from_dict(document, totalseg_dir, source="fuzz")
    except InputError as exc:
        assert str(exc)


@pytest.fixture(scope="module")
def mesh_files(vhm_dir, tmp_path_factory):
    """Real L4 written in each readable format (mm): extension -> bytes, and its face count."""
    l4 = trimesh.load(vhm_dir / "L4_whole.stl")
    folder = tmp_path_factory.mktemp("formats")
    files = {"faces": len(l4.faces)}
    for ext in ("stl", "obj", "ply", "off"):
        l4.export(folder / f"L4.{ext}")
        files[ext] = (folder / f"L4.{ext}").read_bytes()
    l4_vtp = folder / "L4.vtp"
    import pyvista as pv

    pv.wrap(l4).save(l4_vtp)
    files["vtp"] = l4_vtp.read_bytes()
    return files


@settings(SETTINGS, max_examples=100)
@given(ext=st.sampled_from(["stl", "obj", "ply", "off", "vtp"]), cut=st.floats(0.0, 1.0),
       flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=4))
@example(ext="obj", cut=0.75, flips=[(0.5, 10)])  # a face left pointing at a missing vertex
def test_a_damaged_mesh_file_loads_or_says_what_is_wrong(mesh_files, tmp_path_factory, ext, cut, flips):
    """Truncate a real mesh file anywhere and overwrite a few bytes: Vertebra.load either reads a
    usable vertebra (in mm, 25-250 mm across; noted if faces were lost) or raises InputError,
    never another exception."""
    data = bytearray(mesh_files[ext][:int(len(mesh_files[ext]) * cut)])
    for where, value in flips:
        if data:
            data[min(int(where * len(data)), len(data) - 1)] = value
    path = tmp_path_factory.mktemp("damaged") / f"L4.{ext}"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            v = Vertebra.load(path)
        except InputError as exc:
            event(f"{ext}: refused")
            assert str(exc)
            return
    event(f"{ext}: loaded")
    assert 25.0 <= v.mesh.extents.max() <= 250.0 and np.isfinite(v.mesh.vertices).all()
    if len(v.mesh.faces) != mesh_files["faces"]:
        assert v.notes, "a damaged file lost faces without a note"
