"""A patient case: the case file (YAML or JSON), its schema, and planning every level of it.

A case file names the vertebral bodies to treat, the clinical data the eligibility checklist
needs (:mod:`bvn_plan.workflow.eligibility`), the device profile, the preferred approach, and the input:
a NIfTI labelmap (with its label ``scheme``) or one mesh per level (with units and patient frame),
optionally the CT (NIfTI, HU) to sample bone density along each path and in each lesion. Paths
are relative to the case file. :data:`CASE_SCHEMA` is the JSON Schema (draft 2020-12) of the file;
``examples/case_example.yaml`` documents every field.

:func:`plan_case` writes one output folder, built in a temporary sibling folder and swapped in
whole, so a re-run never leaves old and new results mixed (during the swap the folder is briefly
absent, never partial). It holds:

* ``plan.json``: the plan file of :mod:`bvn_plan.planning.plan_file` (``bvn-plan show`` opens it)
  with the case, the eligibility checklist, and per level its status, the anatomy report, the
  plan (points in the input's frame and units; a labelmap level's mesh is ``slicer/<level>_vertebra.stl``),
  the chosen plan and the CT numbers;
* ``summary.csv``: one row per level (the batch summary's rows);
* ``report.html``: the self-contained report (:mod:`bvn_plan.workflow.report`);
* ``slicer/``: markups and LPS meshes per level (:mod:`bvn_plan.workflow.slicer_export`);
* ``case.done``: written last, the per-level rows as JSON (the batch's done marker).

Units: millimetres; months and days as named; HU for CT values.
"""

from __future__ import annotations

import csv
import io
import contextlib
import json
import os
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path

import jsonschema
import numpy as np
import yaml

from ..anatomy import anatomy_report, check_numbering, find_anatomy, find_numbering
from ..atomic import replace_directory, write_json_atomic, write_text_atomic
from ..coordinates import PATIENT_FRAMES, RAS, UNITS_TO_MM, convert_points
from ..device import DeviceProfile
from ..errors import AnatomyError, InputError, note
from ..imaging import sample_ct
from ..landmarks import Landmarks, TerminusParameters
from ..levels import ACCEPTED_LEVELS, LEVELS, SPINE_ORDER
from ..planning.plan_file import level_to_dict, mesh_reference, plan_document
from ..planning.planner import APPROACHES, LevelPlan, PathPlan, plan_level
from ..planning.safety import PASS, SafetyZones
from ..planning.zones import organ_words
from ..planning.settings import PlannerSettings
from ..vertebra import Vertebra
from .eligibility import ClinicalData, Eligibility, check_eligibility, parse_levels, untreated_levels_message
from .labelmap import load_labelmap
from .organs import load_organs, load_skin_ct, place_vertebra
from .report import ReportContext, write_report
from .slicer_export import slicer_frame, write_level

#: The done marker :func:`plan_case` writes last in a finished output folder.
DONE_MARKER = "case.done"
#: Columns of ``summary.csv`` (one row per level).
SUMMARY_COLUMNS = ("case_id", "level", "eligibility", "status", "approach", "side", "checker_verdict",
                   "tip_to_terminus_mm", "terminus_depth_in_lesion_mm", "zone_coverage_percent", "lesion_to_canal_mm",
                   "min_clearance_beyond_margin_mm", "introducer_medial_deg", "introducer_craniocaudal_deg",
                   "path_median_hu", "lesion_median_hu", "body_depth_mm", "body_width_mm", "canal_width_mm",
                   "pedicle_width_right_mm", "pedicle_width_left_mm", "message")
#: Morphometry (bvn_plan.anatomy.find) copied into the summary columns of the same name.
SUMMARY_MORPHOMETRY = ("body_depth_mm", "body_width_mm", "canal_width_mm", "pedicle_width_right_mm", "pedicle_width_left_mm")
#: Worker processes a case plans its levels in, at most (one level each at a time; the machines
#: this is measured on have 2 cores). A batch plans each case in one process instead.
CASE_WORKERS = 2
#: CT sampling steps (mm): along a path from its bone entry, and the grid filling a lesion.
CT_PATH_STEP_MM = 1.0
CT_LESION_STEP_MM = 1.0
STAGES = ("plan", "anatomy")

