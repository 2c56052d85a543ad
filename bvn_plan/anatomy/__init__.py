"""Anatomy recognition: the landmarks of one vertebra mesh in any pose (see :mod:`bvn_plan.anatomy.find`)."""

from .find import anatomy_report, export_landmark_meshes, find_anatomy, landmark_meshes
from .symmetry import reflect

__all__ = ["anatomy_report", "export_landmark_meshes", "find_anatomy", "landmark_meshes", "reflect"]
