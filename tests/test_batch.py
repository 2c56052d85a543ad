"""Cohorts on Dask: a batch interrupted (the whole process group killed) and resumed, and a batch
on an existing cluster (a real `dask scheduler` and two `dask worker` processes on 127.0.0.1) that
loses a worker in the middle of a case, both end with the summary of a one-process run; the
killed case is redone exactly once (its attempt log), finished cases never; every case folder is
complete or absent. Per-case work is the anatomy stage (no planning, no pictures) to keep the test
short; planning itself is tested in test_case.py. The cohort report is checked on a summary with
every status."""

import base64
import csv
import io
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bvn_plan.errors import InputError
from bvn_plan.synthetic import write_moved_cohort
from bvn_plan.workflow import (ATTEMPTS_DIR, DONE_MARKER, SUMMARY_COLUMNS, SUMMARY_FILE, BatchInputs, batch_cases,
                               read_attempts, rows_to_csv, run_batch)
from bvn_plan.workflow.cohort_report import REPORT_FILE, STATUS_COLOURS, write_cohort_report

PROJECT = Path(__file__).resolve().parents[1]
LEVELS = ("L1", "L2", "L3", "L4", "L5", "S1")
N_VERTEBRAE = 8
OPTIONS = {"frame": "RAS", "stage": "anatomy", "images": False}
TIMEOUT_S = 90  # for any one wait on a process


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> list[Path]:
    """8 distinct vertebrae: the bundled synthetic L1-S1 moved by small random rigid motions
    (rotations under 8 degrees, so RAS still holds)."""
    sources = {level: PROJECT / "meshes" / f"{level}.ply" for level in LEVELS}
    return [Path(f) for f in write_moved_cohort(sources, tmp_path_factory.mktemp("cohort"), N_VERTEBRAE)]


@pytest.fixture(scope="module")
def reference(cohort, tmp_path_factory) -> list[dict]:
    """The summary rows of a one-process run (no Dask)."""
    out = tmp_path_factory.mktemp("reference")
    result = run_batch(batch_cases(cohort, **OPTIONS), out, workers=1, progress=False)
    assert len(result.planned) == N_VERTEBRAE and not result.failed and result.dashboard is None
    rows = _summary(out)
    assert [r["case_id"] for r in rows] == sorted(f.stem for f in cohort)
    # the anatomy really ran: every body depth within 3 mm of the bundled level's prior geometry
    depth = {"L1": 33.0, "L2": 33.5, "L3": 34.0, "L4": 35.0, "L5": 35.7, "S1": 34.0}
    for row in rows:
        assert row["status"] == "anatomy only", row
        assert abs(float(row["body_depth_mm"]) - depth[row["level"]]) < 3.0, row
    return rows


def _summary(folder: Path) -> list[dict]:
    with open(folder / SUMMARY_FILE, newline="") as handle:
        return list(csv.DictReader(handle))


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])))


def _case_folders_whole(out: Path) -> None:
    visible = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != ATTEMPTS_DIR]
    assert all((p / DONE_MARKER).is_file() for p in visible), "a half-written case folder is visible"