_LEVEL_PATTERN = "^(" + "|".join(ACCEPTED_LEVELS) + ")$"
_NUMBER = {"type": "number"}
_OPTIONAL_NUMBER = {"type": ["number", "null"]}
_LEVELS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}
_MESH = {"oneOf": [{"type": "string"}, {
    "type": "object", "additionalProperties": False, "required": ["path"],
    "properties": {"path": {"type": "string"}, "units": {"enum": sorted(UNITS_TO_MM)},
                   "frame": {"enum": [*PATIENT_FRAMES, None]}}}]}

#: JSON Schema of a case file (YAML files are read into the same structure).
CASE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "bvn-plan case file",
    "type": "object",
    "additionalProperties": False,
    "required": ["case_id", "levels", "input"],
    "properties": {
        "case_id": {"type": "string", "minLength": 1, "pattern": r"^[A-Za-z0-9._-]+$",
                    "description": "names the case and its output folder"},
        "levels": dict(_LEVELS, description="vertebral bodies to treat: L4, L4-L5, L3-S1 or a list"),
        "clinical": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "modic": {"type": "object", "description": "Modic type per level: 0/none, 1, 2, 3, 1/2, 2/3",
                          "patternProperties": {_LEVEL_PATTERN: {"type": ["integer", "string", "null"]}},
                          "additionalProperties": False},
                "symptomatic_levels": _LEVELS,
                "symptom_duration_months": dict(_OPTIONAL_NUMBER, minimum=0),
                "acute_episode_days": dict(_OPTIONAL_NUMBER, minimum=0),
                "conservative_care": {"type": "object", "additionalProperties": False, "properties": {
                    "months": dict(_OPTIONAL_NUMBER, minimum=0),
                    "treatments": {"type": "array", "items": {"type": "string"}}}},
                "odi": dict(_OPTIONAL_NUMBER, minimum=0, maximum=100),
                "nrs": dict(_OPTIONAL_NUMBER, minimum=0, maximum=10),
                "bone_density": {"type": "object", "additionalProperties": False, "properties": {
                    "status": {"enum": ["normal", "osteopenia", "osteoporosis", "unknown"]},
                    "t_score": dict(_OPTIONAL_NUMBER, minimum=-10, maximum=10)}},
                "contraindications": {"type": "array", "items": {"type": "string"}},
            },
        },
        "plan": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "preferred_approach": {"enum": list(APPROACHES) + ["any"]},
                "approaches": {"type": "array", "items": {"enum": list(APPROACHES)}, "minItems": 1},
                "device": {"type": "object", "description": "DeviceProfile fields to change"},
                "terminus": {"type": "object", "additionalProperties": False, "properties": {
                    "depth_fraction": _NUMBER, "height_fraction": _NUMBER, "s1_body_centre": {"type": "boolean"}}},
                "settings": {"type": "object", "description": "PlannerSettings fields to change"},
                "stage": {"enum": list(STAGES), "description": "plan (default) or anatomy only"},
                "images": {"type": "boolean", "description": "render the report's pictures (default true)"},
            },
        },
        "input": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "labelmap": {"type": "string"},
                "scheme": {"enum": ["auto", "totalseg", "verse"]},
                "meshes": {"type": "object", "minProperties": 1, "additionalProperties": False,
                           "patternProperties": {_LEVEL_PATTERN: _MESH}},
                "units": {"enum": sorted(UNITS_TO_MM)},
                "frame": {"enum": [*PATIENT_FRAMES, None]},
                "ct": {"type": "string", "description": "CT (NIfTI, HU): HU along paths and in lesions, and the skin "
                       "entries on its body's outer edge unless subcutaneous_fat is given"},
                "organs": {"type": "string", "description": "organ labels of the same scan (multilabel NIfTI with "
                           "TotalSegmentator 'total' names, or a folder of its masks); default: the labelmap's own "
                           "organ labels, if it has any"},
                "subcutaneous_fat": {"type": "string", "description": "subcutaneous-fat mask on the organ labels' "
                                     "grid: the skin is its outer edge"},
                "trust_level": {"type": "boolean", "description": "plan every level as labelled even when its "
                                "shape fits another level grossly better (default false)"},
            },
            "oneOf": [{"required": ["labelmap"]}, {"required": ["meshes"]}],
        },
    },
}


