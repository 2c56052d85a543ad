"""The BVN target zone: where the basivertebral nerve arborises, as a sampled volume with the
nerve's path into it (mm; bounds laid out in the vertebra frame, points in model coordinates).

The nerve enters through the basivertebral foramen in the middle of the posterior wall and
arborises in the posterior third to half of the body, at the midline, toward both endplates
(docs/sources.md and bvn_facts.md "Anatomy of the target", items 1 and 3: Antonacci 1998; the
AJNR 2024 case series). The nominal terminus (:class:`~bvn_plan.landmarks.TerminusParameters`,
35 % of the depth) is one point of this zone; the zone is what a lesion should cover when the
canal margin keeps it off that point (issue 18; Huang 2022's 10 mm canal rule stays).

The zone is a box in the vertebra frame, curved to the endplates: across, ``half_width_mm``
either side of the mid-sagittal plane; in depth, the ``depth_fractions`` of the mid-sagittal AP
body depth forward of the posterior wall (the foramen); in height, the ``height_fractions`` of
the local body height between the endplate planes. It is sampled on a regular lattice
(``spacing_mm``) whose points stand for equal volumes (to the endplates' small tilt), so the share
of the samples inside a lesion is the share of the zone's volume it covers. The nerve path is the
straight segment from the foramen to the nominal terminus.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InputError
from ..landmarks import Landmarks

#: Sources of the zone's bounds, written beside them in plan.json.
ZONE_SOURCES = {
    "depth_fractions": "posterior third to half of the AP body depth from the posterior wall [V, bvn_facts.md "
                       "'Anatomy of the target' 3: arborisation there, AJNR 2024 case series, secondary]",
    "s1_depth_fractions": "S1 has no posterior nutrient foramen; its nerves enter laterally and are densest at the "
                          "anatomic centre of the body [V, PMC4681698]: a band either side of the centre [A]",
    "half_width_mm": "'at the midline' [V, ibid.]; how far either side is an assumption [A]: the radius of the "
                     "default 10 mm lesion",
    "height_fractions": "'mid-height' [A, bvn_facts.md 'Anatomy of the target' 3: target default mid-height]; "
                        "the branches run toward both endplates (Antonacci 1998), the band is an assumption",
    "nerve_path": "from the basivertebral foramen (Antonacci 1998; Tzika 2021) straight to the nominal terminus",
}


@dataclass(frozen=True)
class TargetZoneParameters:
    """The zone's bounds (ZONE_SOURCES gives each one's source).

    * ``depth_fractions``: (from, to) shares of the mid-sagittal AP body depth forward of the
      posterior wall [V: 1/3 to 1/2].
    * ``s1_depth_fractions``: the same at S1, around the body centre [A].
    * ``half_width_mm``: either side of the mid-sagittal plane [A, 5 mm].
    * ``height_fractions``: (from, to) shares of the body height from the inferior (0) to the
      superior (1) endplate [A, 0.3-0.7].
    * ``spacing_mm``: the sampling lattice's step (mm).
    """

    depth_fractions: tuple[float, float] = (1.0 / 3.0, 0.5)
    s1_depth_fractions: tuple[float, float] = (0.35, 0.65)
    half_width_mm: float = 5.0
    height_fractions: tuple[float, float] = (0.3, 0.7)
    spacing_mm: float = 1.0

    def __post_init__(self):
        for name in ("depth_fractions", "s1_depth_fractions", "height_fractions"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo < hi < 1.0:
                raise InputError(f"target zone {name} {getattr(self, name)}: need 0 < from < to < 1")
        if not self.half_width_mm > 0 or not 0.1 <= self.spacing_mm <= 5.0:
            raise InputError(f"target zone half_width_mm {self.half_width_mm} must be > 0 and spacing_mm "
                             f"{self.spacing_mm} within 0.1-5 mm")

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


@dataclass
class TargetZone:
    """One vertebra's target zone: ``points`` (N, 3; mm, model coordinates), each standing for an
    equal share of the zone's volume; the nerve path from ``foramen`` to ``terminus`` (mm, model
    coordinates); the depth fractions used; ``volume_mm3``."""

    parameters: TargetZoneParameters
    points: np.ndarray
    foramen: np.ndarray
    terminus: np.ndarray
    depth_fractions: tuple[float, float]
    volume_mm3: float

    @classmethod
    def of(cls, landmarks: Landmarks, parameters: TargetZoneParameters = TargetZoneParameters()) -> "TargetZone":
        """The zone of ``landmarks`` (its frame, foramen, terminus, endplate planes and body depth)."""
        p, lm, frame = parameters, landmarks, landmarks.frame
        depth_mm = float(lm.morphometry.get("body_depth_mm", np.nan))
        if not np.isfinite(depth_mm) or depth_mm <= 0:
            raise InputError("the target zone needs the mid-sagittal body depth (morphometry body_depth_mm)")
        fractions = p.s1_depth_fractions if lm.level == "S1" else p.depth_fractions
        foramen, terminus = np.asarray(lm.basivertebral_foramen, float), np.asarray(lm.bvn_terminus, float)
        wall_y, mid_x = frame.to_local(foramen)[1], frame.to_local(terminus)[0]
        step = p.spacing_mm

        def centred(lo: float, hi: float, odd: bool = False) -> np.ndarray:
            """Cell centres of a lattice of about ``step`` filling [lo, hi] (at least one cell; an odd
            number of cells puts one on the middle: across, on the mid-sagittal plane)."""
            n = max(1, int(round((hi - lo) / step)))
            n += odd and n % 2 == 0
            return lo + (np.arange(n) + 0.5) * (hi - lo) / n
        xs = centred(mid_x - p.half_width_mm, mid_x + p.half_width_mm, odd=True)
        ys = centred(wall_y + fractions[0] * depth_mm, wall_y + fractions[1] * depth_mm)
        x, y = (a.ravel() for a in np.meshgrid(xs, ys, indexing="ij"))
        # the vertical line through each (x, y) meets the endplate planes at t_inf and t_sup
        base = frame.to_model(np.stack([x, y, np.zeros_like(x)], axis=1))
        up = frame.superior

        def meet(plane) -> np.ndarray:
            return -plane.signed_distance(base) / (up @ plane.normal)
        t_inf, t_sup = meet(lm.inferior_endplate), meet(lm.superior_endplate)
        height = t_sup - t_inf
        if not (height > 0).all():
            raise InputError("the endplate planes do not bound the body at the target zone")
        h_lo, h_hi = p.height_fractions
        rows = max(1, int(round((h_hi - h_lo) * float(np.median(height)) / step)))
        h = h_lo + (np.arange(rows) + 0.5) * (h_hi - h_lo) / rows
        t = t_inf[:, None] + h[None, :] * height[:, None]
        points = (base[:, None, :] + t[..., None] * up).reshape(-1, 3)
        cell = (xs[1] - xs[0] if len(xs) > 1 else 2 * p.half_width_mm) * (ys[1] - ys[0] if len(ys) > 1 else
                                                                         (fractions[1] - fractions[0]) * depth_mm)
        volume = float(cell * ((h_hi - h_lo) * height).sum())
        return cls(p, points, foramen, terminus, tuple(fractions), volume)

    def coverage(self, lesion) -> float:
        """Share (0-1) of the zone's volume inside ``lesion`` (a :class:`bvn_plan.lesion.Lesion`)."""
        return float(np.mean(lesion.contains(self.points)))

    def nerve_path_coverage(self, lesion) -> float:
        """Share (0-1) of the nerve path (foramen -> nominal terminus) inside ``lesion``."""
        return lesion.path_coverage(self.foramen, self.terminus)

    def deepest_reachable(self, canal_distance: np.ndarray, need_mm: float) -> np.ndarray:
        """Indices of the zone points at least ``need_mm`` from the canal (``canal_distance``: mm per
        point), nearest the nominal terminus first."""
        ok = np.flatnonzero(canal_distance >= need_mm)
        return ok[np.argsort(np.linalg.norm(self.points[ok] - self.terminus, axis=1), kind="stable")]
