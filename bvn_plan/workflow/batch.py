"""Cohorts: plan many cases (case files or single meshes) on a Dask cluster, resumable.

Each input becomes one case folder ``<out>/<case_id>/`` written by :func:`bvn_plan.workflow.case.plan_case`
(built in a temporary sibling and swapped in whole, with the done marker written last), so after
an interruption every case folder is complete or absent. A re-run skips the cases whose folder
holds the done marker and plans the rest; ``<out>/summary.csv`` (one row per case and level,
sorted by case and level; columns in docs/summary_csv.md) is rebuilt from the done markers at the
end, so an interrupted and resumed batch ends with the same summary as an uninterrupted one, and
``<out>/cohort_report.html`` (:mod:`bvn_plan.workflow.cohort_report`) is drawn from that summary.

Where the cases run:

* ``workers=1`` and no scheduler: one after the other in this process (no cluster; the reference
  the parallel runs must equal, and the easiest to debug);
* otherwise on Dask distributed, one task per case: a local cluster of ``workers`` single-threaded
  worker processes (default: one per core), or an existing cluster at ``scheduler`` (an address
  such as ``tcp://10.0.0.5:8786`` or a scheduler file), whose workers must see ``out`` and the
  inputs at the same paths (docs/cohorts.md).

A worker that dies (killed, out of memory, its node lost) has its case rerun elsewhere by Dask; a
task first checks the done marker, so a case that was finished is never planned again. Every
attempt is logged in ``<out>/attempts/<case_id>.jsonl`` (one JSON line when it starts and one when
it ends: time, host, process), which makes reruns visible. A case that fails (a bvn-plan error,
an unexpected exception, or a case that kept killing its workers) is reported and left
unfinished, and the other cases go on; a re-run tries it again.

Inputs: case files (``.yaml``, ``.yml``, ``.json``) or vertebra meshes (any format
:mod:`bvn_plan.mesh_io` reads; the level from the file name, e.g. ``patient7_L4.stl``, or given).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from threadpoolctl import threadpool_limits

from ..atomic import write_text_atomic
from ..errors import BvnPlanError, BvnPlanWarning, InputError
from ..levels import SPINE_ORDER
from ..mesh_io import MESH_FORMATS
from .case import (DONE_MARKER, SUMMARY_COLUMNS, Case, case_for_mesh, file_case_id, load_case, plan_case,
                   rows_to_csv)
from .cohort_report import REPORT_FILE, write_cohort_report

CASE_SUFFIXES = (".yaml", ".yml", ".json")
SUMMARY_FILE = "summary.csv"
#: Folder of the per-case attempt logs, ``<case_id>.jsonl``.
ATTEMPTS_DIR = "attempts"
_LEVEL_ORDER = {level: i for i, level in enumerate(SPINE_ORDER)}
#: Dask settings of the local cluster the batch starts. A case is seconds of one busy thread, so the
#: diagnostics that wake every worker many times a second are pure cost on a small machine: the
#: sampling profiler of the dashboard's profile page (every 10 ms by default), the event-loop tick
#: that detects a blocked loop (20 ms), the system monitor (0.5 s) and the memory monitor (0.1 s).
#: Measured on 2 loaded cores: the worker's CPU outside the case's thread fell from ~28 to ~5 ms per
#: second of wall time. On Linux the workers are forked, as the old process pool's were: they start with
#: bvn-plan already imported (about 1.5 s for two workers instead of 5 s spawned, on 2 cores).
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.multiprocessing-method": "fork" if sys.platform.startswith("linux") else "spawn",
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


@dataclass
class BatchResult:
    """What a batch run did: the summary rows, case ids planned now, skipped (already done) and
    failed (with the error), the wall time (s, including starting a local cluster), the
    throughput of this run and the Dask dashboard's address (None without Dask)."""

    rows: list[dict]
    planned: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    vertebrae_planned: int = 0
    dashboard: str | None = None

    @property
    def vertebrae_per_minute(self) -> float:
        return 60.0 * self.vertebrae_planned / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BatchInputs:
    """What a batch plans: the cases, and the inputs that could not become one (case id -> why,
    e.g. a mesh whose level its name does not tell); those get a failed row, the rest go on."""

    cases: list[Case]
    rejected: dict[str, str] = field(default_factory=dict)