@dataclass
class MeshInput:
    """One level's mesh file (absolute path), its units (None: detect) and patient frame."""

    path: Path
    units: str | None
    frame: str | None


@dataclass
class Case:
    """A loaded case file (see the module docstring). Paths are absolute."""

    case_id: str
    levels: list[str]
    clinical: ClinicalData | None
    device: DeviceProfile = field(default_factory=DeviceProfile)
    terminus: TerminusParameters = field(default_factory=TerminusParameters)
    settings: PlannerSettings = field(default_factory=PlannerSettings)
    approaches: tuple[str, ...] = APPROACHES
    preferred_approach: str | None = None
    stage: str = "plan"
    images: bool = True
    labelmap: Path | None = None
    scheme: str = "auto"
    meshes: dict[str, MeshInput] = field(default_factory=dict)
    ct: Path | None = None
    organs: Path | None = None
    subcutaneous_fat: Path | None = None
    trust_level: bool = False
    source: str = "case"
    raw: dict = field(default_factory=dict)

    def eligibility(self, body_grades: dict | None = None) -> Eligibility | None:
        """The checklist for this case (``body_grades``: see check_eligibility), or None when the case
        carries no clinical data."""
        return None if self.clinical is None else check_eligibility(self.clinical, self.levels,
                                                                    body_grades=body_grades)


@dataclass
class LevelOutcome:
    """What planning one level gave: the vertebra, its landmarks (None when the anatomy was refused),
    the level plan (None for anatomy only or when refused), the chosen plan and why, CT numbers, or
    the error that stopped it."""

    level: str
    vertebra: object = None
    landmarks: Landmarks | None = None
    level_plan: LevelPlan | None = None
    chosen: PathPlan | None = None
    chosen_reasons: list[str] = field(default_factory=list)
    ct_hu: dict = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def planned(cls, vertebra, level_plan: LevelPlan) -> "LevelOutcome":
        """A planned level showing the planner's recommendation, for its reasons."""
        return cls(level_plan.level, vertebra, level_plan.landmarks, level_plan, level_plan.recommendation,
                   list(level_plan.recommendation_reasons))


@dataclass
class CaseResult:
    case: Case
    eligibility: Eligibility | None
    levels: list[LevelOutcome]
    out_dir: Path
    rows: list[dict]


# ---------------------------------------------------------------------------------------------
# Reading


