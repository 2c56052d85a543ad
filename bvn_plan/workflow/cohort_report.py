"""The cohort report: one self-contained HTML page, ``cohort_report.html``, beside a batch's summary.csv.

Drawn from ``summary.csv`` alone (docs/summary_csv.md), so every number on the page is the
summary's: per level the counts of each status (planned, refused...) and the reasons levels were
not planned (numbers in the messages replaced by ``#`` so like reasons group); the distribution
of each column of :data:`DISTRIBUTIONS` the summary has (a sentence for the ones it has not); the
levels not planned and the planned levels with the smallest clearance beyond margin, linked to
their case folders. Plots are drawn with matplotlib's Agg canvas and embedded as PNG, so the page
needs no other file.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import os
import re
import statistics
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from ..atomic import write_text_atomic
from ..planning.plan_file import DISCLAIMER

REPORT_FILE = "cohort_report.html"
#: The summary's statuses in the order shown, with their bar colours.
STATUS_COLOURS = {"planned": "#2e7d32", "no safe plan": "#f9a825", "refused": "#c62828", "anatomy only": "#1565c0",
                  "failed": "#6a1b9a"}
#: Summary columns shown as distributions (column, axis label) when the summary has them.
DISTRIBUTIONS = (("min_clearance_beyond_margin_mm", "smallest clearance beyond margin (mm)"),
                 ("tip_to_terminus_mm", "tip to terminus (mm)"),
                 ("zone_coverage_percent", "zone coverage (%)"),
                 ("breach_probability", "breach probability (0-1)"))
#: Rows in each list of worst cases.
WORST_ROWS = 10
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def read_summary(path: str | os.PathLike) -> tuple[list[str], list[dict]]:
    """The header and rows of a summary.csv."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def reason_of(row: dict) -> str:
    """Why a level was not planned, its numbers replaced by ``#`` so like reasons group ("" if planned)."""
    if row["status"] in ("planned", "anatomy only"):
        return ""
    return _NUMBER.sub("#", row["message"] or row["status"])[:160]


def cohort_numbers(columns: list[str], rows: list[dict]) -> dict:
    """Every number the report shows: ``levels`` (in order of appearance), ``status_counts``
    {level: {status: n}}, ``reasons`` {reason: {level: n}}, ``distributions`` {column: {n, min,
    median, max}} for the :data:`DISTRIBUTIONS` columns present with values."""
    levels = list(dict.fromkeys(r["level"] for r in rows))
    counts = {level: Counter() for level in levels}
    reasons: dict[str, Counter] = {}
    for row in rows:
        counts[row["level"]][row["status"]] += 1
        reason = reason_of(row)
        if reason:
            reasons.setdefault(reason, Counter())[row["level"]] += 1
    distributions = {}
    for column, _ in DISTRIBUTIONS:
        values = [float(r[column]) for r in rows if column in columns and r.get(column, "") != ""]
        if values:
            distributions[column] = {"n": len(values), "min": min(values), "median": statistics.median(values),
                                     "max": max(values), "values": values}
    ordered = dict(sorted(reasons.items(), key=lambda item: (-sum(item[1].values()), item[0])))
    return {"levels": levels, "status_counts": {k: dict(v) for k, v in counts.items()},
            "reasons": {k: dict(v) for k, v in ordered.items()}, "distributions": distributions}


def write_cohort_report(batch_dir: str | os.PathLike) -> Path:
    """Write ``batch_dir/cohort_report.html`` from ``batch_dir/summary.csv``; returns its path."""
    folder = Path(batch_dir)
    columns, rows = read_summary(folder / "summary.csv")
    numbers = cohort_numbers(columns, rows)
    parts = [f"<h1>bvn-plan cohort: {len({r['case_id'] for r in rows})} case(s), {len(rows)} level(s)</h1>",
             f"<p class='note'>{html.escape(DISCLAIMER)}</p>",
             "<p>Every number below is read from <a href='summary.csv'>summary.csv</a> "
             "(its columns: docs/summary_csv.md).</p>",
             _status_section(numbers), _reason_section(numbers), _distribution_section(columns, numbers),
             _worst_section(folder, rows)]
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>bvn-plan cohort report</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:auto} table{border-collapse:collapse;margin:8px 0}"
            "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right} td.text{text-align:left}"
            ".note{color:#555}</style></head><body>" + "\n".join(parts) + "</body></html>\n")
    return write_text_atomic(folder / REPORT_FILE, page)


def _table(table_id: str, header: list[str], body: list[list], text_columns: int = 1) -> str:
    """An HTML table; the first ``text_columns`` cells of a row are left-aligned text (pre-escaped
    HTML allowed in them), the rest numbers."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    lines = ["<tr>" + "".join(f"<td class='text'>{c}</td>" if i < text_columns else f"<td>{c}</td>"
                              for i, c in enumerate(row)) + "</tr>" for row in body]
    return f"<table id='{table_id}'><tr>{head}</tr>{''.join(lines)}</table>"


def _png(fig) -> str:
    """The figure as an embedded PNG ``<img>``, drawn on matplotlib's Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return f"<img alt='plot' src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}'>"


def _figure(width_in: float = 7.0, height_in: float = 3.2):
    # matplotlib is imported here, not at module level, so that `import bvn_plan` stays light.
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), layout="constrained")


