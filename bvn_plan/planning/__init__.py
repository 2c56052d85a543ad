"""Planning: the safety zones and the checker (:mod:`.safety`), the approach from the back (:mod:`.approach`:
the bone-entry windows; :mod:`.zones`: labelled organs and the skin), candidate trajectories and their
screening (:mod:`.search`, :mod:`.candidates`, :mod:`.preselect`, :mod:`.screening`), ranking
(:mod:`.ranking`), the level plan (:mod:`.planner`, settings in :mod:`.settings`), the clinician's
numbers (:mod:`.path_numbers`), the one plan file (:mod:`.plan_file`: write and read; its schema :mod:`.plan_schema`) and the model
of the interactive window (:mod:`.adjust`; the window itself is :mod:`bvn_plan.viz.window`).
Points in mm, model coordinates."""

from .adjust import InteractivePlanner, PlannerUpdate, PlanOption
from .approach import SKIN_TO_BONE_MM, ApproachGeometry, EntryJudgement, EntryWindows, introducer_angles
from .path_numbers import describe, path_numbers
from .plan_file import FORMAT, FORMAT_VERSION, LoadedPlan, plan_document, read_plan, summary_text, write_plan
from .plan_schema import ANATOMY_RECORD, check_written, plan_schema, schema_problems
from .planner import (APPROACHES, MIRROR_CENTRING_TOLERANCE_MM, PEDICLE_CONFIDENCE_MIN, SIDES, ApproachResult,
                      LevelPlan, PathPlan, plan_level)
from .safety import (DEFAULT_RULES, FAIL, LESION_CHECK_SUBDIVISIONS, PASS, SEGMENTAL_ARTERY_PREVALENCE, WARN,
                     CheckResult, ExitingRootCorridor, Rule, RuleResult, RuleSet, SafetyZones, ZoneClearance,
                     check_path, check_paths, gertzbein_robbins_grade, lesion_check_points)
from .settings import PlannerSettings
from .zones import NO_GO_ORGANS, OrganZones

__all__ = [
    "ANATOMY_RECORD", "APPROACHES", "ApproachGeometry", "ApproachResult", "EntryJudgement", "EntryWindows",
    "NO_GO_ORGANS", "OrganZones", "SKIN_TO_BONE_MM", "introducer_angles", "CheckResult", "DEFAULT_RULES",
    "ExitingRootCorridor", "FAIL", "FORMAT", "FORMAT_VERSION", "PASS", "WARN",
    "InteractivePlanner", "LESION_CHECK_SUBDIVISIONS", "LevelPlan", "LoadedPlan", "MIRROR_CENTRING_TOLERANCE_MM",
    "PEDICLE_CONFIDENCE_MIN", "PathPlan", "PlanOption", "PlannerSettings", "PlannerUpdate", "Rule", "RuleResult",
    "RuleSet", "SEGMENTAL_ARTERY_PREVALENCE", "SIDES", "SafetyZones", "ZoneClearance", "check_path", "check_paths",
    "check_written", "describe", "gertzbein_robbins_grade", "lesion_check_points", "path_numbers", "plan_document",
    "plan_level", "plan_schema", "read_plan", "schema_problems",
    "summary_text", "write_plan",
]
