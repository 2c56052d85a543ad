"""A self-contained HTML report of planned levels (one file: styles inline, pictures embedded as
base64 PNG, the 3D views' meshes and viewer script inline: it works offline).

It shows the research-and-teaching-aid statement, the eligibility verdict with its reasons and
sources (when the case has clinical data), the clinician's data, a summary table per level and
side, per level the chosen plan's reasons, clinician's numbers (points in the input's frame and
units, lengths mm, angles degrees), CT numbers (HU) and pictures (a 3D view to rotate and zoom,
:mod:`bvn_plan.viz.web`; the 3D scene,
:func:`bvn_plan.viz.scene.render_scene_png`, and the simulated AP, lateral and en-face fluoroscopy,
:func:`bvn_plan.viz.fluoro.simulate_fluoro_views`), and every assumption with its source: the device
profile (:data:`bvn_plan.device.SOURCES`), the safety rules, the planner settings, the BVN
terminus parameters, the level morphometry priors and the eligibility sources.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .. import text
from .._version import __version__
from ..atomic import write_text_atomic
from ..coordinates import LPS
from ..device import SOURCES as DEVICE_SOURCES
from .eligibility import SOURCES as ELIGIBILITY_SOURCES, Eligibility
from ..landmarks import Landmarks, TerminusParameters
from ..levels import MORPHOMETRY, TRANSITIONAL
from ..planning.path_numbers import describe
from ..planning.planner import LevelPlan, PathPlan
from ..planning.plan_file import DISCLAIMER, frame_name

if TYPE_CHECKING:  # case.py imports this module
    from .case import LevelOutcome

#: Pixel size (mm) of the simulated fluoroscopy in the report.
FLUORO_PIXEL_MM = 0.5
#: Source of the terminus parameters (TerminusParameters docstring).
TERMINUS_SOURCE = ("[A] docs/sources.md 'Anatomy of the target' 3-4: terminus in the posterior third to half of the "
                   "body at the midline (Antonacci 1998; AJNR case 2024); S1 body centre (PMC4681698)")
PRIORS_SOURCE = ("bvn_plan.levels: L5 CT series [V, IJSS]; pedicle widths and angles Zindrick/Panjabi [A]; "
                 "interpedicular distance [V]; S1 Okutan 2003 [V]; the rest [A], SD 10% of the mean where none is published")

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.4}
h1{margin-bottom:0}.disclaimer{background:#fff3cd;border:1px solid #e0c060;padding:.6em 1em;margin:1em 0}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f0f0f0}.chosen{background:#e6f0ff;font-weight:600}
.verdict{display:inline-block;padding:.2em .7em;border-radius:.3em;color:#fff;font-weight:700}
.indicated,.pass{background:#2e7d32}.not-indicated,.fail{background:#c62828}.needs-review,.warn{background:#ef8f00}
.not-assessed{background:#777}figure{display:inline-block;margin:.3em;text-align:center}
figure img{width:520px;max-width:100%;border:1px solid #ccc}small{color:#555}
"""


@dataclass
class ReportContext:
    """The case-wide part of a report: its ``title``, the ``eligibility`` checklist and the
    ``clinical`` section of the case (when it has clinical data), the input ``notes``, the
    ``terminus`` parameters used; whether to render the pictures (``images``, a few seconds per
    level) and a ``ct`` (nibabel image, RAS mm) for the fluoroscopy."""

    title: str = "bvn-plan report"
    eligibility: Eligibility | None = None
    clinical: dict | None = None
    notes: list[str] = field(default_factory=list)
    terminus: TerminusParameters = field(default_factory=TerminusParameters)
    images: bool = True
    ct: object = None


def write_report(path: str | os.PathLike, outcomes: Sequence[LevelOutcome],
                 context: ReportContext = ReportContext()) -> Path:
    """Write the HTML report of the levels' ``outcomes`` (:class:`bvn_plan.workflow.case.LevelOutcome`:
    planned with the chosen plan and why, anatomy only, or refused) to ``path`` atomically."""
    return write_text_atomic(path, report_html(outcomes, context))


