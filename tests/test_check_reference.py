"""The checker reproduces its reference fixture (issue 17): 360 checks recorded with the VTK engine
of main before the compiled-tree engine (benchmarks/record_check_reference.py) on VHM L1-L5 and the
synthetic L4: planned, perturbed, failing and refused paths, with and without lesions. Clearances
agree within 1e-6 mm, the points where they occur within 1e-6 mm unless another sample ties the
minimum, and every verdict, reason, rule status and error is identical."""

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from bvn_plan import SafetyZones
from bvn_plan.errors import InputError
from bvn_plan.planning import check_paths

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import record_check_reference as recorder  # noqa: E402  (the recorder's case builders and outcome)

TOL_MM = 1e-6
with gzip.open(recorder.FIXTURE, "rt", encoding="utf-8") as _handle:
    FIXTURE = json.load(_handle)


def _zone_distance(zones: SafetyZones, zone: str, point) -> float:
    """Unsigned distance (mm) from a point to a zone's surface, to tell a tie from a wrong point."""
    p = np.asarray([point], float)
    if zone == "exiting_root":
        return float(zones.root_distance(p)[0])
    if zone in ("spinal_canal", "bone"):
        return abs(float((zones.canal if zone == "spinal_canal" else zones.bone).exact(p)[0]))
    return float(zones.surfaces[zone].distances(p)[0])


def _assert_same(zones, expected: dict, found: dict, label: str) -> None:
    if "error" in expected:
        assert found == expected, label
        return
    for key in ("verdict", "reasons", "intraosseous", "grade"):
        assert found[key] == expected[key], f"{label}: {key}"
    assert [r[:2] for r in found["rules"]] == [r[:2] for r in expected["rules"]], label
    np.testing.assert_allclose([r[2] for r in found["rules"]], [r[2] for r in expected["rules"]], atol=TOL_MM)
    assert abs(found["medial_breach_mm"] - expected["medial_breach_mm"]) <= TOL_MM, label
    assert sorted(found["clearances"]) == sorted(expected["clearances"]), label
    for key, want in expected["clearances"].items():
        got = found["clearances"][key]
        assert abs(got["clearance_mm"] - want["clearance_mm"]) <= TOL_MM, f"{label}: {key}"
        if np.linalg.norm(np.subtract(got["point"], want["point"])) > TOL_MM:
            zone = key.split(":")[0]  # another sample at the same distance: a tie, not a wrong point
            tie = abs(_zone_distance(zones, zone, got["point"]) - _zone_distance(zones, zone, want["point"]))
            assert tie <= TOL_MM, f"{label}: {key} at {got['point']} instead of {want['point']}"


@pytest.mark.parametrize("name", sorted(FIXTURE["levels"]))
def test_checker_reproduces_the_reference_fixture(name):
    level = FIXTURE["levels"][name]
    vertebra, landmarks = recorder.load_case(name)
    assert recorder.anatomy_fingerprint(vertebra, landmarks) == level["anatomy"], (
        f"{name}: the anatomy changed since the fixture was recorded: re-record it with the VTK reference "
        "(python benchmarks/record_check_reference.py --engine vtk) and review the differences")
    zones = SafetyZones(vertebra.mesh, landmarks)
    checks = level["checks"]
    paths = [recorder.make_path(check["path"]) for check in checks]
    lesions = [recorder.make_lesion(check["lesion"]) for check in checks]
    # one robustness-style batch: each path's result (or the error that refuses it) in its place
    for n, (check, result) in enumerate(zip(checks, check_paths(zones, paths, lesions))):
        _assert_same(zones, check["outcome"], recorder.outcome_of(result), f"{name} check {n} ({check['kind']})")
    assert {check["kind"] for check in checks} == {"planned", "perturbed", "failing", "erroring"}
    with pytest.raises(InputError, match="one lesion per path"):
        check_paths(zones, paths[:2], lesions[:1])
