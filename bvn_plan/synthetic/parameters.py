"""Parameters of a synthetic vertebra: the level's morphometry (:mod:`bvn_plan.levels`), the
textbook-proportion [A] tables of the posterior arch, kidney-shaped bodies and bone metadata, and
their validation. Millimetres and degrees.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..errors import InputError
from ..levels import LEVELS, LevelMorphometry, morphometry, normalise_level

#: Kidney indentation of the posterior body wall at the midline (mm) [A]: L1-L3 bodies are
#: kidney-shaped (posterior wall concave toward the canal), L5 oval/convex [V, Benrud 2023 Interv
#: Pain Med 2:100270]; the depths are assumptions.
KIDNEY_DEPTH_MM = {"L1": 3.0, "L2": 2.5, "L3": 2.0, "L4": 1.0, "L5": 0.0, "S1": 0.0}

#: Posterior-arch dimensions per level (mm, degrees) [A]: textbook proportions, not measured.
#: tp = transverse process length, facet_angle_deg = angle of the facet joint from the sagittal plane.
ARCH = {
    "L1": dict(tp_length_mm=13.0, spinous_length_mm=28.0, spinous_height_mm=26.0, facet_angle_deg=25.0),
    "L2": dict(tp_length_mm=17.0, spinous_length_mm=29.0, spinous_height_mm=27.0, facet_angle_deg=28.0),
    "L3": dict(tp_length_mm=21.0, spinous_length_mm=30.0, spinous_height_mm=27.0, facet_angle_deg=32.0),
    "L4": dict(tp_length_mm=18.0, spinous_length_mm=28.0, spinous_height_mm=25.0, facet_angle_deg=38.0),
    "L5": dict(tp_length_mm=14.0, spinous_length_mm=23.0, spinous_height_mm=20.0, facet_angle_deg=45.0),
    "S1": dict(tp_length_mm=0.0, spinous_length_mm=10.0, spinous_height_mm=14.0, facet_angle_deg=50.0),
}

#: Bone metadata for the thermal model [A]: cortical shell thickness (mm) and trabecular bone
#: volume fraction. Normal vs osteoporotic values are assumptions (osteoporosis thins the cortex
#: and lowers BV/TV; docs/sources.md "Bioheat"). The shape does not change with them.
NORMAL_BONE = {"cortical_thickness_mm": 0.5, "bone_volume_fraction": 0.15}
OSTEOPOROTIC_BONE = {"cortical_thickness_mm": 0.3, "bone_volume_fraction": 0.08}


@dataclass(frozen=True)
class SyntheticParameters:
    """Everything that shapes one synthetic vertebra (mm, degrees) and its bone metadata.

    ``morph`` holds the :class:`~bvn_plan.levels.LevelMorphometry` values actually used (after
    overrides and random variation). Endplate concavity depths 1.5 mm cranial / 0.7 mm caudal with
    a central concave zone of 70% of the diameter [V, Wang 2012 Eur Spine J]. ``kidney_depth_mm``:
    indentation of the posterior wall at the midline (:data:`KIDNEY_DEPTH_MM`). ``tp_length_mm``,
    ``spinous_length_mm``, ``spinous_height_mm``, ``facet_angle_deg`` (from the sagittal plane): posterior
    arch [A] (:data:`ARCH`). ``cortical_thickness_mm`` and ``bone_volume_fraction``: metadata for
    the thermal model [A] (:data:`NORMAL_BONE`, :data:`OSTEOPOROTIC_BONE`). ``seed``/``draw``:
    the random variation used (None/0 for the mean anatomy). ``voxel_mm`` is the sampling step of
    the implicit field, ``target_faces`` the face count after decimation.
    Pedicle sagittal angle: positive when the axis rises going anteriorly.
    ``pedicle_width_asymmetry_mm`` / ``pedicle_transverse_asymmetry_deg``: right minus left isthmus
    width / transverse angle (each side gets half; 0 = mirror-symmetric): real pedicles differ by
    side [A: left-right differences of 1-2 mm and a few degrees are common in CT morphometry].
    ``tp_root_span_mm``: how far (mm, along the pedicle axis from the articular pillar) the transverse
    process's root lies against the pedicle's lateral wall, as tall as the pedicle (0 = no root: today's
    shapes); longer than the pillar-to-isthmus distance, the pedicle has no narrowing (L5 [A]).
    ``wedge_compression`` (0..0.6): an osteoporotic wedge, the share of the anterior body height
    lost (at the anterior height position of :data:`bvn_plan.anatomy.morphometry.HEIGHT_POSITIONS`),
    the superior endplate hinged at the posterior height position; ``biconcave_compression``
    (0..0.6): the share of the middle height lost, both endplates sunk in the concave zone.
    0 (default) keeps the uncompressed body.
    """

    level: str
    morph: LevelMorphometry
    kidney_depth_mm: float
    endplate_concavity_superior_mm: float = 1.5
    endplate_concavity_inferior_mm: float = 0.7
    endplate_concave_zone: float = 0.7
    wedge_compression: float = 0.0
    biconcave_compression: float = 0.0
    tp_length_mm: float = 20.0
    spinous_length_mm: float = 28.0
    spinous_height_mm: float = 22.0
    facet_angle_deg: float = 30.0
    pedicle_width_asymmetry_mm: float = 0.0
    pedicle_transverse_asymmetry_deg: float = 0.0
    tp_root_span_mm: float = 0.0
    cortical_thickness_mm: float = NORMAL_BONE["cortical_thickness_mm"]
    bone_volume_fraction: float = NORMAL_BONE["bone_volume_fraction"]
    seed: int | None = None
    draw: int = 0
    voxel_mm: float = 0.7
    target_faces: int = 20000

    def to_dict(self) -> dict:
        out = asdict(self)
        out["morph"] = {f.name: getattr(self.morph, f.name) for f in fields(self.morph)}
        return out


def make_parameters(level: str, *, seed: int | None = None, vary: bool = False,
                    osteoporotic: bool = False, draw: int = 0, **overrides: float) -> SyntheticParameters:
    """Build the parameters of one level.

    Defaults come from :data:`bvn_plan.levels.MORPHOMETRY` and the [A] tables of this module.
    ``vary=True`` draws every morphometry value from a normal distribution with the level's SD
    (:meth:`LevelMorphometry.sd`) clipped to +-2 SD, reproducibly from ``seed`` (default 0);
    ``seed`` is ignored without ``vary``; ``draw`` picks another draw for the same seed (used by
    :func:`synthesize` to redraw combinations that do not form one bone). ``osteoporotic`` switches the bone metadata to
    :data:`OSTEOPOROTIC_BONE`. ``overrides`` name any LevelMorphometry field (e.g.
    ``pedicle_width_mm=5``) or SyntheticParameters field and win over defaults and variation.
    Raises :class:`InputError` on unknown levels/names or implausible values.
    """
    name = normalise_level(level)
    if name not in LEVELS:
        raise InputError(f"the synthetic generator makes {', '.join(LEVELS)}; {name} is not one of them")
    base = morphometry(name)
    morph_names = {f.name for f in fields(LevelMorphometry)} - {"level", "relative_sd"}
    param_names = {f.name for f in fields(SyntheticParameters)} - {"level", "morph", "seed", "draw"}
    unknown = set(overrides) - morph_names - param_names
    if unknown:
        raise InputError(
            f"unknown synthetic parameter(s) {', '.join(sorted(unknown))}: use morphometry names "
            f"({', '.join(sorted(morph_names))}) or {', '.join(sorted(param_names))}"
        )
    for key, value in overrides.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise InputError(f"parameter {key}={value!r} must be a finite number")

    morph = base
    used_seed = None
    if vary:
        used_seed = 0 if seed is None else int(seed)
        rng = np.random.default_rng([used_seed, LEVELS.index(name), draw])
        drawn = {}
        for fname in sorted(morph_names):
            mean, sd = getattr(base, fname), base.sd(fname)
            drawn[fname] = float(mean + sd * np.clip(rng.standard_normal(), -2.0, 2.0))
        morph = base.with_overrides(**drawn)
    morph = morph.with_overrides(**{k: float(v) for k, v in overrides.items() if k in morph_names})

    bone = OSTEOPOROTIC_BONE if osteoporotic else NORMAL_BONE
    values = dict(ARCH[name], kidney_depth_mm=KIDNEY_DEPTH_MM[name], **bone)
    values.update({k: v for k, v in overrides.items() if k in param_names})
    if "target_faces" in values:
        values["target_faces"] = int(values["target_faces"])
    params = SyntheticParameters(level=name, morph=morph, seed=used_seed, draw=draw if vary else 0, **values)
    _validate(params)
    return params


def _validate(p: SyntheticParameters) -> None:
    m = p.morph
    positive = ["body_width_mm", "body_depth_mm", "body_height_anterior_mm", "body_height_posterior_mm",
                "pedicle_width_mm", "pedicle_height_mm", "canal_width_mm", "canal_depth_mm"]
    for name in positive:
        if getattr(m, name) <= 0:
            raise InputError(f"{name} must be positive (got {getattr(m, name)} mm)")
    checks = [
        (30 <= m.body_width_mm <= 70, f"body_width_mm {m.body_width_mm:.1f} mm is outside 30-70 mm"),
        (22 <= m.body_depth_mm <= 50, f"body_depth_mm {m.body_depth_mm:.1f} mm is outside 22-50 mm"),
        (15 <= m.body_height_anterior_mm <= 40 and 15 <= m.body_height_posterior_mm <= 40,
         "body heights must be 15-40 mm"),
        (3 <= m.pedicle_width_mm <= 22, f"pedicle_width_mm {m.pedicle_width_mm:.1f} mm is outside 3-22 mm"),
        (5 <= m.pedicle_height_mm <= 20, f"pedicle_height_mm {m.pedicle_height_mm:.1f} mm is outside 5-20 mm"),
        (m.pedicle_height_mm < min(m.body_height_anterior_mm, m.body_height_posterior_mm) - 4,
         "pedicle_height_mm must be at least 4 mm less than the body heights"),
        (0 <= m.pedicle_transverse_angle_deg <= 50,
         f"pedicle_transverse_angle_deg {m.pedicle_transverse_angle_deg:.1f} deg is outside 0-50 deg"),
        (-20 <= m.pedicle_sagittal_angle_deg <= 25,
         f"pedicle_sagittal_angle_deg {m.pedicle_sagittal_angle_deg:.1f} deg is outside -20-25 deg"),
        (12 <= m.canal_width_mm <= 40, f"canal_width_mm {m.canal_width_mm:.1f} mm is outside 12-40 mm"),
        (8 <= m.canal_depth_mm <= 28, f"canal_depth_mm {m.canal_depth_mm:.1f} mm is outside 8-28 mm"),
        (-2 <= p.kidney_depth_mm <= 6, f"kidney_depth_mm {p.kidney_depth_mm} mm is outside -2-6 mm"),
        (0 <= p.endplate_concavity_superior_mm <= 4 and 0 <= p.endplate_concavity_inferior_mm <= 4,
         "endplate concavities must be 0-4 mm"),
        (0.3 <= p.endplate_concave_zone <= 0.9, "endplate_concave_zone must be 0.3-0.9"),
        (0 <= p.wedge_compression <= 0.6 and 0 <= p.biconcave_compression <= 0.6,
         "wedge_compression and biconcave_compression must be 0-0.6 (a share of the height)"),
        (0.05 <= p.cortical_thickness_mm <= 3, "cortical_thickness_mm must be 0.05-3 mm"),
        (0.01 <= p.bone_volume_fraction <= 0.6, "bone_volume_fraction must be 0.01-0.6"),
        (0.3 <= p.voxel_mm <= 1.2, "voxel_mm must be 0.3-1.2 mm"),
        (2000 <= p.target_faces <= 500000, "target_faces must be 2000-500000"),
        (0 <= p.tp_root_span_mm <= 30, "tp_root_span_mm must be 0-30 mm"),
        (abs(p.pedicle_width_asymmetry_mm) <= 6 and abs(p.pedicle_transverse_asymmetry_deg) <= 20,
         "pedicle asymmetries must be within 6 mm and 20 deg"),
        (p.tp_length_mm >= 0 and p.spinous_length_mm > 0 and p.spinous_height_mm > 0,
         "process lengths must be positive"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(f"synthetic {p.level}: {message}; choose a value near the level default")