def report_html(outcomes: Sequence[LevelOutcome], context: ReportContext = ReportContext()) -> str:
    """The report as one HTML string (arguments as :func:`write_report`)."""
    planned = [o for o in outcomes if o.level_plan is not None]
    anatomy_only = [o.landmarks for o in outcomes if o.level_plan is None and o.error is None]
    sources = _Sources(ELIGIBILITY_SOURCES.values())
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(context.title)}</title>",
             f"<style>{_STYLE}</style></head><body>", f"<h1>{_e(context.title)}</h1>",
             f"<p><small>bvn-plan {__version__}</small></p>", f"<p class='disclaimer'><b>{_e(DISCLAIMER)}</b></p>"]
    if context.eligibility is not None:
        parts.append(_eligibility_section(context.eligibility, sources))
    if context.clinical:
        parts.append("<h2>Clinician's data</h2>" + _table(["item", "value"], _flatten(context.clinical)))
    parts.append(_summary_section(planned))
    for o in outcomes:
        if o.error:
            parts.append(f"<h2>{_e(o.level)}</h2><p><b>Not planned:</b> {_e(o.error)}</p>")
    for landmarks in anatomy_only:
        parts.append(_anatomy_section(landmarks))
    for o in planned:
        parts.append(_level_section(o, context))
    if context.notes:
        parts.append("<h2>Input notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in context.notes) + "</ul>")
    levels = [o.level_plan.level for o in planned] + [lm.level for lm in anatomy_only]
    parts.append(_assumptions_section([o.level_plan for o in planned], levels, context.terminus, sources))
    parts.append(sources.section())
    if context.images and planned:
        from ..viz.web import VIEWER_SCRIPT  # pyvista (through the viz face)

        parts.append(VIEWER_SCRIPT)
    parts.append(f"<p class='disclaimer'>{_e(DISCLAIMER)}</p></body></html>")
    return "\n".join(parts)


def render_level_images(vertebra, landmarks: Landmarks, plan: PathPlan | None, ct=None) -> dict[str, bytes]:
    """PNG bytes by caption: the pictures of :func:`bvn_plan.viz.pictures.write_pictures` (3D scenes,
    bone translucent around the instrument and lesion; AP, lateral and en-face fluoroscopy down the
    plan's pedicle) of ``plan`` (or of the bare anatomy) on ``vertebra`` and its ``landmarks``."""
    from ..viz import FluoroSettings, ScenePlan, write_pictures  # pyvista

    shown = ScenePlan([plan.path], [plan.lesion], plan.check) if plan is not None else ScenePlan()
    model_to_ct = None
    if ct is not None and vertebra.patient_frame == LPS:
        model_to_ct = np.diag([-1.0, -1.0, 1.0, 1.0])
    settings = FluoroSettings(pedicle=plan.side if plan else "right", pixel_mm=FLUORO_PIXEL_MM,
                              ct=ct if vertebra.patient_frame else None, model_to_ct=model_to_ct)
    with tempfile.TemporaryDirectory() as folder:
        written = write_pictures(vertebra, landmarks, shown, folder, settings=settings, transparent=True)
        return {caption: file.read_bytes() for caption, file in written.items()}


# ---------------------------------------------------------------------------------------------


def _e(value) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list], row_classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        css = f" class='{row_classes[i]}'" if row_classes and row_classes[i] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _badge(verdict: str) -> str:
    return f"<span class='verdict {verdict.replace(' ', '-')}'>{_e(verdict.upper())}</span>"


class _Sources:
    """Every source text of a report, listed once at its end and cited by number; a text that
    joins known sources (e.g. two eligibility sources with '; ') cites each of them."""

    def __init__(self, known=()):
        self.texts: list[str] = list(dict.fromkeys(known))

    def cite(self, source: str) -> str:
        numbers = []
        for known in sorted(self.texts, key=len, reverse=True):
            if known != source and known in source:
                source = source.replace(known, "")
                numbers.append(self.texts.index(known) + 1)
        source = source.strip(" ;,")
        if source:
            if source not in self.texts:
                self.texts.append(source)
            numbers.append(self.texts.index(source) + 1)
        return "".join(f"[{n}]" for n in sorted(numbers))

    def section(self) -> str:
        items = "".join(f"<li value='{i}'>{_e(t)}</li>" for i, t in enumerate(self.texts, 1))
        return ("<h2>Sources</h2><p><small>[V] read in the source, [V-secondary] read in a review quoting it, [A] an "
                "assumption (a parameter you can change). Sections named docs/sources.md are in the file of that name "
                "in the bvn-plan source repository, which gives each reference in full.</small></p>"
                f"<ol>{items}</ol>")


