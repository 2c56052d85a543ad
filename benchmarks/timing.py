"""Shared by the benchmark scripts: the median wall time of repeated calls."""

from __future__ import annotations

import statistics
import time


def median_time(function, repeats: int, clock=time.perf_counter) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls of ``function`` and the last call's result; ``clock``:
    wall time by default, or e.g. ``time.process_time`` (this process's CPU time, which other
    processes on a loaded machine inflate far less)."""
    times, result = [], None
    for _ in range(repeats):
        start = clock()
        result = function()
        times.append(clock() - start)
    return statistics.median(times), result
