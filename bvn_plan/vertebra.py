"""The vertebra model: one vertebra's surface, its units and frame (its landmarks are found from it:
:func:`bvn_plan.anatomy.find.find_anatomy`)."""

from __future__ import annotations

import os

import numpy as np
import trimesh

from .errors import InputError
from .coordinates import UNITS_TO_MM, normalise_patient_frame
from .levels import normalise_level
from .mesh_io import clean_mesh, file_patient_frame, read_mesh_file


class Vertebra:
    """One vertebra.

    ``mesh`` is a trimesh surface in **millimetres** in model coordinates: the input's own
    coordinates multiplied by ``scale_to_mm``. ``patient_frame`` names the frame of those
    coordinates (``"RAS"``, ``"LPS"`` or ``None`` when unknown). ``trust_level``: plan it as
    ``level`` even when its shape fits another level grossly better (:mod:`bvn_plan.anatomy.identity`).
    """

    def __init__(self, mesh: trimesh.Trimesh, level: str | None = None, patient_frame: str | None = None,
                 input_units: str = "mm", source: str | None = None, notes: list[str] | None = None,
                 trust_level: bool = False):
        self.mesh = mesh
        self.level = normalise_level(level) if level is not None else None
        self.trust_level = trust_level
        self.patient_frame = normalise_patient_frame(patient_frame)
        if input_units not in UNITS_TO_MM:
            raise InputError(f"unknown units {input_units!r}: use one of {', '.join(UNITS_TO_MM)}")
        self.input_units = input_units
        self.source = source
        self.notes = list(notes or [])

    @property
    def scale_to_mm(self) -> float:
        return UNITS_TO_MM[self.input_units]

    @classmethod
    def load(cls, path: str | os.PathLike, level: str | None = None, units: str | None = None,
             frame: str | None = None) -> "Vertebra":
        """Read a vertebra surface file (STL, OBJ, PLY, OFF, GLB, VTK, VTP).

        ``units``: unit of the file's coordinates (mm, cm, m, in), detected from size when
        ``None``. ``frame``: patient frame of the file's coordinates (RAS or LPS), if known; by
        default the frame the file's ``SPACE=`` tag names (:func:`bvn_plan.mesh_io.file_patient_frame`).
        """
        level = normalise_level(level) if level is not None else None
        frame = normalise_patient_frame(frame)
        raw = read_mesh_file(path)
        mesh, report = clean_mesh(raw, units, source=os.path.basename(os.fspath(path)))
        tagged = file_patient_frame(path)
        if tagged and frame and tagged != frame:
            raise InputError(f"{path} says its coordinates are SPACE={tagged} but the frame given is {frame}: "
                             f"leave the frame out (or give {tagged}) unless the file's header is wrong")
        if tagged and not frame:
            report.notes.append(f"patient frame {tagged} from the file's SPACE={tagged} header")
        return cls(mesh, level, frame or tagged, report.units, os.fspath(path), report.notes)

    @classmethod
    def from_mesh(cls, mesh: trimesh.Trimesh, level: str | None = None, units: str | None = "mm",
                  frame: str | None = None, source: str = "mesh") -> "Vertebra":
        """Wrap an in-memory surface after the same checks and repairs as :meth:`load`."""
        level = normalise_level(level) if level is not None else None
        frame = normalise_patient_frame(frame)
        cleaned, report = clean_mesh(mesh, units, source=source)
        return cls(cleaned, level, frame, report.units, source, report.notes)

    def to_input_units(self, points: np.ndarray) -> np.ndarray:
        """Model coordinates (mm) -> the input file's coordinates and units."""
        return np.asarray(points, dtype=float) / self.scale_to_mm

    def __repr__(self) -> str:
        return (f"Vertebra(level={self.level}, faces={len(self.mesh.faces)}, frame={self.patient_frame}, "
                f"input_units={self.input_units}, source={self.source!r})")