#: Plain words for the eligibility checklist's finding statuses (bvn_plan.workflow.eligibility).
FINDING_STATUS = {"met": "criterion fulfilled", "not_met": "criterion not fulfilled", "review": "needs review",
                  "risk": "risk to weigh", "info": "for information"}


def _flatten(data: dict, prefix: str = "") -> list[list]:
    """Rows (plain-word label, value) of a nested dict such as the case's clinical section."""
    rows = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append([text.label(f"{prefix}{key}"), text.value(value)])
    return rows


def _eligibility_section(eligibility, sources: _Sources) -> str:
    levels = ", ".join(f"{level}: {verdict}" for level, verdict in eligibility.level_verdicts.items())
    reasons = "".join(f"<li>{_e(r)}</li>" for r in eligibility.reasons)
    rows = [[text.label(f.criterion), FINDING_STATUS.get(f.status, f.status), ", ".join(f.levels) or "whole case",
             f.message, sources.cite(f.source)] for f in eligibility.findings]
    return (f"<h2>Eligibility {_badge(eligibility.verdict)}</h2><p>Per level: {_e(levels)}</p>"
            f"<ul>{reasons}</ul>" + _table(["criterion", "status", "levels", "finding", "source"], rows))


def _summary_section(planned: list[LevelOutcome]) -> str:
    rows, classes = [], []
    for o in planned:
        level_plan = o.level_plan
        for r in level_plan.results:
            p = r.plan
            if p is None:
                rows.append([level_plan.level, r.side, r.approach, "no safe plan", "", "", "", "", "", "", "", "", "", "",
                             "; ".join(r.blocked)])
                classes.append("")
                continue
            n = p.numbers
            num = text.number
            rows.append([level_plan.level, r.side, r.approach, p.verdict, num(p.tip_to_terminus_mm),
                         num(p.terminus_depth_mm), num(100 * p.zone_coverage, 0), num(100 * p.nerve_path_coverage, 0),
                         p.target_kind, num(p.check.clearances['spinal_canal:lesion'].clearance_mm),
                         num(p.min_slack_mm), f"{num(n['introducer_medial_angle_deg'], 0)} / "
                         f"{num(n['introducer_craniocaudal_angle_deg'], 0)}", *_robustness_cells(p),
                         "CHOSEN" if p is o.chosen else ""])
            classes.append("chosen" if p is o.chosen else "")
    header = ["level", "side", "approach", "checker verdict", "tip to terminus (mm)",
              "terminus depth in lesion (mm, negative outside)", "target zone covered (%)",
              "nerve path covered (%)", "aimed at", "lesion to canal (mm)", "smallest clearance beyond margin (mm)",
              "introducer medial / cranio-caudal (deg)", "breach probability under placement error (95 % CI)",
              "angle tolerance (deg)", "note"]
    return "<h2>Summary per level and side</h2>" + (_table(header, rows, classes) if rows else "<p>No level planned.</p>")


def _robustness_cells(p: PathPlan) -> list[str]:
    """The summary's robustness cells of a plan: breach probability with its interval (FRAGILE when
    so) and the angle tolerance; empty when not assessed."""
    rob = p.robustness
    if rob is None:
        return ["not assessed", ""]
    lo, hi = rob.failed.interval
    cell = f"{100 * rob.breach_probability:.1f} % ({100 * lo:.1f}-{100 * hi:.1f} %)" + (" FRAGILE" if rob.fragile else "")
    tol = text.number(rob.tolerance_deg) if rob.tolerance_bounded else f"> {text.number(rob.tolerance_deg, 0)}"
    return [cell, f"{tol} ({rob.tolerance_direction})" if rob.tolerance_bounded else tol]


