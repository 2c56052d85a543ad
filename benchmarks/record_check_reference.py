"""Record the checker's reference fixture (issue 17): tests/data/check_reference.json.gz.

On VHM L1-L5 (../shared/data/vhm_lumbar/Lk_whole.stl) and the synthetic L4 (20k faces), with the
landmarks found by find_anatomy, the recorder checks with the default rules: every path the
planner returns (plan and alternatives) with and without its lesion, random perturbations of them
(start and tip moved, a bend added) with a lesion at the new tip, paths built to fail (through the
canal, out through the anterior cortex, an endplate or the lateral wall) and paths built to be refused
(never entering the vertebra, tip far outside). For each check it stores the path (vertices, mm,
model coordinates, and radius), the lesion, and the outcome: verdict, reasons, every zone's clearance,
point and depth, every rule's status, or the error's class and message. It also stores a fingerprint
of each level's anatomy, so that the test tells an anatomy change (re-record) from an engine change.

Re-run (after a change to the anatomy or the rules, e.g. once the approach zones land, so that
their clearances join the fixture: every zone SafetyZones builds and every rule of the default rule
set is recorded, nothing here names them):

    PYTHONPATH=$PWD python benchmarks/record_check_reference.py --engine vtk [--checks-per-level N]

The first fixture came from the VTK engine of main before issue 17 (kept in benchmarks/vtk_distance.py;
``--engine vtk`` records with it again, the default ``tree`` with the package's), which the new engine
reproduces (tests/test_check_reference.py). Re-record with ``--engine vtk``, so that the fixture stays
a reference independent of the engine it tests.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from bvn_plan import InstrumentPath, SafetyZones, Vertebra, check_path, find_anatomy, plan_level
from bvn_plan.errors import BvnPlanError
from bvn_plan.lesion import EllipsoidLesion
from bvn_plan.synthetic import synthesize

ROOT = Path(__file__).resolve().parents[1]
VHM = ROOT.parent / "shared" / "data" / "vhm_lumbar"
FIXTURE = ROOT / "tests" / "data" / "check_reference.json.gz"
LEVELS = ("L1", "L2", "L3", "L4", "L5")
#: Random perturbations per planned path (mm): start and tip moved by normal noise of these SDs.
START_SD_MM, TIP_SD_MM = 4.0, 3.0


def load_case(name: str):
    """The vertebra and its landmarks for a fixture case: "vhm_Lk" or "synthetic_L4" (20k faces)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name.startswith("vhm_"):
            level = name[4:]
            vertebra = Vertebra.load(VHM / f"{level}_whole.stl", level=level)
        else:
            vertebra = Vertebra.from_mesh(synthesize("L4").mesh, level="L4")
        return vertebra, find_anatomy(vertebra)


def anatomy_fingerprint(vertebra, landmarks) -> str:
    """A hash of what SafetyZones reads: the mesh, the canal volume, the face regions, the endplate
    points and the pedicles (rounded to 1e-6 mm)."""
    digest = hashlib.sha256()
    for array in (vertebra.mesh.vertices, landmarks.canal_mesh.vertices, landmarks.superior_endplate.point,
                  landmarks.inferior_endplate.point, landmarks.frame.to_model(np.eye(3))):
        digest.update(np.round(np.asarray(array, float), 6).tobytes())
    for name in sorted(landmarks.face_regions):
        digest.update(name.encode() + np.asarray(landmarks.face_regions[name], np.int64).tobytes())
    for side in sorted(landmarks.pedicles):
        pedicle = landmarks.pedicles[side]
        digest.update(np.round(np.append(pedicle.isthmus_centre, pedicle.isthmus_height_mm), 6).tobytes())
    return digest.hexdigest()


def lesion_record(lesion) -> dict | None:
    if lesion is None:
        return None
    return {"centre": lesion.centre.tolist(), "axis": lesion.axis.tolist(),
            "length_mm": 2 * lesion.half_length_mm, "diameter_mm": 2 * lesion.radius_mm}


