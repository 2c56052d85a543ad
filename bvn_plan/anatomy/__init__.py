"""Anatomy recognition: the landmarks of one vertebra mesh in any pose (see :mod:`bvn_plan.anatomy.find`)
and the level its shape fits (:mod:`bvn_plan.anatomy.identity`)."""

from .find import anatomy_report, export_landmark_meshes, find_anatomy, landmark_meshes
from .identity import LevelIdentity, check_identity, score_identity
from .morphometry import HEIGHT_POSITIONS, genant_grade, height_loss, normal_heights
from .symmetry import reflect

__all__ = ["HEIGHT_POSITIONS", "LevelIdentity", "anatomy_report", "check_identity", "export_landmark_meshes",
           "find_anatomy", "genant_grade", "height_loss", "landmark_meshes", "normal_heights", "reflect",
           "score_identity"]