def _robustness_table(rob, rules) -> str:
    """The chosen plan's breaches per rule (``rules``: the level's RuleSet, for their words) under
    placement error."""
    rows = [[rules[name].description, rob.severities[name], f"{100 * prop.probability:.1f}",
             f"{100 * prop.interval[0]:.1f}-{100 * prop.interval[1]:.1f}"]
            for name, prop in rob.rules.items() if prop.count]
    if rob.terminus_uncovered is not None:
        t = rob.terminus_uncovered
        rows.append(["terminus outside the moved lesion", "(target)", f"{100 * t.probability:.1f}",
                     f"{100 * t.interval[0]:.1f}-{100 * t.interval[1]:.1f}"])
    m = rob.model
    return (f"<h3>Robustness to placement error</h3><p>{_e(rob.words())}. Model: {_e(m.name)}; {_e(m.source)}; "
            f"seed {m.seed}. Angle tolerance: the smallest tilt that fails the check along the worst of 8 directions "
            "about the introducer, no entry offset.</p>"
            + _table(["rule", "severity", "breach probability (%)", "95 % CI (%)"], rows))


def _two_probes_section(outcome, rules) -> str:
    """One probe or two (:mod:`bvn_plan.planning.two_probes`): the verdict and why, and for a pair
    each probe's path checked alone and with the union lesion (points in mm, the level's frame)."""
    out = [f"<h3>One probe or two</h3><p><b>{_e(outcome.probes)}</b>: " +
           "; ".join(_e(r) for r in outcome.reasons[-1:]) + "</p>"]
    if len(outcome.reasons) > 1:
        out.append("<ul>" + "".join(f"<li>{_e(r)}</li>" for r in outcome.reasons[:-1]) + "</ul>")
    pair = outcome.pair
    if pair is not None:
        num = text.number
        rows = [[probe.side, text.point(probe.numbers["tip"]), f"{num(probe.numbers['introducer_medial_angle_deg'], 0)} / "
                 f"{num(probe.numbers['introducer_craniocaudal_angle_deg'], 0)}",
                 num(probe.numbers["needle_length_skin_to_tip_mm"], 0), probe.verdict, check.verdict,
                 num(check.clearances["spinal_canal:lesion"].clearance_mm),
                 "every rule holds" if check.verdict == "pass" else "; ".join(check.reasons)]
                for probe, check in zip((pair.right, pair.left), pair.checks)]
        out.append(f"<p>Union of both lesions: {num(100 * pair.zone_coverage, 0)} % of the target zone (one probe "
                   f"{num(100 * pair.single_zone_coverage, 0)} %), {num(100 * pair.nerve_path_coverage, 0)} % of the "
                   f"nerve path; tips {num(pair.tip_separation_mm)} mm apart." + (
                       " The pair's paths are not assessed for placement error." if pair.robustness is None else
                       " Placement error: each probe under its own errors, the union lesion judged (below).")
                   + "</p>" + _table(
                       ["probe", "tip (mm)", "introducer medial / cranio-caudal (deg)", "needle skin to tip (mm)",
                        "verdict, own lesion", "verdict, union lesion", "union lesion to canal (mm)", "reasons"], rows))
        if pair.robustness is not None:
            out.append(_robustness_table(pair.robustness, rules))
    return "\n".join(out)