def test_interrupted_and_resumed_batch_on_a_local_cluster_matches_one_process(cohort, reference, tmp_path):
    out = tmp_path / "interrupted"
    script = ("import sys, warnings; warnings.simplefilter('ignore'); from bvn_plan.workflow.batch import batch_cases, run_batch; "
              "run_batch(batch_cases(sys.argv[2:], frame='RAS', stage='anatomy', images=False), sys.argv[1], "
              "workers=2, progress=False)")
    process = subprocess.Popen([sys.executable, "-c", script, str(out)] + [str(f) for f in cohort], env=_env(),
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + TIMEOUT_S
        while len(list(out.glob(f"*/{DONE_MARKER}"))) < 3 and time.time() < deadline and process.poll() is None:
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the run, its cluster and workers, mid-write
        process.wait(timeout=TIMEOUT_S)
    finished = {p.parent.name for p in out.glob(f"*/{DONE_MARKER}")}
    assert 3 <= len(finished) < N_VERTEBRAE, "the run was not interrupted part-way"
    _case_folders_whole(out)
    assert not (out / SUMMARY_FILE).exists()

    resumed = run_batch(batch_cases(cohort, **OPTIONS), out, workers=2, progress=False)
    assert set(resumed.skipped) == finished
    assert set(resumed.planned) == {f.stem for f in cohort} - finished
    assert resumed.dashboard.startswith("http://127.0.0.1:")
    assert _summary(out) == reference
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary folders left behind"
    again = run_batch(batch_cases(cohort, **OPTIONS), out, workers=2, progress=False)
    assert again.planned == [] and len(again.skipped) == N_VERTEBRAE and _summary(out) == reference


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _start_cluster(folder: Path, processes: list) -> Path:
    """A scheduler and two single-threaded workers (no nanny: a killed worker stays dead) on
    127.0.0.1; returns the scheduler file once both workers have joined. The workers leave a
    minute after the scheduler, the scheduler after 5 idle minutes, should the test die."""
    from distributed import Client

    scheduler_file = folder / "scheduler.json"
    quiet = {"env": _env(), "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes.append(subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                       "--no-dashboard", "--scheduler-file", str(scheduler_file),
                                       "--idle-timeout", "300s"], **quiet))  # gone even if this test were killed
    deadline = time.time() + TIMEOUT_S
    while not scheduler_file.is_file() and time.time() < deadline:
        time.sleep(0.05)
    for _ in range(2):
        processes.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", "--scheduler-file", str(scheduler_file),
                                           "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                           "--death-timeout", "60"], **quiet))
    with Client(scheduler_file=str(scheduler_file), timeout="60s") as client:
        client.wait_for_workers(2, timeout=TIMEOUT_S)
    return scheduler_file


def test_batch_on_a_dask_cluster_survives_a_killed_worker_and_resumes(cohort, reference, tmp_path):
    out = tmp_path / "out"
    processes: list[subprocess.Popen] = []
    try:
        scheduler_file = _start_cluster(tmp_path, processes)
        workers = {p.pid for p in processes[1:]}
        command = [sys.executable, "-m", "bvn_plan.cli", "batch", *map(str, cohort), "--out", str(out), "--frame", "RAS",
                   "--stage", "anatomy", "--scheduler", str(scheduler_file), "--no-progress",
                   "--json", str(tmp_path / "batch.json")]
        batch = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        processes.append(batch)
        # kill the worker of the first case that starts, while it plans that case
        deadline, victim = time.time() + TIMEOUT_S, None
        while victim is None and time.time() < deadline and batch.poll() is None:
            for log in (out / ATTEMPTS_DIR).glob("*.jsonl") if (out / ATTEMPTS_DIR).is_dir() else ():
                try:
                    attempts = read_attempts(out, log.stem)
                except json.JSONDecodeError:  # a line being written
                    continue
                if len(attempts) == 1 and attempts[0]["event"] == "start" and attempts[0]["pid"] in workers:
                    os.kill(attempts[0]["pid"], signal.SIGKILL)
                    victim = log.stem
                    break
            time.sleep(0.01)
        assert victim is not None, "no case started"
        stdout, _ = batch.communicate(timeout=TIMEOUT_S)
        assert batch.returncode == 0, stdout
        report = json.loads((tmp_path / "batch.json").read_text())
        assert report["planned"] == N_VERTEBRAE and report["failed"] == {}
        assert _summary(out) == reference
        _case_folders_whole(out)
        assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary folders left behind"

        events = {f.stem: [a["event"] for a in read_attempts(out, f.stem)] for f in cohort}
        assert events[victim] == ["start", "start", "done"], events[victim]  # redone exactly once
        killed_pid = read_attempts(out, victim)[0]["pid"]
        assert read_attempts(out, victim)[1]["pid"] != killed_pid
        assert all(e == ["start", "done"] for case, e in events.items() if case != victim), events

        again = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
        assert again.returncode == 0, again.stderr
        again_report = json.loads((tmp_path / "batch.json").read_text())
        assert again_report["skipped_as_done"] == N_VERTEBRAE and again_report["planned"] == 0
        assert {f.stem: [a["event"] for a in read_attempts(out, f.stem)] for f in cohort} == events
        assert _summary(out) == reference
    finally:
        _stop(processes)