def make_lesion(record: dict | None):
    if record is None:
        return None
    return EllipsoidLesion(record["centre"], record["axis"], record["length_mm"], record["diameter_mm"])


def make_path(record: dict) -> InstrumentPath:
    return InstrumentPath(np.asarray(record["vertices"], float), float(record["radius_mm"]), record["kind"])


def outcome(zones, path: InstrumentPath, lesion) -> dict:
    """What the checker says of one path: its result's numbers and words, or the error it raises."""
    try:
        return outcome_of(check_path(zones, path, lesion=lesion))
    except BvnPlanError as exc:
        return outcome_of(exc)


def outcome_of(result) -> dict:
    """The fixture's record of a check's result, or of the error it raised."""
    if isinstance(result, BvnPlanError):
        return {"error": type(result).__name__, "message": str(result)}
    return {"verdict": result.verdict, "reasons": result.reasons,
            "clearances": {key: {"clearance_mm": c.clearance_mm, "point": c.point, "depth_mm": c.depth_mm}
                           for key, c in result.clearances.items()},
            "rules": [[r.rule, r.status, r.clearance_mm] for r in result.rules],
            "intraosseous": result.intraosseous, "medial_breach_mm": result.medial_breach_mm,
            "grade": result.gertzbein_robbins_grade, "bone_entry": result.bone_entry}


def _planned(vertebra, landmarks, zones) -> list[tuple[str, InstrumentPath, EllipsoidLesion | None]]:
    try:
        level_plan = plan_level(vertebra, landmarks, zones=zones)
    except BvnPlanError:
        return []
    plans = [p for r in level_plan.results for p in ([r.plan] if r.plan else []) + list(r.alternatives)]
    return [("planned", p.path, p.lesion) for p in plans]


def _straight_through(landmarks, side: str, radius: float) -> InstrumentPath:
    """A straight path along one pedicle's axis from 35 mm behind its isthmus to the BVN terminus."""
    pedicle = landmarks.pedicles[side]
    return InstrumentPath.straight(pedicle.isthmus_centre - 35 * pedicle.axis_direction, landmarks.bvn_terminus, radius)


def _perturbed(base: list[InstrumentPath], count: int, rng) -> list[tuple[str, InstrumentPath, EllipsoidLesion]]:
    """Paths whose start and tip are moved at random, half of them bent through a moved middle point."""
    out = []
    for n in range(count):
        path = base[n % len(base)]
        start = path.start + rng.normal(0, START_SD_MM, 3)
        tip = path.tip + rng.normal(0, TIP_SD_MM, 3)
        if n % 2:
            middle = 0.5 * (start + tip) + rng.normal(0, 2.0, 3)
            moved = InstrumentPath.polyline([start, middle, tip], path.radius_mm)
        else:
            moved = InstrumentPath.straight(start, tip, path.radius_mm)
        lesion = EllipsoidLesion.from_probe(moved.tip, moved.tip_direction) if n % 3 else None
        out.append(("perturbed", moved, lesion))
    return out


def _failing(landmarks, base: InstrumentPath, rng) -> list[tuple[str, InstrumentPath, EllipsoidLesion | None]]:
    """Paths built to break a rule: into the canal, on through a cortex or an endplate."""
    f, r = landmarks.frame, base.radius_mm
    centre = f.to_local(landmarks.canal_centroid)
    out = []
    for offset in np.linspace(-8.0, 8.0, 6):  # converging lines from beside into the canal
        q = centre + np.array([offset, 0.0, 0.0])
        d = np.array([-np.sin(np.radians(15)), np.cos(np.radians(15)), 0.0])
        out.append(("failing", InstrumentPath.straight(f.to_model(q - 30 * d), f.to_model(q + 25 * d), r), None))
    tip_dir = base.tip_direction
    for extra in (8.0, 15.0, 25.0):  # the planned line pushed on past its tip
        path = InstrumentPath.straight(base.start, base.tip + extra * tip_dir, r)
        out.append(("failing", path, EllipsoidLesion.from_probe(path.tip, tip_dir)))
    for axis in (np.array([0, 0, 1.0]), np.array([0, 0, -1.0]), np.array([1.0, 0, 0])):  # endplates, lateral wall
        tip = landmarks.bvn_terminus + f.to_model(axis * 18.0) - f.to_model(np.zeros(3))
        path = InstrumentPath.straight(base.start, tip, r)
        out.append(("failing", path, EllipsoidLesion.from_probe(path.tip, path.tip_direction)))
    return out


