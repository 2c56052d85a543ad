"""The safety checker on real vertebrae: a family of deliberately bad trajectories, each built so
that its breach is known, must fail with the right reason and grade; a clean path passes."""

import warnings

import numpy as np
import pytest
import trimesh

from bvn_plan import InputError, InstrumentPath, SafetyZones, Vertebra, check_path, find_anatomy
from bvn_plan.lesion import EllipsoidLesion
from bvn_plan.planning import CheckResult, check_paths

R = 1.7  # 10 G introducer radius, mm


@pytest.fixture(scope="module", params=["L3", "L4", "L5"])
def real(request, vhm_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v = Vertebra.load(vhm_dir / f"{request.param}_whole.stl", level=request.param)
        found = find_anatomy(v)
    return v, found, SafetyZones(v.mesh, found)


def _exact_canal_penetration(canal: trimesh.Trimesh, path: InstrumentPath) -> float:
    """How deep (mm) the instrument surface reaches into the canal, by trimesh's exact distance."""
    points = path.sample().points
    _, dist, _ = trimesh.proximity.closest_point(canal, points)
    signed = np.where(canal.contains(points), -dist, dist)
    return float(np.max(R - signed))


def _medial_line(found, offset):
    """A converging line beside the canal, ``offset`` mm lateral of the canal's right edge at the
    canal centroid, from 30 mm behind to 25 mm in front (mm, model coordinates)."""
    f = found.frame
    local_c = f.to_local(found.canal_centroid)
    canal_local = f.to_local(found.canal_mesh.vertices)
    near = np.abs(canal_local[:, 2] - local_c[2]) < 3
    right_edge = canal_local[near, 0].max()
    q = np.array([right_edge + offset, local_c[1], local_c[2]])
    converge = np.radians(15)
    d = np.array([-np.sin(converge), np.cos(converge), 0.0])
    return f.to_model(q - 30 * d), f.to_model(q + 25 * d)


def _breaching_path(found, zones, depth):
    """Bisect the lateral offset until the instrument reaches ``depth`` mm into the canal."""
    lo, hi = -15.0, 15.0  # deep inside the canal ... well clear of it
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        path = InstrumentPath.straight(*_medial_line(found, mid), R)
        if check_path(zones, path).medial_breach_mm > depth:
            lo = mid
        else:
            hi = mid
    return InstrumentPath.straight(*_medial_line(found, hi), R)


@pytest.mark.parametrize("depth,grade", [(1.0, 1), (3.0, 2), (5.0, 3)])
def test_medial_breach_is_failed_and_graded(real, depth, grade):
    v, found, zones = real
    path = _breaching_path(found, zones, depth)
    result = check_path(zones, path)
    assert result.medial_breach_mm == pytest.approx(depth, abs=0.05)
    assert _exact_canal_penetration(found.canal_mesh, path) == pytest.approx(result.medial_breach_mm, abs=0.1)
    assert result.verdict == "fail"
    assert result.gertzbein_robbins_grade == grade
    assert any("medial pedicle wall" in r and f"grade {grade}" in r for r in result.reasons), result.reasons


def _into_body(found, tip_local):
    """A path from behind the right pedicle region to a tip given in the vertebra frame."""
    f = found.frame
    ped = found.pedicles["right"]
    start = ped.isthmus_centre - 30 * ped.axis_direction
    return InstrumentPath.straight(start, f.to_model(tip_local), R)


def _local(found, point):
    return found.frame.to_local(point)


def test_endplate_breach_fails(real):
    v, found, zones = real
    top = _local(found, found.superior_endplate.point)
    path = _into_body(found, top + [0, 0, 1.5])
    result = check_path(zones, path)
    assert result.verdict == "fail"
    assert any("superior endplate" in r for r in result.reasons), result.reasons


def test_anterior_cortex_breach_fails(real):
    v, found, zones = real
    centre = found.frame.to_local(found.frame.origin)
    # the anterior cortex on the mid-sagittal line at mid-body height, by an exact crossing
    ray_origin = found.frame.to_model(centre)
    hits, _, _ = v.mesh.ray.intersects_location([ray_origin], [found.frame.anterior])
    front = _local(found, hits[np.argmax((hits - ray_origin) @ found.frame.anterior)])
    path = _into_body(found, front + [0, 3.0, 0])
    result = check_path(zones, path)
    assert result.verdict == "fail" and not result.intraosseous
    assert any("anterior cortex" in r for r in result.reasons), result.reasons


def test_lesion_too_close_to_the_canal_fails(real):
    v, found, zones = real
    path = _into_body(found, _local(found, found.bvn_terminus))
    lesion = trimesh.creation.icosphere(subdivisions=3, radius=4.0)
    # centre on the midline in front of the canal, moved until the lesion is 4 mm from it
    centre = found.canal_centroid.copy()
    for _ in range(60):
        gap = zones.canal.exact(centre[None])[0] - 4.0
        if gap >= 4.0:
            break
        centre = centre + 0.25 * found.frame.anterior
    result = check_path(zones, path, lesion=lesion.copy().apply_translation(centre))
    assert result.clearances["spinal_canal:lesion"].clearance_mm < 5.0
    assert result.verdict == "fail"
    assert any("ablation zone" in r and "spinal canal" in r for r in result.reasons), result.reasons


def test_clean_central_transpedicular_path_passes(real):
    """The most central converging line through the bone bridge beside the canal (the pedicle
    corridor), found on a small fixed grid by its exact clearances, passes."""
    v, found, zones = real
    f = found.frame
    best, best_clearance = None, -np.inf
    for offset in (2.0, 4.0, 6.0, 8.0):
        for dz in (-4.0, -2.0, 0.0, 2.0, 4.0):
            start, tip = _medial_line(found, offset)
            shift = dz * f.superior
            path = InstrumentPath.straight(start + shift, tip - 12 * _unit(tip - start) + shift, R)
            try:
                result = check_path(zones, path)
            except Exception:
                continue
            clearance = min(c.clearance_mm for c in result.clearances.values())
            if result.intraosseous and clearance > best_clearance:
                best, best_clearance = result, clearance
    assert best is not None
    assert best.gertzbein_robbins_grade == 0 and best.intraosseous
    assert best.verdict in ("pass", "warn"), best.reasons


def _unit(v):
    return v / np.linalg.norm(v)


def test_a_batch_of_paths_gives_each_path_its_own_check(real):
    """check_paths sends all the paths' samples and lesion points to each zone together (one grid
    read, one pair of exact batches per zone): each path's result, or the error that refuses it,
    is the one check_path gives it alone, though the batch's groups share every search."""
    v, found, zones = real
    rng = np.random.default_rng(17)
    ped = found.pedicles["right"]
    paths, lesions = [], []
    for k in range(24):  # robustness-style samples about a transpedicular path, some without a lesion
        start = ped.isthmus_centre - 30 * ped.axis_direction + rng.normal(0, 3.0, 3)
        tip = found.bvn_terminus + rng.normal(0, 3.0, 3)
        paths.append(InstrumentPath.straight(start, tip, R))
        lesions.append(EllipsoidLesion.from_probe(tip, _unit(tip - start)) if k % 3 else None)
    inside = found.canal_centroid + 15 * found.frame.anterior
    paths += [InstrumentPath.straight(v.mesh.bounds[1] + 30, v.mesh.bounds[1] + 60, R),  # never enters the bone
              InstrumentPath.straight(inside, inside + 60 * found.frame.anterior, R)]    # its tip far outside
    lesions += [None, EllipsoidLesion.from_probe(inside, found.frame.anterior)]
    batch = check_paths(zones, paths, lesions)
    for n, (path, lesion, found_together) in enumerate(zip(paths, lesions, batch)):
        try:
            alone = check_path(zones, path, lesion)
        except InputError as exc:
            assert isinstance(found_together, InputError) and str(found_together) == str(exc), n
            continue
        assert isinstance(found_together, CheckResult), n
        assert found_together.to_dict() == alone.to_dict(), n
    assert [isinstance(r, InputError) for r in batch] == [False] * 24 + [True, True]
