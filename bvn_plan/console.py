"""What the command line prints for people: a short summary per command (rich tables on stdout),
built from the same record that ``--json FILE`` writes for machines (:func:`emit`). Numbers read
as :mod:`bvn_plan.text` writes them (fixed decimals, no "-0", points in mm); warnings go to stderr
(cli.py). rich is imported here only, when a command prints."""

from __future__ import annotations

import contextlib
from pathlib import Path

from . import text


def emit(command: str, record: dict, json_out: str | None = None) -> None:
    """Write ``record`` to ``json_out`` (whole or not at all) when given, and print the
    ``command``'s summary of it."""
    from rich.console import Console  # the terminal library stays out of `import bvn_plan`

    if json_out:
        from .atomic import write_json_atomic

        write_json_atomic(json_out, record)
    console = Console(highlight=False, soft_wrap=False)
    for part in SUMMARIES[command](record):
        console.print(part)
    if json_out:
        console.print(f"wrote {json_out}")


@contextlib.contextmanager
def progress(total: int, description: str):
    """A progress bar on stderr for ``total`` steps; yields ``advance(done)``, called with what
    was just done (shown beside the bar)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[done]}"))
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total, done="")
        yield lambda done: bar.update(task, advance=1, done=f"done: {done}")


@contextlib.contextmanager
def steps_bar(description: str):
    """A progress bar on stderr for a computation that reports (steps done, steps in all)."""
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _table(title: str | None, header: tuple[str, ...], rows: list[tuple]):
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_edge=False, header_style="bold", show_header=any(header))
    for i, name in enumerate(header):
        # a text column is never narrower than its longest word (up to 24 characters), so no word
        # is cut; a number column is as narrow as its numbers and its header's longest word allow
        cells = [str(row[i]) for row in rows]
        if i and name.endswith(")"):
            width = max([len(c) for c in cells] + [len(w) for w in name.split()]) + 1
            table.add_column(name, justify="right", max_width=width)
        else:
            table.add_column(name, min_width=min(max([len(w) for c in cells for w in c.split()], default=0), 24))
    for row in rows:
        table.add_row(*(str(c) for c in row))
    return table


def _notes(notes: list[str]) -> list[str]:
    """Notes are printed as warnings when they arise (stderr); the summary counts them."""
    return [f"{len(notes)} note(s), printed as warnings above and kept in the JSON"] if notes else []


def _info(r: dict) -> list:
    extents = " x ".join(text.number(x) for x in r["extents_mm"])
    rows = [("file", r["source"]), ("level", r["level"] or "not given"),
            ("patient frame", r["patient_frame"] or "none given (the file's own coordinates)"),
            ("units of the file", r["input_units"]), ("faces / vertices", f"{r['faces']} / {r['vertices']}"),
            ("size (mm)", extents), ("closed surface", text.value(r["watertight"])),
            ("genus (holes)", text.value(r["genus"])),
            ("volume (mm³)", text.number(r["volume_mm3"], 0) if r["volume_mm3"] is not None else "n/a (not closed)")]
    return [_table("vertebra mesh", ("", ""), rows), *_notes(r["notes"])]


def _labelmap(r: dict) -> list:
    rows = [(level, text.number(e["volume_mm3"] / 1000, 1), text.number(e["voxel_volume_mm3"] / 1000, 1),
             text.point(e["centroid_ras_mm"]), text.value(e["watertight"]), e.get("file", ""))
            for level, e in r["levels"].items()]
    parts = [f"{r['source']}: labelled {', '.join(r['labelled_levels']) or 'no spine level'}",
             _table("meshed levels (RAS mm)", ("level", "mesh volume (cm³)", "voxel volume (cm³)", "centroid (RAS)",
                                               "closed", "file"), rows)]
    parts += [f"finding ({', '.join(f['levels'])}): {f['message']}" for f in r["findings"]]
    return parts


def _anatomy(r: dict) -> list:
    points = [(text.label(k), text.point(v)) for k, v in r["landmarks_mm"].items()]
    morphometry = [(text.label(k), text.number(v)) for k, v in r["morphometry"].items()]
    weakest = min(r["confidence"].items(), key=lambda kv: kv[1]) if r["confidence"] else None
    parts = [f"{r['level']} from {r['source']}; points in mm, frame: {r['frame']}",
             _table("landmarks", ("landmark", "point (mm)"), points),
             _table("morphometry", ("measure", "value"), morphometry)]
    if weakest:
        parts.append(f"lowest confidence: {text.label(weakest[0])} {text.number(weakest[1], 2)} (0 = not found, 1 = clear)")
    return parts + [f"mesh written: {m}" for m in r.get("exported_meshes", [])] + _notes(r["notes"])


def _lesion(r: dict) -> list:
    rows = [("model", r["model"]), ("tissue", r["tissue"]), ("damage model", r["damage"]),
            ("heating", r["heating"] or "n/a (geometric lesion)"), ("volume (mm³)", text.number(r["volume_mm3"], 0)),
            ("length along the probe (mm)", text.number(r["extent_along_mm"])),
            ("diameter across the probe (mm)", text.number(r["extent_across_mm"]))]
    return [_table("predicted lesion", ("", ""), rows)] + [f"wrote {f}" for f in r.get("written", [])]


def _check(r: dict) -> list:
    """The rules as a table, how the path reaches the bone and its breach grade (the verdict and its
    reasons are printed before, by the command)."""
    rows = [(rule["rule"], rule["status"], text.number(rule["clearance_mm"]), text.number(rule["margin_mm"]),
             text.signed(rule["clearance_mm"] - rule["margin_mm"])) for rule in r["rules"]]
    entry = r.get("entry") or {}
    parts = [_table("rules", ("rule", "status", "clearance (mm)", "margin (mm)", "beyond margin (mm)"), rows)]
    if entry:
        parts.append(f"bone entry: {entry['window'] or 'outside the windows'} ({entry['structure'] or 'no structure at risk'})")
    return parts + [f"Gertzbein-Robbins grade {r['gertzbein_robbins_grade']}; "
                    f"{'intraosseous' if r['intraosseous'] else 'LEAVES THE BONE'} from bone entry to tip"]


def _plan(r: dict) -> list:
    """Every approach and side as a table, then what blocked those without a plan (the
    recommendation and its reasons are printed before, by the command)."""
    rows = [(o["side"], o["approach"], o["verdict"] or "no plan", _cell(o["min_clearance_beyond_margin_mm"]),
             _cell(o["tip_to_terminus_mm"]), _cell(o["zone_coverage_percent"], 0),
             _cell(o["needle_length_skin_to_tip_mm"], 0)) for o in r["options"]]
    blocked = [f"{o['side']} {o['approach']}: no plan: {o['why_not']}" for o in r["options"] if o["verdict"] is None]
    label = [f"level label one off: as {a['level']}: "
             + (f"{a['side']} {a['approach']} ({a['verdict']})" if a["approach"] else "no plan")
             + (" - CHANGED" if a["changed"] else " - the same") for a in r.get("label_sensitivity") or []]
    breach = [f"{o['side']} {o['approach']} {_cell(100 * o['breach_probability'], 0)} %"
              + (" FRAGILE" if o["fragile"] else "") for o in r["options"] if o.get("breach_probability") is not None]
    probes = r.get("two_probes")
    pair = probes and probes["pair"]
    if pair and pair.get("breach_probability") is not None:
        breach.append(f"right + left pair {_cell(100 * pair['breach_probability'], 0)} %" + (" FRAGILE" if pair["fragile"] else ""))
    if pair:  # the pair's row: both verdicts with the union lesion, the union's zone coverage
        rows.append(("right + left", "two probes (transpedicular)", " / ".join(pair["verdicts"]),
                     _cell(pair["min_clearance_beyond_margin_mm"]), " / ".join(_cell(d) for d in pair["tip_to_terminus_mm"]),
                     _cell(pair["zone_coverage_percent"], 0),
                     " / ".join(_cell(n, 0) for n in pair["needle_lengths_skin_to_tip_mm"])))
    return [_table("every approach and side", ("side", "approach", "verdict", "beyond margin (mm)",
                                                "tip to terminus (mm)", "zone covered (%)", "needle (mm)"), rows),
            *blocked, *(["breach probability under placement error: " + "; ".join(breach)] if breach else []), *label,
            *([f"probes: {probes['words']}"] if probes else [])]


def _show(r: dict) -> list:
    return [f"{r['level']}: the {r['side']} {r['approach']} path of {r['plan']}, checked again: {r['verdict']}"] + (
        [f"wrote {r['png']}"] if r["png"] else [])


def _render(r: dict) -> list:
    return [f"wrote {f}" for f in r["written"]]


def typed_row(row: dict) -> dict:
    """A summary.csv row for JSON: numbers as numbers (columns ending _mm, _deg, _hu), empty cells null."""
    return {k: (None if v in ("", None) else float(v) if k.endswith(("_mm", "_deg", "_hu")) else v)
            for k, v in row.items()}


def _cell(item, digits: int = 1) -> str:
    """A summary cell as the console rounds it; empty (None) stays empty."""
    return text.number(float(item), digits) if item not in ("", None) else ""


def _case(r: dict) -> list:
    rows = [(row["level"], row["status"], row["eligibility"], f"{row['side'] or ''} {row['approach'] or ''}".strip(),
             row["checker_verdict"] or "", _cell(row["tip_to_terminus_mm"]), _cell(row["min_clearance_beyond_margin_mm"]),
             f"{_cell(row['introducer_medial_deg'], 0)} / {_cell(row['introducer_craniocaudal_deg'], 0)}".strip(" /"),
             row["message"] or "") for row in r["levels"]]
    parts = []
    if r["eligibility"] is not None:
        parts.append(f"eligibility: {r['eligibility']['verdict']}")
        parts += [f"  - {reason}" for reason in r["eligibility"]["reasons"]]
    parts.append(_table("levels", ("level", "status", "eligibility", "plan", "verdict", "tip to terminus (mm)",
                                   "clearance beyond margin (mm)", "medial / cranio-caudal (deg)", "why"), rows))
    out = Path(r["out"])
    parts.append(f"wrote {out / 'plan.json'}, {out / 'summary.csv'}, {out / 'report.html'} and {out / 'slicer'}")
    return parts


def _batch(r: dict) -> list:
    rows = [("planned now", r["planned"]), ("already done (skipped)", r["skipped_as_done"]),
            ("failed", len(r["failed"])), ("time (s)", text.number(r["seconds"])),
            ("vertebrae per minute", text.number(r["vertebrae_per_minute"]))]
    parts = [_table("batch", ("", ""), rows)]
    parts += [f"failed {case}: {why}" for case, why in r["failed"].items()]
    parts.append(f"wrote {r['summary']} and {r['report']}")
    return parts


SUMMARIES = {"info": _info, "labelmap": _labelmap, "anatomy": _anatomy, "lesion": _lesion, "render": _render,
             "case": _case, "batch": _batch, "check": _check, "plan": _plan, "show": _show}
