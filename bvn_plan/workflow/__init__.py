"""What people run: NIfTI labelmaps to level meshes (:mod:`.labelmap`), the eligibility checklist
(:mod:`.eligibility`), a whole case (:mod:`.case`: every level planned, its report, Slicer files and
summary), the HTML report (:mod:`.report`), 3D Slicer markups and scenes (:mod:`.markups`,
:mod:`.slicer_export`) and cohorts (:mod:`.batch`, :mod:`.cohort_report`). Points in mm; each
output names its frame."""

from .batch import SUMMARY_FILE, batch_cases, run_batch
from .case import (CASE_SCHEMA, CASE_WORKERS, DONE_MARKER, SUMMARY_COLUMNS, Case, CaseResult, LevelOutcome,
                   case_for_mesh, case_from_dict, load_case, path_and_lesion_hu, plan_case)
from .eligibility import (INDICATED, MET, NEEDS_REVIEW, NOT_INDICATED, NOT_MET, RISK, ClinicalData, Eligibility,
                          EligibilityCriteria, check_eligibility, normalise_modic, parse_levels)
from .labelmap import VOLUME_RANGE_CM3, Labelmap, load_labelmap, load_labelmap_folder
from .markups import SCHEMA_URL, Markup, read_markups, validate_markups, write_markups
from .report import ReportContext, report_html, write_report
from .slicer_export import write_level

__all__ = [
    "CASE_SCHEMA", "CASE_WORKERS", "Case", "CaseResult", "ClinicalData", "DONE_MARKER", "Eligibility",
    "EligibilityCriteria", "INDICATED", "Labelmap", "LevelOutcome", "MET", "Markup", "NEEDS_REVIEW", "NOT_INDICATED",
    "NOT_MET", "RISK", "ReportContext", "SCHEMA_URL", "SUMMARY_COLUMNS", "SUMMARY_FILE", "VOLUME_RANGE_CM3",
    "batch_cases", "case_for_mesh", "case_from_dict", "check_eligibility", "load_case", "load_labelmap",
    "load_labelmap_folder", "normalise_modic", "parse_levels", "path_and_lesion_hu", "plan_case", "read_markups",
    "report_html", "run_batch", "validate_markups", "write_level", "write_markups", "write_report",
]
