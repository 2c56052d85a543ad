"""Shared test fixtures. Real data lives in ../shared/data beside the project (CI has it)."""

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"
VHM = SHARED_DATA / "vhm_lumbar"
TOTALSEG = SHARED_DATA / "totalseg_example"


@pytest.fixture(scope="session")
def vhm_dir() -> Path:
    assert VHM.is_dir(), f"real test data missing: {VHM} (the project expects ../shared/data)"
    return VHM


@pytest.fixture(scope="session")
def totalseg_dir() -> Path:
    assert TOTALSEG.is_dir(), f"real test data missing: {TOTALSEG} (the project expects ../shared/data)"
    return TOTALSEG


CASE_CLINICAL = {"modic": {"L3": 1}, "symptomatic_levels": "L3", "symptom_duration_months": 14, "acute_episode_days": None,
                 "conservative_care": {"months": 9, "treatments": ["physical therapy", "NSAIDs"]}, "odi": 46, "nrs": 7,
                 "bone_density": {"status": "osteopenia", "t_score": -1.7}, "contraindications": []}


@pytest.fixture(scope="session")
def written(tmp_path_factory, vhm_dir):
    """The outputs of the commands that write plan files, run once through the CLI: ``files``
    (the plan.json of each of plan, case, batch, demo, and the anatomy JSON) and ``runs`` (the
    click results by command: stdout, stderr, exit code). Inputs: plan on real VHM L4; case on
    real VHM L3 as a mesh case with clinical data; batch on a synthetic L5 named patient7_L5;
    demo on synthetic S1 (no foramen); anatomy on the real L4 in METRES."""
    import shutil
    import warnings

    import yaml
    from click.testing import CliRunner

    from bvn_plan.cli import main

    root = tmp_path_factory.mktemp("writers")
    runs = {}

    def run(name, *args):
        with warnings.catch_warnings():  # every run shows its warnings, as a fresh process would
            warnings.simplefilter("always")
            runs[name] = CliRunner().invoke(main, [name, *map(str, args)])
        assert runs[name].exception is None or isinstance(runs[name].exception, SystemExit), runs[name].output

    run("plan", vhm_dir / "L4_whole.stl", "--level", "L4", "--approach", "transpedicular", "--out", root / "plan")
    case = {"case_id": "schema-case", "levels": "L3", "clinical": CASE_CLINICAL,
            "plan": {"images": False, "approaches": ["transpedicular"]},
            "input": {"meshes": {"L3": {"path": str(vhm_dir / "L3_whole.stl"), "units": "mm"}}}}
    (root / "case.yaml").write_text(yaml.safe_dump(case))
    run("case", root / "case.yaml", "--out", root / "case", "--workers", "1", "--json", root / "case_result.json")
    shutil.copy(PROJECT / "meshes" / "L5.ply", root / "patient7_L5.ply")
    run("batch", root / "patient7_L5.ply", "--out", root / "batch", "--workers", "1", "--frame", "RAS", "--no-progress")
    run("demo", "--out", root / "demo", "--level", "S1", "--no-images")
    run("anatomy", vhm_dir / "L4_whole_original_metres.obj", "--level", "L4", "--json", root / "anatomy.json")
    files = {"plan": root / "plan" / "plan.json", "case": root / "case" / "plan.json",
             "batch": root / "batch" / "patient7_L5" / "plan.json", "demo": root / "demo" / "S1" / "plan.json",
             "anatomy": root / "anatomy.json", "case_result": root / "case_result.json"}
    return {"files": files, "runs": runs, "root": root}
