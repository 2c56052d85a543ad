"""The landmarks of one vertebra, shared by the synthetic generator (ground truth) and the
anatomy recogniser (findings), so that the two can be compared field by field.

All points are millimetres in **model coordinates** (the mesh's own coordinates after unit
conversion); directions are unit vectors in the same coordinates. ``frame`` turns them into the
vertebra frame (x right, y anterior, z superior, origin at the body centre).

Each part serialises with ``to_dict`` / ``from_dict`` (exact inverses). ``unit_mm`` is the length
in mm of one unit of the written points: 1 (the default) writes model coordinates in mm,
``Vertebra.scale_to_mm`` the input file's units. Directions, sizes named ``_mm`` and angles are
written as they are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

import trimesh

from .coordinates import AnatomicalFrame
from .errors import InputError

#: Surface regions of the vertebra mesh that findings and ground truth label by face index.
FACE_REGIONS = (
    "superior_endplate", "inferior_endplate", "posterior_wall", "anterior_cortex",
    "lateral_cortex", "left_pedicle", "right_pedicle", "posterior_arch",
)


@dataclass(frozen=True)
class TerminusParameters:
    """Where the basivertebral nerve terminus is placed [A, docs/sources.md "Anatomy of the target" 3-4].

    ``depth_fraction``: fraction of the mid-sagittal AP body depth measured forward from the
    posterior wall (default 0.35; the terminus lies in the posterior third to half of the body,
    sensible range 0.2-0.5). ``height_fraction``: fraction of the body height between the inferior
    (0) and superior (1) endplates (default 0.5). ``s1_body_centre``: at S1, which has no posterior
    nutrient foramen, use the body centre instead (PMC4681698).
    """

    depth_fraction: float = 0.35
    height_fraction: float = 0.5
    s1_body_centre: bool = True

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TerminusParameters":
        return cls(**data)

    def __post_init__(self):
        if not 0.05 <= self.depth_fraction <= 0.95:
            raise InputError(f"terminus depth_fraction {self.depth_fraction} is outside 0.05-0.95")
        if not 0.05 <= self.height_fraction <= 0.95:
            raise InputError(f"terminus height_fraction {self.height_fraction} is outside 0.05-0.95")


@dataclass
class Plane:
    """A plane through ``point`` with unit ``normal`` (mm, model coordinates)."""

    point: np.ndarray
    normal: np.ndarray

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, dtype=float) - self.point) @ self.normal

    def to_dict(self, unit_mm: float = 1.0) -> dict:
        return {"point": (self.point / unit_mm).tolist(), "normal": self.normal.tolist()}

    @classmethod
    def from_dict(cls, data: dict, unit_mm: float = 1.0) -> "Plane":
        return cls(np.asarray(data["point"], float) * unit_mm, np.asarray(data["normal"], float))


@dataclass
class Pedicle:
    """One pedicle. ``axis_direction`` points from posterior to anterior (into the body)."""

    side: str                      # "left" or "right" (patient side)
    isthmus_centre: np.ndarray     # centre of the narrowest cross-section
    axis_direction: np.ndarray
    isthmus_width_mm: float           # transverse, mm
    isthmus_height_mm: float          # cranio-caudal, mm
    body_junction: np.ndarray      # where the axis meets the vertebral body (posterior wall level)

    def to_dict(self, unit_mm: float = 1.0) -> dict:
        return {
            "side": self.side,
            "isthmus_centre": (self.isthmus_centre / unit_mm).tolist(),
            "axis_direction": self.axis_direction.tolist(),
            "isthmus_width_mm": float(self.isthmus_width_mm),
            "isthmus_height_mm": float(self.isthmus_height_mm),
            "body_junction": (self.body_junction / unit_mm).tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict, unit_mm: float = 1.0) -> "Pedicle":
        return cls(data["side"], np.asarray(data["isthmus_centre"], float) * unit_mm,
                   np.asarray(data["axis_direction"], float), float(data["isthmus_width_mm"]),
                   float(data["isthmus_height_mm"]), np.asarray(data["body_junction"], float) * unit_mm)


@dataclass
class Landmarks:
    """Everything the planner needs to know about one vertebra (mm, model coordinates).

    :meth:`to_dict` holds the findings (a few kB) but not ``canal_mesh``, ``body_mesh`` and
    ``face_regions`` (only their sizes): those are tens of thousands of vertices and face indices,
    so :meth:`from_dict` leaves them empty and a plan file stores them apart, compressed
    (:mod:`bvn_plan.planning.plan_file`); the synthetic ground truth writes the meshes as files.
    """

    level: str
    frame: AnatomicalFrame
    midsagittal_plane: Plane
    superior_endplate: Plane       # normal points superiorly (out of the body, into the disc)
    inferior_endplate: Plane       # normal points inferiorly
    posterior_wall_points: np.ndarray   # (N, 3) samples of the body surface facing the canal
    canal_centroid: np.ndarray
    pedicles: dict[str, Pedicle]   # keys "left", "right"
    basivertebral_foramen: np.ndarray
    bvn_terminus: np.ndarray
    morphometry: dict[str, float] = field(default_factory=dict)  # mm / degrees, names as levels.LevelMorphometry
    confidence: dict[str, float] = field(default_factory=dict)   # 0..1 per finding
    canal_mesh: trimesh.Trimesh | None = None   # the vertebral foramen as a closed volume (watertight)
    body_mesh: trimesh.Trimesh | None = None    # the vertebral body alone (watertight)
    #: Face indices into the vertebra mesh for each surface region, named as in FACE_REGIONS.
    face_regions: dict[str, np.ndarray] = field(default_factory=dict)
    #: What was assumed or doubted while finding these landmarks (empty for ground truth).
    notes: list[str] = field(default_factory=list)
    #: How the BVN terminus was placed (depth and height fractions).
    terminus: TerminusParameters = field(default_factory=TerminusParameters)
    #: How well the shape fits each level (anatomy.identity.LevelIdentity; None when no level was given
    #: or for ground truth); not written by :meth:`to_dict`.
    identity: object | None = None

    def to_dict(self, unit_mm: float = 1.0) -> dict:
        return {
            "level": self.level,
            "frame": self.frame.to_dict(unit_mm),
            "midsagittal_plane": self.midsagittal_plane.to_dict(unit_mm),
            "superior_endplate": self.superior_endplate.to_dict(unit_mm),
            "inferior_endplate": self.inferior_endplate.to_dict(unit_mm),
            "posterior_wall_points": (np.asarray(self.posterior_wall_points) / unit_mm).tolist(),
            "canal_centroid": (self.canal_centroid / unit_mm).tolist(),
            "pedicles": {side: p.to_dict(unit_mm) for side, p in self.pedicles.items()},
            "basivertebral_foramen": (self.basivertebral_foramen / unit_mm).tolist(),
            "bvn_terminus": (self.bvn_terminus / unit_mm).tolist(),
            "bvn_terminus_placement": self.terminus.to_dict(),
            "morphometry": {k: float(v) for k, v in self.morphometry.items()},
            "confidence": {k: float(v) for k, v in self.confidence.items()},
            "face_region_sizes": {k: int(len(v)) for k, v in self.face_regions.items()},
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict, unit_mm: float = 1.0) -> "Landmarks":
        """The inverse of :meth:`to_dict` (the same ``unit_mm``), without the meshes and face
        regions (see the class docstring)."""
        def point(key):
            return np.asarray(data[key], float) * unit_mm

        return cls(
            level=data["level"],
            frame=AnatomicalFrame.from_dict(data["frame"], unit_mm),
            midsagittal_plane=Plane.from_dict(data["midsagittal_plane"], unit_mm),
            superior_endplate=Plane.from_dict(data["superior_endplate"], unit_mm),
            inferior_endplate=Plane.from_dict(data["inferior_endplate"], unit_mm),
            posterior_wall_points=point("posterior_wall_points").reshape(-1, 3),
            canal_centroid=point("canal_centroid"),
            pedicles={side: Pedicle.from_dict(p, unit_mm) for side, p in data["pedicles"].items()},
            basivertebral_foramen=point("basivertebral_foramen"),
            bvn_terminus=point("bvn_terminus"),
            morphometry={k: float(v) for k, v in data["morphometry"].items()},
            confidence={k: float(v) for k, v in data["confidence"].items()},
            notes=list(data["notes"]),
            terminus=TerminusParameters.from_dict(data["bvn_terminus_placement"]),
        )