def test_batch_inputs_are_checked(cohort, tmp_path):
    with pytest.raises(InputError, match="share the case id"):
        batch_cases([cohort[0], cohort[0]], **OPTIONS)
    (tmp_path / "notes.txt").write_text("not a mesh")
    with pytest.raises(InputError, match="not a case file"):
        batch_cases([tmp_path / "notes.txt"], **OPTIONS)
    with pytest.raises(InputError, match="no such file"):
        batch_cases([tmp_path / "missing.stl"], **OPTIONS)
    with pytest.raises(InputError, match="a folder with no case file"):
        batch_cases([tmp_path], **OPTIONS)
    with pytest.raises(InputError, match="workers"):
        run_batch(BatchInputs([]), tmp_path / "out", workers=0)
    with pytest.raises(InputError, match="not both"):
        run_batch(BatchInputs([]), tmp_path / "out", workers=2, scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        run_batch(batch_cases(cohort[:1], **OPTIONS), tmp_path / "out", scheduler=str(tmp_path / "no-such-file.json"))



def test_a_folder_is_planned_and_an_unreadable_input_fails_alone(cohort, reference, tmp_path):
    """A folder given to `batch` is planned whole; a mesh whose name does not tell its level fails
    alone (its row says why, exit 5), the other cases are planned as in a one-process run."""
    folder = tmp_path / "cohort"
    folder.mkdir()
    for f in cohort[:2]:
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "vertebra.ply").write_bytes(cohort[0].read_bytes())
    (folder / "README.txt").write_text("not an input: skipped")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "bvn_plan.cli", "batch", str(folder), "--out", str(out), "--workers", "1",
                          "--frame", "RAS", "--stage", "anatomy", "--no-progress"],
                         capture_output=True, text=True, env=_env(), timeout=10 * TIMEOUT_S)
    assert run.returncode == 5, run.stderr
    rows = {r["case_id"]: r for r in _summary(out)}
    assert set(rows) == {cohort[0].stem, cohort[1].stem, "vertebra"}
    assert rows["vertebra"]["status"] == "failed" and "cannot tell the level of vertebra.ply" in rows["vertebra"]["message"]
    expected = {r["case_id"]: r for r in reference}
    for f in cohort[:2]:
        assert rows[f.stem] == expected[f.stem]

# ---------------------------------------------------------------------------------------------
# The cohort report


