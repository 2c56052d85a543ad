"""Anatomy recognition: the landmarks of one vertebra mesh in any pose (see :mod:`bvn_plan.anatomy.find`)
and the level its shape fits (:mod:`bvn_plan.anatomy.identity`)."""

from .find import anatomy_report, export_landmark_meshes, find_anatomy, find_numbering, landmark_meshes
from .identity import LevelIdentity, NumberingIdentity, check_identity, check_numbering, score_identity, score_numbering
from .morphometry import HEIGHT_POSITIONS, genant_grade, height_loss, normal_heights
from .symmetry import reflect

__all__ = ["HEIGHT_POSITIONS", "LevelIdentity", "NumberingIdentity", "anatomy_report", "check_identity",
           "check_numbering", "export_landmark_meshes", "find_anatomy", "find_numbering", "genant_grade", "height_loss",
           "landmark_meshes", "normal_heights", "reflect", "score_identity", "score_numbering"]
