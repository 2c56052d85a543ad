"""What people run: NIfTI labelmaps to level meshes (:mod:`.labelmap`), the eligibility checklist
(:mod:`.eligibility`), a whole case (:mod:`.case`: every level planned, its report, Slicer files and
summary), the HTML report (:mod:`.report`), 3D Slicer markups and scenes (:mod:`.markups`,
:mod:`.slicer_export`) and cohorts (:mod:`.batch`, :mod:`.cohort_report`). Points in mm; each
output names its frame."""

from .batch import ATTEMPTS_DIR, SUMMARY_FILE, BatchInputs, batch_cases, read_attempts, run_batch
from .case import (CASE_SCHEMA, CASE_WORKERS, DONE_MARKER, SUMMARY_COLUMNS, Case, CaseResult, LevelOutcome,
                   case_for_mesh, case_from_dict, load_case, path_and_lesion_hu, plan_case, rows_to_csv)
from .cohort_report import REPORT_FILE, write_cohort_report
from .eligibility import (INDICATED, MET, NEEDS_REVIEW, NOT_INDICATED, NOT_MET, RISK, ClinicalData, Eligibility,
                          EligibilityCriteria, check_eligibility, normalise_modic, parse_levels)
from .labelmap import VOLUME_RANGE_CM3, Labelmap, load_labelmap, load_labelmap_folder
from .markups import SCHEMA_URL, Markup, read_markups, validate_markups, write_markups
from .report import ReportContext, report_html, write_report
from .slicer_export import write_level

__all__ = [
    "ATTEMPTS_DIR", "BatchInputs", "CASE_SCHEMA", "CASE_WORKERS", "Case", "CaseResult", "ClinicalData", "DONE_MARKER",
    "Eligibility", "EligibilityCriteria", "INDICATED", "Labelmap", "LevelOutcome", "MET", "Markup", "NEEDS_REVIEW",
    "NOT_INDICATED", "NOT_MET", "REPORT_FILE", "RISK", "ReportContext", "SCHEMA_URL", "SUMMARY_COLUMNS",
    "SUMMARY_FILE", "VOLUME_RANGE_CM3", "batch_cases", "case_for_mesh", "case_from_dict", "check_eligibility",
    "load_case", "load_labelmap", "load_labelmap_folder", "normalise_modic", "parse_levels", "path_and_lesion_hu",
    "plan_case", "read_attempts", "read_markups", "report_html", "rows_to_csv", "run_batch", "validate_markups",
    "write_cohort_report", "write_level", "write_markups", "write_report",
]