class _Page(HTMLParser):
    """The tables (id -> rows of cell texts), images (PNG bytes) and text of an HTML page."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self.text, self._table, self._cell = {}, [], [], None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs["id"], [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(base64.b64decode(attrs["src"].split("base64,", 1)[1]))

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._table[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        (self._cell if self._cell is not None else self.text).append(data)


def _summary_with_every_status(folder: Path, extra_column: str | None = None) -> None:
    """A batch folder holding a summary.csv with planned, refused, no-safe-plan and failed levels
    (and one case folder with its report)."""
    rows = []
    for i in range(9):
        for level, status in (("L3", "planned"), ("L4", "planned" if i % 3 else "refused"),
                              ("L5", "no safe plan" if i == 4 else "planned"), ("S1", "failed" if i == 7 else "planned")):
            row = {key: "" for key in SUMMARY_COLUMNS}
            row.update(case_id=f"case{i}", level=level, status=status)
            if status == "planned":
                row.update(approach="transpedicular", side="right", checker_verdict="pass",
                           min_clearance_beyond_margin_mm=f"{0.4 * i + len(level) * 0.1 - 0.3:.2f}",
                           tip_to_terminus_mm=f"{1.5 + 0.2 * i:.2f}", zone_coverage_percent=f"{40 + 4.5 * i:.2f}")
            else:
                row["message"] = {"refused": f"anatomy refused: the canal is {i}.5 mm wide",
                                  "no safe plan": "no path keeps the endplate margin (best misses 0.2 mm)",
                                  "failed": "InputError: cannot read the mesh"}[status]
            rows.append(row)
    text = rows_to_csv(rows)
    if extra_column:  # a column a later version adds
        lines = text.splitlines()
        text = "\n".join([lines[0] + f",{extra_column}"] + [f"{line},{0.01 * n:.2f}" for n, line in enumerate(lines[1:])]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SUMMARY_FILE).write_text(text)
    (folder / "case0").mkdir(exist_ok=True)
    (folder / "case0" / "report.html").write_text("<html></html>")


def _colours(png: bytes):
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return image.size, {colour for _, colour in image.getcolors(maxcolors=1 << 20)}


def test_cohort_report_shows_the_summarys_numbers(tmp_path):
    _summary_with_every_status(tmp_path)
    page = _Page()
    page.feed(write_cohort_report(tmp_path).read_text())
    rows = _summary(tmp_path)

    header, *body = page.tables["status-counts"]
    counts = {line[0]: dict(zip(header[1:-1], map(int, line[1:-1]))) for line in body}
    expected = {}
    for row in rows:
        expected.setdefault(row["level"], Counter())[row["status"]] += 1
    assert counts == {level: {s: c[s] for s in header[1:-1]} for level, c in expected.items()}
    assert sum(int(line[-1]) for line in body) == len(rows)

    header, *body = page.tables["reasons"]
    reasons = {line[0]: int(line[-1]) for line in body}
    assert reasons == {"anatomy refused: the canal is # mm wide": 3,
                       "no path keeps the endplate margin (best misses # mm)": 1, "InputError: cannot read the mesh": 1}

    stats = {line[0]: line[1:] for line in page.tables["distributions"][1:]}
    for column in ("min_clearance_beyond_margin_mm", "tip_to_terminus_mm", "zone_coverage_percent"):
        values = [float(r[column]) for r in rows if r[column]]
        assert stats[column] == [str(len(values)), f"{min(values):.2f}", f"{statistics.median(values):.2f}",
                                 f"{max(values):.2f}"]
    text = "".join(page.text)
    assert "no breach_probability column" in text

    worst = page.tables["smallest-clearance"][1:]
    smallest = sorted(float(r["min_clearance_beyond_margin_mm"]) for r in rows if r["min_clearance_beyond_margin_mm"])
    assert [float(line[2]) for line in worst] == smallest[:len(worst)]
    assert len(page.tables["not-planned"]) - 1 == sum(r["status"] not in ("planned", "anatomy only") for r in rows)
    assert "href='case0/report.html'" in (tmp_path / REPORT_FILE).read_text()

    # the plots render: PNGs of the expected size with real content; the status bars in their colours
    assert len(page.images) == 5  # statuses, reasons, three distributions
    for png in page.images:
        size, colours = _colours(png)
        assert size[0] >= 300 and size[1] >= 150 and len(colours) > 20
    _, colours = _colours(page.images[0])
    for status in ("planned", "refused", "no safe plan", "failed"):
        rgb = tuple(int(STATUS_COLOURS[status][i:i + 2], 16) for i in (1, 3, 5))
        assert rgb in colours, status


def test_cohort_report_plots_a_column_only_when_the_summary_has_it(tmp_path, reference):
    _summary_with_every_status(tmp_path, extra_column="breach_probability")
    page = _Page()
    page.feed(write_cohort_report(tmp_path).read_text())
    assert len(page.images) == 6 and "breach_probability" in {line[0] for line in page.tables["distributions"]}
    assert "no breach_probability column" not in "".join(page.text)
    # an anatomy-only batch: statuses only, a sentence for each distribution
    anatomy = tmp_path / "anatomy"
    anatomy.mkdir()
    (anatomy / SUMMARY_FILE).write_text(rows_to_csv(reference))
    text = write_cohort_report(anatomy).read_text()
    assert re.search(r"min_clearance_beyond_margin_mm</code> has no values", text) and "smallest-clearance" not in text
    page = _Page()
    page.feed(text)
    header, *body = page.tables["status-counts"]
    assert header == ["level", "anatomy only", "total"] and sum(int(line[-1]) for line in body) == len(reference)
