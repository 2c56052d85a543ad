"""Cohorts: plan many cases (case files or single meshes) in parallel worker processes, resumable.

Each input becomes one case folder ``<out>/<case_id>/`` written by :func:`bvn_plan.workflow.case.plan_case`
(built in a temporary sibling and swapped in whole, with the done marker written last), so after
an interruption every case folder is complete or absent. A re-run skips the cases whose folder
holds the done marker and plans the rest; ``<out>/summary.csv`` (one row per case and level,
sorted by case and level) is rebuilt from the done markers at the end, so an interrupted and
resumed batch ends with the same summary as an uninterrupted one.

Inputs: case files (``.yaml``, ``.yml``, ``.json``) or vertebra meshes (any format
:mod:`bvn_plan.mesh_io` reads; the level from the file name, e.g. ``patient7_L4.stl``, or given).
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_text_atomic
from .case import DONE_MARKER, SUMMARY_COLUMNS, Case, case_for_mesh, load_case, plan_case, rows_to_csv
from ..errors import BvnPlanError, InputError
from ..levels import LEVELS
from ..errors import BvnPlanWarning
from ..mesh_io import MESH_FORMATS

CASE_SUFFIXES = (".yaml", ".yml", ".json")
SUMMARY_FILE = "summary.csv"
_LEVEL_ORDER = {level: i for i, level in enumerate(LEVELS[:5] + ("L6", "S1"))}


@dataclass
class BatchResult:
    """What a batch run did: the summary rows, case ids planned now, skipped (already done) and
    failed (with the error), the wall time (s) and the throughput of this run."""

    rows: list[dict]
    planned: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    vertebrae_planned: int = 0

    @property
    def vertebrae_per_minute(self) -> float:
        return 60.0 * self.vertebrae_planned / self.seconds if self.seconds > 0 else 0.0


def batch_cases(inputs: list[str | os.PathLike], level: str | None = None, units: str | None = None,
                frame: str | None = None, **mesh_options) -> list[Case]:
    """Cases for ``inputs``: case files are loaded, meshes wrapped by :func:`case_for_mesh`
    (with ``level``, ``units``, ``frame`` and ``mesh_options``). Raises :class:`InputError`
    naming the bad input, or when two inputs share a case id (they would share a folder)."""
    cases = []
    for item in inputs:
        path = Path(item)
        suffix = path.suffix.lower()
        if suffix in CASE_SUFFIXES:
            cases.append(load_case(path))
        elif suffix in MESH_FORMATS:
            cases.append(case_for_mesh(path, level=level, units=units, frame=frame, **mesh_options))
        else:
            raise InputError(f"{path}: not a case file ({', '.join(CASE_SUFFIXES)}) or a mesh ({', '.join(MESH_FORMATS)})")
    seen: dict[str, str] = {}
    for case in cases:
        if case.case_id in seen:
            raise InputError(f"{case.source} and {seen[case.case_id]} share the case id {case.case_id!r}; rename one")
        seen[case.case_id] = case.source
    return cases


def run_batch(cases: list[Case], out_dir: str | os.PathLike, workers: int = 1, progress: bool = True,
              redo: bool = False) -> BatchResult:
    """Plan ``cases`` into ``out_dir/<case_id>/`` with ``workers`` processes; skip finished cases
    (unless ``redo``), then write ``out_dir/summary.csv`` atomically. A case that fails with a
    bvn-plan error is reported (``failed`` and a summary row) and left unfinished, so a re-run
    tries it again. One batch at a time per ``out_dir``."""
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the batch output folder {out}: {exc}") from exc
    clear_stale(out)
    result = BatchResult(rows=[])
    todo = []
    for case in cases:
        if not redo and (out / case.case_id / DONE_MARKER).is_file():
            result.skipped.append(case.case_id)
        else:
            todo.append(case)
    start = time.perf_counter()
    bar = _progress(len(todo), progress)
    try:
        for case_id, levels, error in _execute(todo, out, workers):
            if error is None:
                result.planned.append(case_id)
                result.vertebrae_planned += levels
            else:
                result.failed[case_id] = error
            bar.update(1)
    finally:
        bar.render_finish()
    result.seconds = time.perf_counter() - start
    result.rows = collect_rows(cases, out, result.failed)
    write_text_atomic(out / SUMMARY_FILE, rows_to_csv(result.rows))
    return result


def collect_rows(cases: list[Case], out: Path, failed: dict[str, str]) -> list[dict]:
    """Summary rows of every case from its done marker (an error row for a failed case), sorted
    by case id and level."""
    import json

    rows = []
    for case in cases:
        marker = out / case.case_id / DONE_MARKER
        if marker.is_file():
            rows += json.loads(marker.read_text(encoding="utf-8"))["rows"]
        else:
            for level in case.levels:
                row = {key: "" for key in SUMMARY_COLUMNS}
                row.update(case_id=case.case_id, level=level, status="failed",
                           message=failed.get(case.case_id, "not finished"))
                rows.append(row)
    return sorted(rows, key=lambda r: (r["case_id"], _LEVEL_ORDER.get(r["level"], 99)))


def _execute(cases: list[Case], out: Path, workers: int):
    """Yield (case id, levels planned, error or None) as cases finish."""
    if workers == 1 or len(cases) <= 1:
        for case in cases:
            yield _plan_one(case, out)
        return
    executor = ProcessPoolExecutor(max_workers=workers)
    try:
        pending = {executor.submit(_plan_one, case, out) for case in cases}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _plan_one(case: Case, out: Path) -> tuple[str, int, str | None]:
    """Plan one case in its folder; bvn-plan errors are returned, not raised."""
    warnings.simplefilter("ignore", BvnPlanWarning)  # the notes are in plan.json
    try:
        plan_case(case, out / case.case_id, workers=1)  # the batch's workers are the parallelism
    except BvnPlanError as exc:
        return case.case_id, 0, f"{type(exc).__name__}: {exc}"
    return case.case_id, len(case.levels), None


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def render_finish(self) -> None:
        pass


def _progress(length: int, show: bool):
    if not show or length == 0:
        return _NoBar()
    import click

    bar = click.progressbar(length=length, label=f"planning {length} case(s)", file=click.get_text_stream("stderr"),
                            show_pos=True, show_eta=True)
    bar.render_progress()
    return bar


def clear_stale(out: Path) -> None:
    """Remove temporary folders a killed run left in ``out`` (``.<case>.new-*``, ``.<case>.old-*``)."""
    for stale in list(out.glob(".*.new-*")) + list(out.glob(".*.old-*")):
        shutil.rmtree(stale, ignore_errors=True)
