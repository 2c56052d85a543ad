"""Parametric synthetic vertebrae (L1-L5, S1) with ground truth, and the default spine in meshes/."""

from .generator import (GENERATOR_VERSION, DISC_HEIGHT_MM, SyntheticVertebra, landmarks_record, spine_placements,
                        synthesize, write_default_spine, write_moved_cohort, write_ply, write_spine, write_vertebrae)
from .ground_truth import PART_NAMES, pedicle_section
from .parameters import SyntheticParameters, make_parameters

__all__ = ["DISC_HEIGHT_MM", "GENERATOR_VERSION", "PART_NAMES", "SyntheticParameters", "SyntheticVertebra",
           "landmarks_record", "make_parameters", "pedicle_section", "spine_placements", "synthesize",
           "write_default_spine", "write_moved_cohort", "write_ply", "write_spine", "write_vertebrae"]