def load_case(path: str | os.PathLike) -> Case:
    """Read and check a case file (``.yaml``/``.yml``/``.json``); raise :class:`InputError` saying
    which field is wrong."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"case file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except Exception as exc:  # yaml and json raise several types on bad syntax; binary files fail to decode
        raise InputError(f"cannot read the case file {path.name}: {exc}. A case file is YAML or JSON text "
                         "(see examples/case_example.yaml)") from exc
    return case_from_dict(data, path.parent, source=str(path))


def case_from_dict(data, base_dir: str | os.PathLike, source: str = "case") -> Case:
    """Build a :class:`Case` from a parsed case file; relative paths are taken from ``base_dir``."""
    check_case_document(data, source)
    base = Path(base_dir)
    plan = data.get("plan", {})
    inp = data["input"]
    try:
        device = DeviceProfile.from_dict(plan.get("device", {}))
        terminus = TerminusParameters(**plan.get("terminus", {}))
        settings = _settings(plan.get("settings", {}))
    except TypeError as exc:
        raise InputError(f"{source}: plan: {exc}") from exc
    meshes = {}
    for level, spec in (inp.get("meshes") or {}).items():
        spec = {"path": spec} if isinstance(spec, str) else spec
        meshes[level] = MeshInput(_existing(base, spec["path"], f"{source}: input.meshes.{level}"),
                                  spec.get("units", inp.get("units")), spec.get("frame", inp.get("frame")))
    levels = parse_levels(data["levels"])
    if meshes and set(levels) - set(meshes):
        raise InputError(f"{source}: input.meshes has no file for {', '.join(sorted(set(levels) - set(meshes)))}")
    preferred = plan.get("preferred_approach")
    return Case(
        case_id=data["case_id"], levels=levels,
        clinical=ClinicalData.from_dict(data["clinical"]) if "clinical" in data else None,
        device=device, terminus=terminus, settings=settings,
        approaches=tuple(plan.get("approaches", APPROACHES)),
        preferred_approach=None if preferred in (None, "any") else preferred,
        stage=plan.get("stage", "plan"), images=plan.get("images", True),
        labelmap=_existing(base, inp["labelmap"], f"{source}: input.labelmap") if "labelmap" in inp else None,
        scheme=inp.get("scheme", "auto"), meshes=meshes,
        ct=_existing(base, inp["ct"], f"{source}: input.ct") if "ct" in inp else None,
        organs=_existing(base, inp["organs"], f"{source}: input.organs") if "organs" in inp else None,
        subcutaneous_fat=(_existing(base, inp["subcutaneous_fat"], f"{source}: input.subcutaneous_fat")
                          if "subcutaneous_fat" in inp else None),
        trust_level=inp.get("trust_level", False), source=source, raw=data)


def check_case_document(data, source: str = "case") -> None:
    """Raise :class:`InputError` listing every place ``data`` breaks :data:`CASE_SCHEMA`."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: a case file must be a mapping of fields (case_id, levels, input, ...)")
    validator = jsonschema.Draft202012Validator(CASE_SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'.'.join(map(str, e.absolute_path)) or 'top level'}: {_schema_message(e)}" for e in errors[:6]]
        raise InputError(f"{source} does not follow the case schema: " + "; ".join(lines) +
                         " (see examples/case_example.yaml)")


def case_for_mesh(path: str | os.PathLike, level: str | None = None, units: str | None = None,
                  frame: str | None = None, **options) -> Case:
    """A case of one mesh file with no clinical data (batch over meshes). The level comes from
    ``level`` or the file name (``L4.stl``, ``patient7_L4.ply``); ``options`` set :class:`Case`
    fields (``stage``, ``images``, ``approaches``, ``settings``, ...)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"mesh file not found: {path}")
    if level is None:
        match = re.search(r"(?<![A-Za-z0-9])([LS][1-6])(?![0-9])", path.stem, re.IGNORECASE)
        if not match:
            raise InputError(f"cannot tell the level of {path.name} from its name: give the level (e.g. --level L4)")
        level = match.group(1)
    levels = parse_levels(level)
    return Case(case_id=file_case_id(path), levels=levels, clinical=None,
                meshes={levels[0]: MeshInput(path.resolve(), units, frame)}, source=str(path), **options)


def file_case_id(path: Path) -> str:
    """The case id a file gives when its content does not: its name without the suffix, every
    character a case id may not hold replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", path.stem)