def batch_cases(inputs: list[str | os.PathLike], level: str | None = None, units: str | None = None,
                frame: str | None = None, **mesh_options) -> BatchInputs:
    """The cases of ``inputs`` (files, or folders whose case files and meshes are taken, sorted by
    name): case files are loaded, meshes wrapped by :func:`case_for_mesh` (with ``level``,
    ``units``, ``frame`` and ``mesh_options``). An input that cannot become a case (a case file that
    does not validate, a mesh whose level is not in its name) is rejected with its reason. Raises
    :class:`InputError` for a missing path, a named file that is neither case file nor mesh, a folder
    with neither, two inputs sharing a case id (they would share a folder) or a case id that is one of
    the batch's own file names."""
    batch = BatchInputs(cases=[])
    for path in _input_files(inputs):
        try:
            if path.suffix.lower() in CASE_SUFFIXES:
                batch.cases.append(load_case(path))
            else:
                batch.cases.append(case_for_mesh(path, level=level, units=units, frame=frame, **mesh_options))
        except InputError as exc:
            batch.rejected[file_case_id(path)] = f"{type(exc).__name__}: {exc}"
    seen: dict[str, str] = {}
    for case_id, source in [(c.case_id, c.source) for c in batch.cases] + [(i, i) for i in batch.rejected]:
        if case_id in seen:
            raise InputError(f"{source} and {seen[case_id]} share the case id {case_id!r}; rename one")
        if case_id in (SUMMARY_FILE, REPORT_FILE, ATTEMPTS_DIR):
            raise InputError(f"{source}: the case id {case_id!r} is a batch file's name; rename it")
        seen[case_id] = source
    return batch


def _input_files(inputs: list[str | os.PathLike]) -> list[Path]:
    """The files of ``inputs``: each file as given, each folder's case files and meshes (not
    recursive, sorted by name); absolute, since the workers of a remote cluster run elsewhere."""
    suffixes = CASE_SUFFIXES + tuple(MESH_FORMATS)
    files = []
    for item in inputs:
        path = Path(item).absolute()
        if path.is_dir():
            found = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in suffixes)
            if not found:
                raise InputError(f"{path}: a folder with no case file ({', '.join(CASE_SUFFIXES)}) or mesh "
                                 f"({', '.join(MESH_FORMATS)})")
            files += found
        elif not path.is_file():
            raise InputError(f"{path}: no such file or folder")
        elif path.suffix.lower() not in suffixes:
            raise InputError(f"{path}: not a case file ({', '.join(CASE_SUFFIXES)}) or a mesh ({', '.join(MESH_FORMATS)})")
        else:
            files.append(path)
    return files


