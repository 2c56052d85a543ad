"""The device profile: introducer, curved cannula, RF probe tip, heating protocol and lesion size.

One frozen, editable :class:`DeviceProfile` holds every device number the planner and the lesion
models use. Most values are assumptions ([A] in docs/sources.md "Device and lesion"); each default's
source is in :data:`SOURCES`. Lengths are millimetres, angles degrees, temperatures °C, times s.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .errors import InputError

#: The lesion models a profile can name (see bvn_plan.lesion and bvn_plan.thermal).
LESION_MODELS = ("ellipsoid", "bioheat")
#: How the bioheat model heats: the RF current with a temperature controller, or the electrodes
#: held at the set temperature (see bvn_plan.thermal).
HEATING_MODELS = ("rf", "temperature-clamped")

#: Where each default of :class:`DeviceProfile` comes from ([V] read in a source, [A] assumed).
SOURCES: dict[str, str] = {
    "name": "label only",
    "introducer_diameter_mm": "[A] 10 G (3.4 mm) introducer; docs/sources.md 'Device and lesion' (8-10 G quoted)",
    "introducer_max_depth_mm": "[A] longest straight introducer path from the skin-side pedicle entry "
                               "to the posterior wall; pedicle chord 45-50 mm (docs/sources.md 'Morphometry')",
    "cannula_radius_mm": "[A] curved cannula radius 15 mm, docs/sources.md 'Device and lesion' default profile",
    "cannula_max_arc_deg": "[A] curved cannula arc <= 90 deg, docs/sources.md 'Device and lesion' default profile",
    "electrode_diameter_mm": "[A] probe outer diameter 1.65 mm (16 G), fits through a 10 G introducer; unconfirmed",
    "electrode_length_mm": "[A] length of each of the two bipolar electrodes; unconfirmed",
    "bipolar_spacing_mm": "[A] insulating gap between the two bipolar electrodes; unconfirmed",
    "lesion_diameter_mm": "[A] lesion about 1 cm across [V-secondary: AJNR case 2024]; docs/sources.md 'Device and lesion'",
    "lesion_length_mm": "[A] 14 mm along the probe (lesions elongate along the shaft); docs/sources.md 'Device and lesion'",
    "lesion_offset_mm": "[A] lesion centre 3 mm proximal to the tip (little extension past the tip); "
                        "docs/sources.md 'Device and lesion'",
    "set_temperature_c": "[A] 85 C, the usual quote (lay sources 70-85 C); docs/sources.md 'Device and lesion'",
    "duration_s": "[A] 15 min, the usual quote (lay sources 7-15 min); docs/sources.md 'Device and lesion'",
    "lesion_model": "choice: 'ellipsoid' (fixed geometric lesion) or 'bioheat' (Pennes simulation)",
    "heating_model": "choice for the bioheat lesion: 'rf' (RF current through the tissues' electrical "
                     "conductivities, temperature-controlled power; the cortex confines the current) or "
                     "'temperature-clamped' (electrodes held at the set temperature, thermal only)",
}


def check_heating_model(name: str, where: str = "") -> str:
    """``name`` when it is one of :data:`HEATING_MODELS`, else :class:`InputError` (its message
    starting with ``where``)."""
    if name not in HEATING_MODELS:
        raise InputError(f"{where}unknown heating model {name!r}: use one of {', '.join(HEATING_MODELS)}")
    return name


@dataclass(frozen=True)
class DeviceProfile:
    """An ablation device and its heating protocol (mm, degrees, °C, s).

    The probe tip geometry is bipolar: two electrodes of ``electrode_length_mm`` separated by
    ``bipolar_spacing_mm``, the distal one ending at the tip. The geometric lesion is a spheroid
    ``lesion_length_mm`` along the probe axis by ``lesion_diameter_mm`` across, its centre
    ``lesion_offset_mm`` proximal to the tip. Sources of the defaults: :data:`SOURCES`.
    """

    name: str = "default"
    introducer_diameter_mm: float = 3.4
    introducer_max_depth_mm: float = 60.0
    cannula_radius_mm: float = 15.0
    cannula_max_arc_deg: float = 90.0
    electrode_diameter_mm: float = 1.65
    electrode_length_mm: float = 2.0
    bipolar_spacing_mm: float = 2.0
    lesion_diameter_mm: float = 10.0
    lesion_length_mm: float = 14.0
    lesion_offset_mm: float = 3.0
    set_temperature_c: float = 85.0
    duration_s: float = 900.0
    lesion_model: str = "ellipsoid"
    heating_model: str = "rf"

    @property
    def introducer_radius_mm(self) -> float:
        """Radius of the straight introducer (mm): the instrument radius every path is checked with."""
        return self.introducer_diameter_mm / 2

    def __post_init__(self):
        positive = ("introducer_diameter_mm", "introducer_max_depth_mm", "cannula_radius_mm",
                    "cannula_max_arc_deg", "electrode_diameter_mm", "electrode_length_mm",
                    "lesion_diameter_mm", "lesion_length_mm", "duration_s")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0 or value != value or value == float("inf"):
                raise InputError(f"device profile {self.name!r}: {name} must be a positive finite number, got {value!r}")
        if not 0 <= self.bipolar_spacing_mm < 50:
            raise InputError(f"device profile {self.name!r}: bipolar_spacing_mm must be 0-50 mm, got {self.bipolar_spacing_mm!r}")
        if self.cannula_max_arc_deg > 180:
            raise InputError(f"device profile {self.name!r}: cannula_max_arc_deg {self.cannula_max_arc_deg} exceeds 180")
        if self.electrode_diameter_mm >= self.introducer_diameter_mm:
            raise InputError(
                f"device profile {self.name!r}: the probe ({self.electrode_diameter_mm} mm) must be thinner "
                f"than the introducer ({self.introducer_diameter_mm} mm) it passes through")
        if not 37.0 < self.set_temperature_c <= 120.0:
            raise InputError(f"device profile {self.name!r}: set_temperature_c must be above body temperature "
                             f"(37 C) and at most 120 C, got {self.set_temperature_c!r}")
        check_heating_model(self.heating_model, f"device profile {self.name!r}: ")
        if self.lesion_model not in LESION_MODELS:
            raise InputError(f"device profile {self.name!r}: lesion_model {self.lesion_model!r} is not one of "
                             f"{', '.join(LESION_MODELS)}")

    @property
    def active_length_mm(self) -> float:
        """Length of the heating tip: both electrodes plus the gap between them (mm)."""
        return 2 * self.electrode_length_mm + self.bipolar_spacing_mm

    def replace(self, **overrides) -> "DeviceProfile":
        """A copy with some fields changed (validated); unknown field names raise InputError."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InputError(f"unknown device profile field(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        """Plain dict of all fields (JSON/YAML-ready)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DeviceProfile":
        """Build a profile from a dict; missing fields take the defaults, unknown fields raise InputError."""
        if not isinstance(data, dict):
            raise InputError(f"a device profile must be a mapping of field names to values, got {type(data).__name__}")
        return cls().replace(**data)