def _settings(overrides: dict) -> PlannerSettings:
    known = {f.name for f in fields(PlannerSettings)}
    unknown = set(overrides) - known
    if unknown:
        raise InputError(f"unknown planner setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return PlannerSettings(**values)


def _existing(base: Path, relative: str, what: str) -> Path:
    path = (base / relative).resolve()
    if not path.exists():
        raise InputError(f"{what}: {path} does not exist (paths are relative to the case file)")
    return path


def _schema_message(error) -> str:
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown field(s)")
    if error.validator == "oneOf" and list(error.absolute_path) == ["input"]:
        return "give exactly one of input.labelmap or input.meshes"
    return error.message


# ---------------------------------------------------------------------------------------------
# Planning


def load_vertebrae(case: Case) -> tuple[dict[str, object], list[str]]:
    """The case's vertebrae by level (mm, the input's frame, their labels trusted as the case says)
    and notes about the input. When the input holds several L1-S1 levels, their numbering is judged
    as a whole first (:func:`~bvn_plan.anatomy.find_numbering`): a numbering off by two or more levels,
    or across the lumbar/sacral line, raises :class:`~bvn_plan.errors.LevelMismatchError` unless the
    case trusts its levels."""
    notes: list[str] = []
    if case.labelmap is not None:
        labelmap = load_labelmap(case.labelmap, scheme=case.scheme)
        findings = labelmap.plausibility(case.levels)
        notes += [f"labelling: {f.message}" for f in findings]
        every = {level: labelmap.vertebra(level) for level in case.levels}
        for level in labelmap.levels():
            if level in LEVELS and level not in every:
                with contextlib.suppress(InputError):  # a fragment cut by the field of view is not scored
                    every[level] = labelmap.vertebra(level)
        spine_levels = labelmap.spine_levels()
    else:
        every = {level: Vertebra.load(m.path, level=level, units=m.units, frame=m.frame)
                 for level, m in case.meshes.items()}
        spine_levels = [level for level in SPINE_ORDER if level in every]
    if sum(level in LEVELS for level in every) >= 2:
        for message in check_numbering(find_numbering(every, spine_levels), case.trust_level):
            note(notes, f"numbering: {message}")
    vertebrae = {level: every[level] for level in case.levels}
    for vertebra in vertebrae.values():
        vertebra.trust_level = case.trust_level
    return vertebrae, notes


def _body_grades(outcomes: list[LevelOutcome]) -> dict[str, tuple[int, float]]:
    """Per level with landmarks and a Genant grade: (grade, height loss %), for the eligibility checklist."""
    out = {}
    for o in outcomes:
        m = o.landmarks.morphometry if o.landmarks is not None else {}
        if np.isfinite(m.get("body_genant_grade", np.nan)):
            out[o.level] = (int(m["body_genant_grade"]), float(m["body_height_loss_percent"]))
    return out


def plan_case(case: Case, out_dir: str | os.PathLike, workers: int = CASE_WORKERS,
              progress: Callable[[str], None] | None = None) -> CaseResult:
    """Check eligibility, plan every level, and write the output folder ``out_dir`` whole (see
    the module docstring). A level whose anatomy is refused is reported, the others planned.
    Levels are planned in up to ``workers`` processes (1: in this one); the results do not depend
    on it. ``progress`` (if given) is called with what was just done: each level, then the
    outputs. Raises :class:`InputError` for unusable inputs or an ``out_dir`` that is not a
    bvn-plan case folder."""
    out = Path(out_dir)
    _check_replaceable(out)
    vertebrae, notes = load_vertebrae(case)
    untreated = untreated_levels_message(case.levels)
    if case.clinical is None and untreated:  # with clinical data the checklist says it
        note(notes, untreated)
    ct = _read_ct(case, vertebrae)
    organs = _read_organs(case, vertebrae, notes)
    skin = None
    if ct is not None and (organs is None or organs.skin is None) and case.stage != "anatomy":
        skin = load_skin_ct(case.ct, next(iter(vertebrae.values())).patient_frame)
        note(notes, f"skin entries on {skin.source}")
    tell = progress or (lambda done: None)
    outcomes = _plan_levels(case, vertebrae, (ct, organs, skin), workers, tell)
    eligibility = case.eligibility(_body_grades(outcomes))
    rows = [_row(case, eligibility, o) for o in outcomes]

    def fill(folder: Path) -> None:
        slicer = folder / "slicer"
        slicer.mkdir()
        slicer_files = {o.level: {k: str(p.relative_to(folder)) for k, p in
                                  write_level(o.level_plan, o.vertebra, slicer, o.chosen).items()}
                        for o in outcomes if o.level_plan is not None}
        write_json_atomic(folder / "plan.json", _document(case, eligibility, outcomes, notes, rows, slicer_files))
        write_text_atomic(folder / "summary.csv", rows_to_csv(rows))
        write_report(folder / "report.html", outcomes,
                     ReportContext(f"bvn-plan case {case.case_id}", eligibility, case.raw.get("clinical"), notes,
                                   case.terminus, case.images, ct))
        write_json_atomic(folder / DONE_MARKER, {"case_id": case.case_id, "rows": rows})

    replace_directory(out, fill)
    tell("plan.json, report and Slicer files")
    return CaseResult(case, eligibility, outcomes, out, rows)


def _plan_levels(case: Case, vertebrae: dict, scan, workers: int, tell: Callable[[str], None]) -> list[LevelOutcome]:
    """Every level's outcome, in the case's level order, planned in up to ``workers`` processes
    (``scan``: the CT image, the organ zones and the skin, each None when not given; ``tell``: called with
    each level as its outcome is in)."""
    if not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a whole number >= 1, got {workers!r}")
    jobs = [(case, level, vertebrae[level], scan) for level in case.levels]
    workers = min(workers, len(jobs), os.cpu_count() or 1)
    outcomes = []
    with contextlib.ExitStack() as stack:
        results = (map(_plan_level, *zip(*jobs)) if workers == 1 else
                   stack.enter_context(ProcessPoolExecutor(max_workers=workers)).map(_plan_level, *zip(*jobs)))
        for outcome in results:
            outcomes.append(outcome)
            tell(outcome.level)
    return outcomes


def _plan_level(case: Case, level: str, vertebra, scan) -> LevelOutcome:
    ct, organs, skin = scan
    outcome = LevelOutcome(level, vertebra)
    try:
        outcome.landmarks = find_anatomy(vertebra, case.terminus)
        if case.stage == "anatomy":
            return outcome
        zones = SafetyZones(vertebra.mesh, outcome.landmarks, organs=organs, skin=skin)
        level_plan = plan_level(vertebra, outcome.landmarks, case.device, settings=case.settings,
                                zones=zones, approaches=case.approaches)
    except AnatomyError as exc:
        outcome.error = f"anatomy refused: {exc}"
        return outcome
    outcome.level_plan = level_plan
    outcome.chosen, outcome.chosen_reasons = choose_plan(level_plan, case.preferred_approach)
    if ct is not None:
        outcome.ct_hu = {f"{r.side} {r.approach}": path_and_lesion_hu(ct, r.plan, vertebra)
                         for r in level_plan.results if r.plan is not None}
    return outcome


def choose_plan(level_plan: LevelPlan, preferred: str | None) -> tuple[PathPlan | None, list[str]]:
    """The plan to show: the best plan of the ``preferred`` approach (passing before warning,
    then the larger score, then the right side) when it has one, else the planner's
    recommendation; with the reasons."""
    recommendation = level_plan.recommendation
    if preferred is None:
        return recommendation, list(level_plan.recommendation_reasons)
    own = [r.plan for r in level_plan.results if r.approach == preferred and r.plan is not None]
    if not own:
        blocked = [f"{r.side}: {'; '.join(r.blocked)}" for r in level_plan.results if r.approach == preferred]
        why = f"the preferred {preferred} approach has no safe plan ({' | '.join(blocked) or 'not planned'})"
        return recommendation, [why] + list(level_plan.recommendation_reasons)
    best = max(own, key=lambda p: (p.verdict == PASS, round(p.score_mm, 1), p.side == "right"))
    return best, [f"{best.side} {best.approach}: the preferred approach; checker verdict {best.verdict}, tip "
                  f"{best.tip_to_terminus_mm:.1f} mm from the terminus"]


def _read_ct(case: Case, vertebrae: dict):
    if case.ct is None:
        return None
    import nibabel as nib

    if any(v.patient_frame is None for v in vertebrae.values()):
        raise InputError(f"{case.source}: input.ct needs meshes in a patient frame (input.frame RAS or LPS) "
                         "to know where they lie in the CT")
    try:
        return nib.load(str(case.ct))
    except Exception as exc:
        raise InputError(f"cannot read the CT {case.ct}: {exc}") from exc


def _read_organs(case: Case, vertebrae: dict, notes: list[str]):
    """The organ zones of input.organs (else the labelmap's own organ labels, when it has any), with
    the skin from input.subcutaneous_fat; None when the case gives no organ labels (the soft tissue
    is then modelled from the bone)."""
    source = case.organs
    if source is None and case.labelmap is not None and case.stage != "anatomy":
        labelmap = load_labelmap(case.labelmap, scheme=case.scheme)
        if any(organ_words(name) for name in labelmap.labels()):
            source = case.labelmap
    if source is None:
        if case.subcutaneous_fat is not None:
            raise InputError(f"{case.source}: input.subcutaneous_fat gives the skin over organ labels: give "
                             "input.organs (or a labelmap with organ labels) too")
        return None
    frames = {v.patient_frame for v in vertebrae.values()}
    if len(frames) != 1:
        raise InputError(f"{case.source}: the organ labels need every mesh in one patient frame (input.frame RAS or "
                         f"LPS), got {', '.join(sorted(map(str, frames)))}")
    organs = load_organs(source, case.subcutaneous_fat, frames.pop(), scheme=case.scheme)
    for vertebra in vertebrae.values():
        place_vertebra(organs, vertebra)
    note(notes, f"soft tissue from the organ labels of {organs.source}: {', '.join(organs.organs)}")
    return organs


def path_and_lesion_hu(ct, plan: PathPlan, vertebra) -> dict:
    """CT numbers (HU) along ``plan``'s path from its bone entry to the tip and inside its
    lesion: median, 10th and 90th percentile and sample count (NaN-free samples only)."""
    samples = plan.path.sample(CT_PATH_STEP_MM)
    in_bone = samples.points[samples.depth_mm >= (plan.check.bone_entry_depth_mm or 0.0)]
    lesion = plan.lesion
    half = max(lesion.half_length_mm, lesion.radius_mm)
    axis = np.arange(-half, half + 1e-9, CT_LESION_STEP_MM)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3) + lesion.centre
    inside = grid[lesion.contains(grid)]
    out = {}
    for name, pts in (("path", in_bone), ("lesion", inside)):
        values = sample_ct(ct, convert_points(pts, vertebra.patient_frame, RAS))
        values = values[np.isfinite(values)]
        out[name] = ({"median": round(float(np.median(values)), 1), "p10": round(float(np.percentile(values, 10)), 1),
                      "p90": round(float(np.percentile(values, 90)), 1), "samples": int(values.size)}
                     if values.size else {"samples": 0})
    return out