def run_batch(inputs: BatchInputs, out_dir: str | os.PathLike, workers: int | None = None,
              scheduler: str | None = None, progress: bool = True, redo: bool = False) -> BatchResult:
    """Plan the cases of ``inputs`` into ``out_dir/<case_id>/``, skipping finished cases (unless ``redo``), then
    write ``out_dir/summary.csv`` and ``out_dir/cohort_report.html`` atomically. ``workers``: 1
    plans in this process, more start a local Dask cluster of that many processes (default: one
    per core); ``scheduler`` (address or scheduler file) uses an existing cluster instead. A
    case that fails, or an input rejected, is reported (``failed`` and its summary rows) and left
    unfinished, so a re-run tries it again. One batch at a time per ``out_dir``."""
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    if workers is not None and scheduler is not None:
        raise InputError("give either workers (a local cluster) or a scheduler (an existing cluster), not both")
    out = Path(out_dir).absolute()
    try:
        (out / ATTEMPTS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the batch output folder {out}: {exc}") from exc
    clear_stale(out)
    result = BatchResult(rows=[], failed=dict(inputs.rejected))
    todo = []
    for case in inputs.cases:
        if not redo and (out / case.case_id / DONE_MARKER).is_file():
            result.skipped.append(case.case_id)
        else:
            todo.append(case)
    start = time.perf_counter()
    if todo and workers == 1 and scheduler is None:
        outcomes = [plan_one(case, out, redo) for case in todo]
    elif todo:
        outcomes = _run_on_dask(todo, out, workers or _cores(), scheduler, progress, redo, result)
    else:
        outcomes = []
    for case_id, levels, error in outcomes:
        if error is None:
            result.planned.append(case_id)
            result.vertebrae_planned += levels
        else:
            result.failed[case_id] = error
    result.seconds = time.perf_counter() - start
    clear_stale(out)  # what attempts killed mid-write left
    result.rows = collect_rows(inputs.cases, out, result.failed)
    write_text_atomic(out / SUMMARY_FILE, rows_to_csv(result.rows))
    write_cohort_report(out)
    return result


def _cores() -> int:
    """Cores this process may run on (the local cluster's default size)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _run_on_dask(cases: list[Case], out: Path, workers: int, scheduler: str | None, progress: bool, redo: bool,
                 result: BatchResult) -> list[tuple[str, int, str | None]]:
    """Plan ``cases`` as Dask tasks (one per case) on a local cluster or at ``scheduler``; the
    outcomes in the order of ``cases``. Sets ``result.dashboard``."""
    # Dask is imported here, not at module level, so that `import bvn_plan` stays light.
    import dask
    from distributed import Client, LocalCluster, wait
    from distributed import progress as progress_bar

    with contextlib.ExitStack() as stack:
        if scheduler is None:
            with dask.config.set(LOCAL_CLUSTER_CONFIG):
                cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                           host="127.0.0.1", dashboard_address="127.0.0.1:0"))
            client = stack.enter_context(Client(cluster))
        else:
            client = stack.enter_context(_connect(scheduler))
        result.dashboard = client.dashboard_link
        futures = [client.submit(plan_one, case, out, redo, pure=False) for case in cases]
        if progress:
            print(f"planning {len(cases)} case(s) on {len(client.scheduler_info()['workers'])} Dask worker(s); "
                  f"dashboard: {result.dashboard}", file=sys.stderr, flush=True)
            with contextlib.redirect_stdout(sys.stderr):  # Dask's bar draws on stdout, the batch prints JSON there
                progress_bar(futures)
        wait(futures)
        return [_outcome(future, case) for future, case in zip(futures, cases)]


def _connect(scheduler: str):
    """A Dask client of the cluster whose scheduler file or address is ``scheduler``."""
    from distributed import Client

    try:
        if Path(scheduler).is_file():
            return Client(scheduler_file=scheduler, timeout="60s")
        return Client(scheduler, timeout="60s")
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot reach the Dask scheduler {scheduler!r} (an address tcp://HOST:PORT or a "
                         f"scheduler file): {exc}") from exc


def _outcome(future, case: Case) -> tuple[str, int, str | None]:
    """A finished task's outcome; a task Dask gave up on (its workers kept dying) is a failure."""
    if future.status == "finished":
        return future.result()
    if future.status == "error":
        exc = future.exception()
        return case.case_id, 0, f"{type(exc).__name__}: {exc}"
    return case.case_id, 0, f"Dask task {future.status}"


def plan_one(case: Case, out: Path, redo: bool = False) -> tuple[str, int, str | None]:
    """Plan one case in its folder (one batch task), logging the attempt; returns (case id, levels
    planned, error or None). A case already finished is not planned again (unless ``redo``). Errors
    are returned, not raised, so one case cannot stop the others."""
    warnings.simplefilter("ignore", BvnPlanWarning)  # the notes are in plan.json
    log = out / ATTEMPTS_DIR / f"{case.case_id}.jsonl"
    _log_attempt(log, "start")
    if not redo and (out / case.case_id / DONE_MARKER).is_file():
        _log_attempt(log, "already done")  # an earlier attempt finished, its worker died before reporting
        return case.case_id, len(case.levels), None
    try:
        # The batch's workers are the parallelism: a case runs on one thread, its BLAS too. Dask's nanny
        # sets OMP/OPENBLAS_NUM_THREADS=1 for the workers it spawns, which a forked worker (and this
        # process) does not get: measured, OpenBLAS's second thread took ~0.5 s of CPU per case and
        # made it ~10 % slower in wall time even alone (synthetic cohort, 2 cores).
        with threadpool_limits(limits=1):
            plan_case(case, out / case.case_id, workers=1)
    except BvnPlanError as exc:
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a bug on this case: reported with its traceback, the cohort goes on
        error = f"internal error {type(exc).__name__}: {exc}"
        _log_attempt(log, "failed", error=error, traceback=traceback.format_exc())
        return case.case_id, 0, error
    else:
        _log_attempt(log, "done")
        return case.case_id, len(case.levels), None
    _log_attempt(log, "failed", error=error)
    return case.case_id, 0, error


def _log_attempt(log: Path, event: str, **details) -> None:
    """Append one line to a case's attempt log: the event, UTC time, host and process id."""
    entry = {"event": event, "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
             "host": socket.gethostname(), "pid": os.getpid(), **details}
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_attempts(out: str | os.PathLike, case_id: str) -> list[dict]:
    """The attempt log of ``case_id`` in the batch folder ``out`` (oldest first; [] if none)."""
    log = Path(out) / ATTEMPTS_DIR / f"{case_id}.jsonl"
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def collect_rows(cases: list[Case], out: Path, failed: dict[str, str]) -> list[dict]:
    """Summary rows of every case from its done marker (an error row for a failed case, one row
    with no level for a rejected input: in ``failed`` but not a case), sorted by case id and level."""
    rows = [_failed_row(case_id, "", failed[case_id]) for case_id in set(failed) - {case.case_id for case in cases}]
    for case in cases:
        marker = out / case.case_id / DONE_MARKER
        if marker.is_file():
            rows += json.loads(marker.read_text(encoding="utf-8"))["rows"]
        else:
            rows += [_failed_row(case.case_id, level, failed.get(case.case_id, "not finished")) for level in case.levels]
    return sorted(rows, key=lambda r: (r["case_id"], _LEVEL_ORDER.get(r["level"], 99)))


def _failed_row(case_id: str, level: str, message: str) -> dict:
    """A summary row of a case (level) that has no plan: status failed, the reason in message."""
    row = {key: "" for key in SUMMARY_COLUMNS}
    row.update(case_id=case_id, level=level, status="failed", message=message)
    return row


def clear_stale(out: Path) -> None:
    """Remove temporary folders a killed run left in ``out`` (``.<case>.new-*``, ``.<case>.old-*``)."""
    for stale in list(out.glob(".*.new-*")) + list(out.glob(".*.old-*")):
        shutil.rmtree(stale, ignore_errors=True)