def _erroring(vertebra, base: InstrumentPath) -> list[tuple[str, InstrumentPath, None]]:
    """Paths the checker must refuse: beside the vertebra, or ending far beyond it."""
    away = vertebra.mesh.extents.max() * 1.5 * np.array([0.0, 0.0, 1.0])
    beyond = base.tip + 60.0 * base.tip_direction
    return [("erroring", InstrumentPath.straight(base.start + away, base.tip + away, base.radius_mm), None),
            ("erroring", InstrumentPath.straight(base.start, beyond, base.radius_mm), None)]


def cases_for(vertebra, landmarks, zones, per_level: int, rng) -> list[tuple[str, InstrumentPath, object]]:
    """The fixture's paths for one vertebra (about ``per_level``)."""
    planned = _planned(vertebra, landmarks, zones)
    cases = []
    for kind, path, lesion in planned:
        cases += [(kind, path, lesion), (kind, path, None)]
    radius = planned[0][1].radius_mm if planned else 1.7
    base = [p for _, p, _ in planned] or [_straight_through(landmarks, s, radius) for s in sorted(landmarks.pedicles)]
    fixed = _failing(landmarks, base[0], rng) + _erroring(vertebra, base[0])
    cases += _perturbed(base, max(10, per_level - len(cases) - len(fixed)), rng) + fixed
    return cases


def record(per_level: int, seed: int = 17, engine: str = "tree") -> dict:
    from vtk_distance import vtk_zones  # benchmarks/vtk_distance.py, beside this script

    build = vtk_zones if engine == "vtk" else SafetyZones
    rng = np.random.default_rng(seed)
    fixture = {"about": __doc__.splitlines()[0], "seed": seed, "levels": {}}
    for name in [f"vhm_{level}" for level in LEVELS] + ["synthetic_L4"]:
        vertebra, landmarks = load_case(name)
        zones = build(vertebra.mesh, landmarks)
        checks = []
        for kind, path, lesion in cases_for(vertebra, landmarks, zones, per_level, rng):
            checks.append({"kind": kind, "path": {"vertices": path.vertices.tolist(), "radius_mm": path.radius_mm,
                                                  "kind": path.kind},
                           "lesion": lesion_record(lesion), "outcome": outcome(zones, path, lesion)})
        fixture["levels"][name] = {"anatomy": anatomy_fingerprint(vertebra, landmarks), "checks": checks}
        kinds = {k: sum(c["kind"] == k for c in checks) for k in ("planned", "perturbed", "failing", "erroring")}
        verdicts = [c["outcome"].get("verdict", "error") for c in checks]
        print(f"{name}: {len(checks)} checks {kinds}; verdicts "
              f"{ {v: verdicts.count(v) for v in sorted(set(verdicts))} }", flush=True)
    return fixture


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks-per-level", type=int, default=60)
    parser.add_argument("--out", type=Path, default=FIXTURE)
    parser.add_argument("--engine", choices=("tree", "vtk"), default="tree",
                        help="the package's compiled tree, or the VTK reference of benchmarks/vtk_distance.py")
    args = parser.parse_args(argv)
    fixture = record(args.checks_per_level, engine=args.engine)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.out, "wt", encoding="utf-8") as handle:
        json.dump(fixture, handle, separators=(",", ":"))
    total = sum(len(level["checks"]) for level in fixture["levels"].values())
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB, {total} checks)")


if __name__ == "__main__":
    sys.exit(main())