# ---------------------------------------------------------------------------------------------
# Output


def _document(case: Case, eligibility, outcomes: list[LevelOutcome], notes: list[str], rows: list[dict],
              slicer_files: dict[str, dict]) -> dict:
    """The case's plan file (:func:`bvn_plan.planning.plan_file.plan_document`); ``slicer_files``:
    per planned level the written Slicer files by part, relative to the case folder."""
    levels = {}
    for o in outcomes:
        entry = {"status": _status(o), "error": o.error}
        if o.vertebra is not None and o.error is None:
            entry["anatomy"] = anatomy_report(o.vertebra, case.terminus, o.landmarks)
            entry["markups_frame"] = slicer_frame(o.vertebra)
        if o.level_plan is not None:
            # a labelmap level has no mesh file of its own: the reader reloads the LPS mesh in slicer/
            mesh = (None if case.labelmap is None else
                    mesh_reference(slicer_files[o.level]["vertebra"], "mm", "LPS", len(o.vertebra.mesh.faces)))
            entry.update(level_to_dict(o.level_plan, o.vertebra, mesh))
            entry["chosen"] = None if o.chosen is None else {"approach": o.chosen.approach, "side": o.chosen.side}
            entry["chosen_reasons"] = o.chosen_reasons
            entry["ct_hu"] = o.ct_hu
            entry["slicer_files"] = slicer_files[o.level]
        levels[o.level] = entry
    return plan_document(
        levels,
        case_id=case.case_id,
        case_file=case.source,
        case=case.raw,
        coordinates={
            "plan": "each level's plan: points in the input's frame and units (see levels.*.coordinates)",
            "slicer": "markups in levels.*.markups_frame, mm; meshes in LPS mm with SPACE=LPS in the STL header",
            "ct_hu": "Hounsfield units sampled every 1 mm along each path from its bone entry and on a 1 mm grid "
                     "inside each lesion",
        },
        eligibility=None if eligibility is None else eligibility.to_dict(),
        input_notes=notes,
        summary=rows)


