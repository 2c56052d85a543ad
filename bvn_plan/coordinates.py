"""Coordinate frames and units.

Two kinds of frame appear in bvn-plan:

* the **patient frame** of an input file: ``RAS`` (+x right, +y anterior, +z superior; NIfTI,
  Slicer's internal frame) or ``LPS`` (+x left, +y posterior, +z superior; DICOM, ITK, files
  written by Slicer >= 4.11), or ``None`` when the file does not say (a bare STL/OBJ);
* the **vertebra frame** of one vertebra: origin at the vertebral-body centre, axes along the
  patient's right, anterior and superior directions (RAS-like), millimetres.

All coordinates are millimetres; :data:`UNITS_TO_MM` converts the units an input may come in.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .errors import InputError

RAS, LPS = "RAS", "LPS"
PATIENT_FRAMES = (RAS, LPS)

#: Scale factor to millimetres for each accepted unit name.
UNITS_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "in": 25.4}
#: The patient sides and the sign of their x in a vertebra frame (+x patient right).
SIDE_SIGNS = (("right", 1), ("left", -1))

# Directions of the patient's right, anterior and superior in each patient frame.
_RAS_AXES_IN = {
    RAS: np.eye(3),
    LPS: np.diag([-1.0, -1.0, 1.0]),
}


def normalise_patient_frame(frame: str | None) -> str | None:
    """Return ``"RAS"``, ``"LPS"`` or ``None``; raise :class:`InputError` on anything else."""
    if frame is None:
        return None
    name = str(frame).strip().upper()
    if name in ("", "NONE", "UNKNOWN"):
        return None
    if name not in PATIENT_FRAMES:
        raise InputError(f"unknown patient frame {frame!r}: use RAS, LPS, or leave it unset")
    return name


def patient_axes(frame: str) -> np.ndarray:
    """Rows: the patient's right, anterior and superior unit vectors expressed in ``frame``."""
    return _RAS_AXES_IN[normalise_patient_frame(frame)].copy()


def convert_points(points: np.ndarray, source: str, target: str) -> np.ndarray:
    """Convert points (mm, shape (..., 3)) between the RAS and LPS patient frames."""
    source, target = normalise_patient_frame(source), normalise_patient_frame(target)
    points = np.asarray(points, dtype=float)
    if source == target:
        return points.copy()
    return points * np.array([-1.0, -1.0, 1.0])


@dataclass(frozen=True, eq=False)
class AnatomicalFrame:
    """A vertebra frame expressed in model coordinates (mm).

    ``origin`` is the vertebral-body centre; ``right``, ``anterior`` and ``superior`` are unit
    vectors (a right-handed orthonormal triad when the left/right sense is known, see
    ``handedness_known``). Frozen, so that its rotation is made once (a check transforms points
    into the frame dozens of times).
    """

    origin: np.ndarray
    right: np.ndarray
    anterior: np.ndarray
    superior: np.ndarray
    handedness_known: bool = True

    @cached_property
    def rotation(self) -> np.ndarray:
        """3x3 matrix whose rows are the right, anterior and superior axes (model coords); read-only."""
        rotation = np.vstack([self.right, self.anterior, self.superior])
        rotation.flags.writeable = False
        return rotation

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """Model coordinates (mm) -> vertebra-frame coordinates (mm): x right, y anterior, z superior."""
        return (np.asarray(points, dtype=float) - self.origin) @ self.rotation.T

    def to_model(self, points: np.ndarray) -> np.ndarray:
        """Vertebra-frame coordinates (mm) -> model coordinates (mm)."""
        return np.asarray(points, dtype=float) @ self.rotation + self.origin

    def direction_to_local(self, vectors: np.ndarray) -> np.ndarray:
        """Rotate direction vectors from model coordinates into the vertebra frame."""
        return np.asarray(vectors, dtype=float) @ self.rotation.T

    def direction_to_model(self, vectors: np.ndarray) -> np.ndarray:
        """Rotate direction vectors from the vertebra frame into model coordinates."""
        return np.asarray(vectors, dtype=float) @ self.rotation

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous transform taking model coordinates to vertebra-frame coordinates."""
        m = np.eye(4)
        m[:3, :3] = self.rotation
        m[:3, 3] = -self.rotation @ self.origin
        return m

    @classmethod
    def identity(cls) -> "AnatomicalFrame":
        """The frame whose axes are the model axes (model coordinates already RAS, origin 0)."""
        return cls(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0]))

    def to_dict(self, unit_mm: float = 1.0) -> dict:
        """The frame as JSON-ready lists: ``origin`` in units of ``unit_mm`` millimetres (1: model
        coordinates in mm), the axes as unit vectors."""
        return {
            "origin": (self.origin / unit_mm).tolist(),
            "right": self.right.tolist(),
            "anterior": self.anterior.tolist(),
            "superior": self.superior.tolist(),
            "handedness_known": self.handedness_known,
        }

    @classmethod
    def from_dict(cls, data: dict, unit_mm: float = 1.0) -> "AnatomicalFrame":
        """The inverse of :meth:`to_dict` (the same ``unit_mm``): model coordinates in mm."""
        return cls(np.asarray(data["origin"], float) * unit_mm, np.asarray(data["right"], float),
                   np.asarray(data["anterior"], float), np.asarray(data["superior"], float),
                   bool(data["handedness_known"]))
