"""Anatomy recognition: the landmarks of one vertebra mesh in any pose (see :mod:`bvn_plan.anatomy.find`)
and the level its shape fits (:mod:`bvn_plan.anatomy.identity`)."""

from .find import anatomy_report, export_landmark_meshes, find_anatomy, landmark_meshes
from .identity import LevelIdentity, check_identity, score_identity
from .symmetry import reflect

__all__ = ["LevelIdentity", "anatomy_report", "check_identity", "export_landmark_meshes", "find_anatomy",
           "landmark_meshes", "reflect", "score_identity"]