def _status_section(numbers: dict) -> str:
    levels, counts = numbers["levels"], numbers["status_counts"]
    statuses = [s for s in STATUS_COLOURS if any(s in counts[level] for level in levels)]
    statuses += sorted({s for level in levels for s in counts[level]} - set(statuses))
    body = [[html.escape(level)] + [counts[level].get(s, 0) for s in statuses] + [sum(counts[level].values())]
            for level in levels]
    fig = _figure()
    axes = fig.add_subplot()
    bottom = [0] * len(levels)
    for status in statuses:
        heights = [counts[level].get(status, 0) for level in levels]
        axes.bar(levels, heights, bottom=bottom, label=status, color=STATUS_COLOURS.get(status, "#777777"))
        bottom = [b + h for b, h in zip(bottom, heights)]
    axes.set_ylabel("levels")
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ("<h2>Per level: planned and not</h2>" + _png(fig)
            + _table("status-counts", ["level"] + statuses + ["total"], body))


def _reason_section(numbers: dict) -> str:
    reasons, levels = numbers["reasons"], numbers["levels"]
    if not reasons:
        return "<h2>Why levels were not planned</h2><p>Every level was planned (or its anatomy found).</p>"
    body = [[html.escape(reason)] + [per_level.get(level, 0) for level in levels] + [sum(per_level.values())]
            for reason, per_level in reasons.items()]
    shown = list(reasons.items())[:WORST_ROWS]
    fig = _figure(height_in=0.35 * len(shown) + 1.2)
    axes = fig.add_subplot()
    axes.barh([_short(r) for r, _ in shown][::-1], [sum(c.values()) for _, c in shown][::-1], color="#c62828")
    axes.set_xlabel("levels")
    axes.tick_params(axis="y", labelsize="x-small")
    return ("<h2>Why levels were not planned</h2>" + _png(fig)
            + _table("reasons", ["reason (numbers as #)"] + levels + ["total"], body))


def _short(text: str, length: int = 60) -> str:
    return text if len(text) <= length else text[:length - 3] + "..."


def _distribution_section(columns: list[str], numbers: dict) -> str:
    parts, body = ["<h2>Distributions</h2>"], []
    for column, label in DISTRIBUTIONS:
        stats = numbers["distributions"].get(column)
        if column not in columns:
            parts.append(f"<p>The summary has no <code>{column}</code> column: no plot of the {html.escape(label)}.</p>")
        elif stats is None:
            parts.append(f"<p><code>{column}</code> has no values in this batch (no level was planned).</p>")
        else:
            fig = _figure(5.0, 2.6)
            axes = fig.add_subplot()
            axes.hist(stats["values"], bins=min(30, max(5, stats["n"] // 3)), color="#1565c0", edgecolor="white")
            axes.set_xlabel(label)
            axes.set_ylabel("levels")
            parts.append(_png(fig))
            body.append([f"<code>{column}</code>", stats["n"], f"{stats['min']:.2f}", f"{stats['median']:.2f}",
                         f"{stats['max']:.2f}"])
    if body:
        parts.append(_table("distributions", ["column", "levels", "min", "median", "max"], body))
    return "\n".join(parts)


def _case_link(folder: Path, case_id: str) -> str:
    """The case id, linked to its report (or folder) when the batch wrote one."""
    target = next((t for t in (f"{case_id}/report.html", f"{case_id}/") if (folder / t).exists()), None)
    name = html.escape(case_id)
    return name if target is None else f"<a href='{quote(target)}'>{name}</a>"


def _worst_section(folder: Path, rows: list[dict]) -> str:
    order = list(STATUS_COLOURS)
    not_planned = sorted((r for r in rows if r["status"] not in ("planned", "anatomy only")),
                         key=lambda r: (order.index(r["status"]) if r["status"] in order else -1, r["case_id"]))
    planned = sorted((r for r in rows if r.get("min_clearance_beyond_margin_mm", "") != ""),
                     key=lambda r: (float(r["min_clearance_beyond_margin_mm"]), r["case_id"], r["level"]))
    parts = ["<h2>Worst cases</h2>"]
    if not_planned:
        body = [[_case_link(folder, r["case_id"]), html.escape(r["level"]), html.escape(r["status"]),
                 html.escape(r["message"])] for r in not_planned[:WORST_ROWS]]
        more = len(not_planned) - WORST_ROWS
        parts.append(f"<h3>Levels not planned ({len(not_planned)})</h3>"
                     + _table("not-planned", ["case", "level", "status", "message"], body, text_columns=4)
                     + (f"<p>and {more} more in summary.csv.</p>" if more > 0 else ""))
    if planned:
        body = [[_case_link(folder, r["case_id"]), html.escape(r["level"]), r["min_clearance_beyond_margin_mm"],
                 r["tip_to_terminus_mm"], html.escape(f"{r['side']} {r['approach']}, {r['checker_verdict']}")]
                for r in planned[:WORST_ROWS]]
        parts.append("<h3>Planned levels with the smallest clearance beyond margin</h3>"
                     + _table("smallest-clearance", ["case", "level", "clearance beyond margin (mm)",
                                                     "tip to terminus (mm)", "plan"], body, text_columns=2))
    if len(parts) == 1:
        parts.append("<p>No level was planned or refused (an anatomy-only batch).</p>")
    return "\n".join(parts)
