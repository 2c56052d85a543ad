"""Anatomy recognition: the landmarks of one vertebra mesh in any pose (see :mod:`bvn_plan.anatomy.find`)."""

from .find import anatomy_report, export_landmark_meshes, find_anatomy, landmark_meshes
from .morphometry import HEIGHT_POSITIONS, genant_grade, height_loss, normal_heights
from .symmetry import reflect

__all__ = ["HEIGHT_POSITIONS", "anatomy_report", "export_landmark_meshes", "find_anatomy", "genant_grade",
           "height_loss", "landmark_meshes", "normal_heights", "reflect"]
