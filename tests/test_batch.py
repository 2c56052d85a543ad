"""Cohorts: 20 vertebrae with 2 workers, interrupted (the whole process group killed) and resumed,
end with the same summary as an uninterrupted run; finished cases are not redone and every case
folder is complete or absent. Per-case work is the anatomy stage (no planning, no pictures) to
keep the test short; planning itself is tested in test_case.py."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bvn_plan.workflow import DONE_MARKER, SUMMARY_FILE, batch_cases, run_batch
from bvn_plan.errors import InputError
from bvn_plan.synthetic import write_moved_cohort

PROJECT = Path(__file__).resolve().parents[1]
LEVELS = ("L1", "L2", "L3", "L4", "L5", "S1")
N_VERTEBRAE = 20
OPTIONS = {"frame": "RAS", "stage": "anatomy", "images": False}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> list[Path]:
    """20 distinct vertebrae: the bundled synthetic L1-S1 moved by small random rigid motions
    (rotations under 8 degrees, so RAS still holds)."""
    sources = {level: PROJECT / "meshes" / f"{level}.ply" for level in LEVELS}
    return [Path(f) for f in write_moved_cohort(sources, tmp_path_factory.mktemp("cohort"), N_VERTEBRAE)]


def _summary(folder: Path) -> list[dict]:
    with open(folder / SUMMARY_FILE, newline="") as handle:
        return list(csv.DictReader(handle))


def test_interrupted_and_resumed_batch_matches_an_uninterrupted_run(cohort, tmp_path):
    cases = batch_cases(cohort, **OPTIONS)
    reference = run_batch(cases, tmp_path / "reference", workers=2, progress=False)
    print(f"\nbatch throughput (anatomy stage, 2 workers): {reference.vertebrae_per_minute:.1f} vertebrae/min "
          f"({reference.seconds:.1f} s for {N_VERTEBRAE})")
    assert sorted(reference.planned) == sorted(c.case_id for c in cases) and not reference.failed
    rows = _summary(tmp_path / "reference")
    assert [r["case_id"] for r in rows] == sorted(c.case_id for c in cases)
    # the anatomy really ran: every body depth within 3 mm of the bundled level's prior geometry
    depth = {"L1": 33.0, "L2": 33.5, "L3": 34.0, "L4": 35.0, "L5": 35.7, "S1": 34.0}
    for row in rows:
        assert row["status"] == "anatomy only", row
        assert abs(float(row["body_depth_mm"]) - depth[row["level"]]) < 3.0, row

    out = tmp_path / "interrupted"
    script = ("import sys, warnings; warnings.simplefilter('ignore'); from bvn_plan.workflow.batch import batch_cases, run_batch; "
              "run_batch(batch_cases(sys.argv[2:], frame='RAS', stage='anatomy', images=False), sys.argv[1], "
              "workers=2, progress=False)")
    process = subprocess.Popen([sys.executable, "-c", script, str(out)] + [str(f) for f in cohort],
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while len(list(out.glob(f"*/{DONE_MARKER}"))) < 6 and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the run and its workers, mid-write
        process.wait()
    finished = {p.parent.name for p in out.glob(f"*/{DONE_MARKER}")}
    assert 6 <= len(finished) < N_VERTEBRAE, "the run was not interrupted part-way"
    visible = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert all((p / DONE_MARKER).is_file() for p in visible), "a half-written case folder is visible"
    assert not (out / SUMMARY_FILE).exists()

    resumed = run_batch(batch_cases(cohort, **OPTIONS), out, workers=2, progress=False)
    assert set(resumed.skipped) == finished
    assert set(resumed.planned) == {c.case_id for c in cases} - finished
    assert _summary(out) == rows
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary folders left behind"
    again = run_batch(batch_cases(cohort, **OPTIONS), out, workers=2, progress=False)
    assert again.planned == [] and len(again.skipped) == N_VERTEBRAE and _summary(out) == rows


def test_batch_inputs_are_checked(cohort, tmp_path):
    with pytest.raises(InputError, match="share the case id"):
        batch_cases([cohort[0], cohort[0]], **OPTIONS)
    unnamed = tmp_path / "vertebra.ply"
    unnamed.write_bytes(cohort[0].read_bytes())
    with pytest.raises(InputError, match="level of vertebra.ply"):
        batch_cases([unnamed], **OPTIONS)
    with pytest.raises(InputError, match="not a case file"):
        batch_cases([tmp_path / "notes.txt"], **OPTIONS)
    with pytest.raises(InputError, match="workers"):
        run_batch([], tmp_path / "out", workers=0)