def _level_section(outcome: LevelOutcome, context: ReportContext) -> str:
    vertebra, level_plan, plan, hu = outcome.vertebra, outcome.level_plan, outcome.chosen, outcome.ct_hu
    reasons = outcome.chosen_reasons or level_plan.recommendation_reasons
    level = level_plan.level
    out = [f"<h2>{_e(level)}</h2><p><small>source {_e(vertebra.source)}; points in mm, frame: "
           f"{_e(frame_name(vertebra))}; lengths mm; angles degrees (medial + toward the midline, cranio-caudal + "
           "cranial); field reference: docs/plan_json.md</small></p>"]
    if plan is None:
        out.append("<p><b>No safe plan.</b></p><ul>" +
                   "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>")
    else:
        out.append(f"<p>Chosen: <b>{_e(plan.side)} {_e(plan.approach)}</b> {_badge(plan.verdict)}</p><ul>" +
                   "".join(f"<li>{_e(r)}</li>" for r in list(reasons) + plan.check.reasons) + "</ul>")
        out.append(f"<p>Fluoroscopy: {_e(describe(plan.numbers))}</p>")
        rows = [[text.label(key), text.point(value) if isinstance(value, list) else text.value(value)]
                for key, value in plan.numbers.items()]
        rows.append([text.label("gertzbein_robbins_grade"), plan.check.gertzbein_robbins_grade])
        out.append("<h3>Clinician's numbers</h3>" + _table(["quantity", "value"], rows))
        if plan.robustness is not None:
            out.append(_robustness_table(plan.robustness, level_plan.rules))
    if level_plan.two_probes is not None:
        out.append(_two_probes_section(level_plan.two_probes, level_plan.rules))
    if hu:
        rows = [[name, part, v.get("median", ""), v.get("p10", ""), v.get("p90", ""), v["samples"]]
                for name, parts in hu.items() for part, v in parts.items()]
        out.append("<h3>CT numbers (HU)</h3>" + _table(["path", "where", "median", "p10", "p90", "samples"], rows))
    if context.images:
        from ..viz import ScenePlan
        from ..viz.web import viewer_block  # pyvista (through the viz face)

        shown = ScenePlan([plan.path], [plan.lesion]) if plan is not None else ScenePlan()
        pictures = render_level_images(vertebra, outcome.landmarks, plan, context.ct)
        out.append("<div>" + viewer_block(vertebra, outcome.landmarks, shown, level) + "".join(
            f"<figure><img alt='{_e(caption)}' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"
            f"<figcaption><small>{_e(level)}: {_e(caption)}</small></figcaption></figure>"
            for caption, png in pictures.items()) + "</div>")
    notes = list(level_plan.notes) + list(level_plan.landmarks.notes)
    if notes:
        out.append("<h3>Notes</h3><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    return "\n".join(out)


def _anatomy_section(lm: Landmarks) -> str:
    rows = [[text.label(k), text.number(v)] for k, v in lm.morphometry.items()]
    rows += [[f"Confidence: {text.label(k).lower()} (0-1)", text.number(v, 2)] for k, v in lm.confidence.items()]
    return f"<h2>{_e(lm.level)} (anatomy only)</h2>" + _table(["quantity", "value"], rows)


def _assumptions_section(plans: list[LevelPlan], levels: list[str], terminus: TerminusParameters,
                         sources: _Sources) -> str:
    out = ["<h2>Assumptions</h2><p>Every one is a parameter; its source is numbered in the Sources list.</p>"]
    if plans:
        first = plans[0]
        device = first.device.to_dict()
        out.append("<h3>Device profile</h3>" + _table(["item", "value", "source"], [
            [text.label(k), text.parameter(v), sources.cite(DEVICE_SOURCES.get(k, "").replace("label only", ""))]
            for k, v in device.items()]))
        out.append("<h3>Safety rules</h3>" + _table(
            ["rule", "applies to", "zone", "margin (mm)", "if broken", "source"],
            [[r.description, r.applies_to, text.label(r.zone).lower(), text.parameter(r.margin_mm), r.severity,
              sources.cite(r.source)] for r in first.rules.rules]))
        settings = dataclasses.asdict(first.settings)
        out.append("<h3>Planner settings</h3><p><small>bvn_plan.planning.settings.PlannerSettings: [A] unless stated in "
                   "its docstring</small></p>" + _table(["setting", "value"],
                                                        [[text.label(k), text.parameter(v)] for k, v in settings.items()]))
    cite = sources.cite(TERMINUS_SOURCE)
    out.append("<h3>BVN terminus</h3>" + _table(["parameter", "value", "source"],
                                               [[text.label(f.name), text.parameter(getattr(terminus, f.name)), cite]
                                                for f in dataclasses.fields(terminus)]))
    levels = sorted({TRANSITIONAL.get(level, level) for level in levels}, key=list(MORPHOMETRY).index)
    rows = [[text.label(name)] + [text.parameter(getattr(MORPHOMETRY[level], name)) for level in levels]
            for name in (f.name for f in dataclasses.fields(MORPHOMETRY["L4"])) if name not in ("level", "relative_sd")]
    out.append(f"<h3>Level morphometry priors {sources.cite(PRIORS_SOURCE)}</h3>" + _table(["prior"] + levels, rows))
    return "\n".join(out)
