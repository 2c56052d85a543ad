"""Thermal and electrical tissue properties and thermal-damage models for the bioheat simulation.

Property values are SI as published (W/m/K, kg/m³, J/kg/K, kg/m³/s, S/m); bvn_plan.thermal.bioheat converts
them to millimetres. Sources: docs/sources.md "Bioheat"; [A] marks assumptions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

#: Universal gas constant, J/mol/K.
GAS_CONSTANT = 8.314


@dataclass(frozen=True)
class Tissue:
    """One tissue: conductivity (W/m/K), density (kg/m³), specific heat (J/kg/K), blood
    perfusion as blood mass flow per tissue volume (kg/m³/s, i.e. ω·ρ_b of Pennes' equation) and
    electrical conductivity at the RF frequency (S/m, used by the ``"rf"`` heating model only)."""

    name: str
    conductivity: float
    density: float
    specific_heat: float
    perfusion: float
    electrical_conductivity: float = 0.087

    def __post_init__(self):
        for field in ("conductivity", "density", "specific_heat", "electrical_conductivity"):
            if not getattr(self, field) > 0:
                raise InputError(f"tissue {self.name!r}: {field} must be positive, got {getattr(self, field)!r}")
        if not self.perfusion >= 0:
            raise InputError(f"tissue {self.name!r}: perfusion must be >= 0 kg/m3/s, got {self.perfusion!r}")

    @property
    def heat_capacity(self) -> float:
        """Volumetric heat capacity ρc, J/m³/K."""
        return self.density * self.specific_heat


@dataclass(frozen=True)
class PropertySet:
    """A named scenario: the three tissues of the model, blood, and the cortical shell thickness.

    ``cancellous`` fills the vertebral body; ``cortical`` is a shell ``cortical_thickness_mm``
    thick just inside the bone surface; ``soft_tissue`` is everything outside the bone (canal
    contents, muscle, disc) [A].
    """

    name: str
    cancellous: Tissue
    cortical: Tissue
    soft_tissue: Tissue
    blood_specific_heat: float = 3600.0
    arterial_temperature_c: float = 37.0
    cortical_thickness_mm: float = 1.0
    description: str = ""

    def scaled(self, conductivity: float = 1.0, perfusion: float = 1.0, electrical: float = 1.0) -> "PropertySet":
        """A copy with every tissue's thermal conductivity, perfusion and electrical conductivity
        multiplied (sensitivity studies)."""
        def scale(t: Tissue) -> Tissue:
            return dataclasses.replace(t, conductivity=t.conductivity * conductivity, perfusion=t.perfusion * perfusion,
                                       electrical_conductivity=t.electrical_conductivity * electrical)
        return dataclasses.replace(self, name=f"{self.name} (k x{conductivity:g}, perfusion x{perfusion:g}, "
                                              f"sigma x{electrical:g})",
                                   cancellous=scale(self.cancellous), cortical=scale(self.cortical),
                                   soft_tissue=scale(self.soft_tissue))


#: Cancellous bone with red marrow: k 0.29-0.31 W/m/K [V]; ρ 1178 kg/m³, c 2274 J/kg/K [A, IT'IS]
#: (ρc = 2.68 MJ/m³/K; docs/sources.md rounds to ≈ 3.0); marrow perfusion 17.6 mL/min/100 g in the
#: lumbar spine ≈ 3 kg/m³/s blood mass flow [V, Blood 1994]; electrical conductivity 0.087 S/m
#: (trabecular) [V, Int J Hyperthermia 2016].
CANCELLOUS = Tissue("cancellous bone", conductivity=0.30, density=1178.0, specific_heat=2274.0, perfusion=3.0,
                    electrical_conductivity=0.087)
#: Cortical bone: k 0.3-0.8 W/m/K (0.32 chosen, the IT'IS value) [V range, A choice]; ρ 1810, c 1250 [V];
#: perfusion a tenth of marrow [A]; electrical conductivity 0.02 S/m [V, Int J Hyperthermia 2016].
CORTICAL = Tissue("cortical bone", conductivity=0.32, density=1810.0, specific_heat=1250.0, perfusion=0.3,
                  electrical_conductivity=0.02)
#: Soft tissue outside the bone (muscle-like; canal contents, disc) [A, IT'IS muscle: k 0.49,
#: ρ 1090, c 3421; perfusion ≈ 0.6 kg/m³/s; electrical conductivity ≈ 0.45 S/m near 500 kHz (IT'IS
#: muscle, from memory) [A]].
SOFT_TISSUE = Tissue("soft tissue", conductivity=0.49, density=1090.0, specific_heat=3421.0, perfusion=0.6,
                     electrical_conductivity=0.45)
#: Osteoporotic cancellous electrical conductivity 0.10 S/m [A]: lower bone volume fraction raises it
#: [V direction, Irastorza 2014], fattier marrow lowers it [A direction]; +15 % net is a what-if.
OSTEOPOROTIC_CANCELLOUS_SIGMA = 0.10

#: Named scenarios. The osteoporotic set: fattier marrow (lower conductivity [A]) and lower marrow
#: perfusion after age 50 [V, direction only]; docs/sources.md "Bioheat": the net effect on lesion size is
#: UNKNOWN (electrical conductivity rises with lower bone volume fraction [V, Irastorza 2014]; only the
#: ``"rf"`` heating model uses it). Treat it as a what-if scenario, not a prediction.
PROPERTY_SETS: dict[str, PropertySet] = {
    "normal": PropertySet("normal", CANCELLOUS, CORTICAL, SOFT_TISSUE, cortical_thickness_mm=1.0,
                          description="adult lumbar vertebra, red marrow; cortical shell 1 mm [A]"),
    "osteoporotic": PropertySet(
        "osteoporotic",
        dataclasses.replace(CANCELLOUS, name="osteoporotic cancellous bone", conductivity=0.25, density=1050.0,
                            specific_heat=2500.0, perfusion=2.0, electrical_conductivity=OSTEOPOROTIC_CANCELLOUS_SIGMA),
        CORTICAL, SOFT_TISSUE, cortical_thickness_mm=0.5,
        description="[A] fattier marrow (k 0.25 W/m/K), perfusion -1/3, sigma 0.10 S/m, thinner cortex 0.5 mm; "
                    "net lesion-size effect unknown (docs/sources.md 'Bioheat')"),
}


def property_set(name_or_set: str | PropertySet) -> PropertySet:
    """Look up a named property set (``"normal"``, ``"osteoporotic"``) or pass one through."""
    if isinstance(name_or_set, PropertySet):
        return name_or_set
    if name_or_set not in PROPERTY_SETS:
        raise InputError(f"unknown tissue property set {name_or_set!r}: use one of {', '.join(PROPERTY_SETS)}")
    return PROPERTY_SETS[name_or_set]


@dataclass(frozen=True)
class DamageModel:
    """Thermal damage: ``"cem43"`` (cumulative equivalent minutes at 43 °C, Sapareto-Dewey) or
    ``"arrhenius"`` (Ω = ∫ A exp(-Ea / R T) dt).

    Lethal thresholds [A]: 240 CEM43 minutes; Ω = 1 (≈ 63% cell death) [V, docs/sources.md 'Bioheat'].
    Arrhenius constants [A]: Henriques-Moritz (1947) A = 3.1e98 1/s, Ea = 6.28e5 J/mol, which give
    near-instant death above 60 °C and minutes at 50-60 °C [V behaviour, Pearce 2010]; no
    bone-specific constants were found.
    """

    kind: str = "cem43"
    cem43_lethal_min: float = 240.0
    arrhenius_a: float = 3.1e98
    arrhenius_ea: float = 6.28e5
    arrhenius_lethal_omega: float = 1.0

    def __post_init__(self):
        if self.kind not in ("cem43", "arrhenius"):
            raise InputError(f"unknown damage model {self.kind!r}: use 'cem43' or 'arrhenius'")
        if not (self.cem43_lethal_min > 0 and self.arrhenius_lethal_omega > 0):
            raise InputError("damage thresholds must be positive")

    @property
    def lethal_dose(self) -> float:
        """Dose at the lesion boundary (CEM43 minutes or Ω)."""
        return self.cem43_lethal_min if self.kind == "cem43" else self.arrhenius_lethal_omega

    @property
    def unit(self) -> str:
        return "CEM43 min" if self.kind == "cem43" else "Omega"

    def rate(self, temperature_c: np.ndarray) -> np.ndarray:
        """Dose accumulated per second at ``temperature_c`` (°C)."""
        t = np.asarray(temperature_c, dtype=float)
        if self.kind == "cem43":
            return np.exp2(np.where(t >= 43.0, t - 43.0, 2.0 * (t - 43.0))) / 60.0   # R = 1/2 above 43 C, 1/4 below
        return self.arrhenius_a * np.exp(-self.arrhenius_ea / (GAS_CONSTANT * (t + 273.15)))


def damage_model(kind_or_model: str | DamageModel) -> DamageModel:
    """``"cem43"`` / ``"arrhenius"`` with default constants, or a DamageModel passed through."""
    return kind_or_model if isinstance(kind_or_model, DamageModel) else DamageModel(kind_or_model)
