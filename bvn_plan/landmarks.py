"""The landmarks of one vertebra, shared by the synthetic generator (ground truth) and the
anatomy recogniser (findings), so that the two can be compared field by field.

All points are millimetres in **model coordinates** (the mesh's own coordinates after unit
conversion); directions are unit vectors in the same coordinates. ``frame`` turns them into the
vertebra frame (x right, y anterior, z superior, origin at the body centre).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

import trimesh

from .coordinates import AnatomicalFrame

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

    def __post_init__(self):
        from .errors import InputError

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

    def to_dict(self) -> dict:
        return {"point": self.point.tolist(), "normal": self.normal.tolist()}


@dataclass
class Pedicle:
    """One pedicle. ``axis_direction`` points from posterior to anterior (into the body)."""

    side: str                      # "left" or "right" (patient side)
    isthmus_centre: np.ndarray     # centre of the narrowest cross-section
    axis_direction: np.ndarray
    isthmus_width_mm: float           # transverse, mm
    isthmus_height_mm: float          # cranio-caudal, mm
    body_junction: np.ndarray      # where the axis meets the vertebral body (posterior wall level)

    def to_dict(self) -> dict:
        return {
            "side": self.side,
            "isthmus_centre": self.isthmus_centre.tolist(),
            "axis_direction": self.axis_direction.tolist(),
            "isthmus_width_mm": float(self.isthmus_width_mm),
            "isthmus_height_mm": float(self.isthmus_height_mm),
            "body_junction": self.body_junction.tolist(),
        }


@dataclass
class Landmarks:
    """Everything the planner needs to know about one vertebra (mm, model coordinates)."""

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

    def to_dict(self) -> dict:
        return {
            "level": self.level,
            "frame": self.frame.to_dict(),
            "midsagittal_plane": self.midsagittal_plane.to_dict(),
            "superior_endplate": self.superior_endplate.to_dict(),
            "inferior_endplate": self.inferior_endplate.to_dict(),
            "posterior_wall_points": np.asarray(self.posterior_wall_points).tolist(),
            "canal_centroid": self.canal_centroid.tolist(),
            "pedicles": {side: p.to_dict() for side, p in self.pedicles.items()},
            "basivertebral_foramen": self.basivertebral_foramen.tolist(),
            "bvn_terminus": self.bvn_terminus.tolist(),
            "bvn_terminus_placement": dataclasses.asdict(self.terminus),
            "morphometry": {k: float(v) for k, v in self.morphometry.items()},
            "confidence": {k: float(v) for k, v in self.confidence.items()},
            "face_region_sizes": {k: int(len(v)) for k, v in self.face_regions.items()},
            "notes": list(self.notes),
        }