def _status(o: LevelOutcome) -> str:
    if o.error:
        return "refused"
    if o.level_plan is None:
        return "anatomy only"
    return "planned" if o.chosen is not None else "no safe plan"


def _row(case: Case, eligibility, o: LevelOutcome) -> dict:
    row = {key: "" for key in SUMMARY_COLUMNS}
    row.update(case_id=case.case_id, level=o.level, status=_status(o), message=o.error or "",
               eligibility="not assessed" if eligibility is None else eligibility.level_verdicts[o.level])
    landmarks = o.landmarks
    if landmarks is not None and o.error is None:
        row.update({name: _fmt(landmarks.morphometry[name]) for name in SUMMARY_MORPHOMETRY
                    if name in landmarks.morphometry})
    if o.chosen is not None:
        p = o.chosen
        row.update(approach=p.approach, side=p.side, checker_verdict=p.verdict,
                   tip_to_terminus_mm=_fmt(p.tip_to_terminus_mm), terminus_depth_in_lesion_mm=_fmt(p.terminus_depth_mm),
                   zone_coverage_percent=_fmt(100 * p.zone_coverage),
                   lesion_to_canal_mm=_fmt(p.check.clearances["spinal_canal:lesion"].clearance_mm),
                   min_clearance_beyond_margin_mm=_fmt(p.min_slack_mm),
                   introducer_medial_deg=_fmt(p.numbers["introducer_medial_angle_deg"]),
                   introducer_craniocaudal_deg=_fmt(p.numbers["introducer_craniocaudal_angle_deg"]))
        hu = o.ct_hu.get(f"{p.side} {p.approach}", {})
        row.update(path_median_hu=hu.get("path", {}).get("median", ""), lesion_median_hu=hu.get("lesion", {}).get("median", ""))
    elif o.level_plan is not None:
        row["message"] = " ".join(o.level_plan.recommendation_reasons)
    return row


def _fmt(value: float) -> str:
    return f"{round(float(value), 2) + 0.0:.2f}"  # + 0.0 turns -0.00 into 0.00


def rows_to_csv(rows: list[dict]) -> str:
    """Summary rows as CSV text with the :data:`SUMMARY_COLUMNS` header."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _check_replaceable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} is a file, not a folder: choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / DONE_MARKER).exists():
        raise InputError(f"output folder {out} exists and is not a finished bvn-plan case folder (no {DONE_MARKER}); "
                         "refusing to replace it: choose another --out or empty it")
