"""Pennes bioheat simulation of an RF probe and the lethal-dose lesion.

    ρc ∂T/∂t = ∇·(k ∇T) − ω_b c_b (T − T_a) + Q

Two heating models (:attr:`ThermalSettings.heating`, :data:`bvn_plan.device.HEATING_MODELS`):

* ``"temperature-clamped"`` (default): both bipolar electrodes (see DeviceProfile) are held at the
  set temperature for the whole duration, Q = 0 (an instant ramp [A]; no RF current).
* ``"rf"`` (electro-thermal, quasi-static): Joule heat of the bipolar current with the power
  controlled so that the hottest tissue next to the electrodes tracks the set temperature
  (bvn_plan.thermal.rf, assumptions :class:`~bvn_plan.thermal.rf.RfParameters`).

In both, the cooling phase after switch-off is not modelled [A]. The damage (CEM43 or Arrhenius Ω,
bvn_plan.thermal.tissue.DamageModel) accumulates during heating; the lesion is where it reaches the lethal
dose. Numerical method: bvn_plan.thermal.finite_volumes. Two geometries:

* :func:`simulate_axisymmetric` — homogeneous cancellous bone, 2D (r, z) around the probe axis,
  sparse LU factorised once, for the potential too (:class:`AxisymmetricGrid`: 0.2 mm, 5 s steps);
* :func:`simulate_voxel` — the real vertebra on a 3D voxel grid around the probe(s): cancellous
  inside, a cortical shell ``cortical_thickness_mm`` under the surface, soft tissue outside;
  conjugate gradients with Jacobi preconditioning per step and for the potential
  (:class:`VoxelGrid`: 0.5 mm, 10 s steps).

All positions are millimetres in model coordinates; the probe is ``tip`` plus unit ``direction``
pointing from the shaft toward the tip.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.interpolate import RegularGridInterpolator

from ..device import DeviceProfile, check_heating_model
from ..errors import InputError
from ..geometry.vectors import as_points, perpendicular_basis, unit_vector
from ..lesion import EllipsoidLesion, FieldLesion, Lesion, UnionLesion
from .finite_volumes import (PER_M3_TO_PER_MM3, PER_M_TO_PER_MM, AxisymmetricGrid, CellGraph, LinearHeatProblem,
                             ProbeCells, TimeMarch, VoxelGrid, assemble, axisymmetric_graph, march, solve_axisymmetric)
from .rf import RfParameters, simulate_rf
from .tissue import DamageModel, PropertySet, Tissue, damage_model, property_set

#: Floor of log10(dose / lethal dose) used where the dose is zero (far field, outside the grid).
LEVEL_FLOOR = -10.0
#: Labels of the voxel model's tissues.
TISSUE_LABELS = {"soft_tissue": 0, "cancellous": 1, "cortical": 2}


@dataclass(frozen=True)
class ThermalSettings:
    """What a simulation assumes: the tissue ``properties`` (a name of
    :data:`~bvn_plan.thermal.tissue.PROPERTY_SETS` or a PropertySet), the ``damage`` model
    (``"cem43"``, ``"arrhenius"`` or a DamageModel), the ``heating`` model and the ``rf`` model's
    assumptions. Names are checked and resolved on creation."""

    properties: PropertySet | str = "normal"
    damage: DamageModel | str = "cem43"
    heating: str = "temperature-clamped"
    rf: RfParameters = RfParameters()

    def __post_init__(self):
        object.__setattr__(self, "properties", property_set(self.properties))
        object.__setattr__(self, "damage", damage_model(self.damage))
        check_heating_model(self.heating)

    def time_march(self, device: DeviceProfile, time_step_s: float, solver: str) -> TimeMarch:
        """The device's heating (duration) marched in ``time_step_s`` steps by ``solver``."""
        return TimeMarch(device.duration_s, time_step_s, self.properties.arterial_temperature_c, self.damage, solver)


def electrode_distances(r: np.ndarray, z: np.ndarray, device: DeviceProfile) -> tuple[np.ndarray, np.ndarray]:
    """Signed distances (mm, negative inside) to the distal (active) and the proximal (return)
    bipolar electrode, given the radial distance ``r`` from the probe axis and the axial position
    ``z`` (0 at the tip, + distal).

    Each electrode is a solid cylinder of diameter ``electrode_diameter_mm`` and length
    ``electrode_length_mm``; the distal one ends at the tip, the proximal one starts
    ``bipolar_spacing_mm`` behind it.
    """
    length, gap, radius = device.electrode_length_mm, device.bipolar_spacing_mm, device.electrode_diameter_mm / 2
    distances = []
    for z0, z1 in ((-length, 0.0), (-(2 * length + gap), -(length + gap))):
        dr, dz = r - radius, np.maximum(z0 - z, z - z1)
        distances.append(np.hypot(np.maximum(dr, 0), np.maximum(dz, 0)) + np.minimum(np.maximum(dr, dz), 0))
    return distances[0], distances[1]


def electrode_distance(r: np.ndarray, z: np.ndarray, device: DeviceProfile) -> np.ndarray:
    """Signed distance (mm, negative inside) to either bipolar electrode (see :func:`electrode_distances`)."""
    return np.minimum(*electrode_distances(r, z, device))



def tissue_fields(labels: np.ndarray, tissues: dict[int, Tissue], blood_specific_heat: float) -> dict[str, np.ndarray]:
    """Per-cell tissue fields in SI (as :class:`~bvn_plan.thermal.finite_volumes.ProbeCells` holds
    them) for cells labelled with the keys of ``tissues``."""
    fields = {name: np.zeros(len(labels)) for name in ("k", "rho_c", "perfusion", "sigma")}
    for label, t in tissues.items():
        sel = labels == label
        fields["k"][sel] = t.conductivity
        fields["rho_c"][sel] = t.heat_capacity
        fields["perfusion"][sel] = t.perfusion * blood_specific_heat
        fields["sigma"][sel] = t.electrical_conductivity
    return fields


# ----------------------------------------------------------------------------------- results

class ThermalResult(ABC):
    """A finished simulation: the lesion, the peak temperature and dose anywhere, zone reports.

    ``temperature_at`` and ``dose_at`` take (N, 3) model-coordinate points (mm) and return °C and
    dose (``damage.unit``); outside the simulated domain they return T_a and 0.
    """

    lesion: FieldLesion
    damage: DamageModel
    properties: PropertySet
    #: ``"rf"`` heating only: the probe power per time step (W, all probes together).
    power_w: np.ndarray | None = None

    @abstractmethod
    def temperature_at(self, points) -> np.ndarray:
        """Peak (end-of-heating) temperature, °C, at (N, 3) points (mm, model coordinates)."""

    @abstractmethod
    def dose_at(self, points) -> np.ndarray:
        """Thermal dose (``damage.unit``) at (N, 3) points (mm, model coordinates)."""

    def level(self, points) -> np.ndarray:
        """log10(dose / lethal dose): >= 0 inside the lesion."""
        dose = self.dose_at(points)
        with np.errstate(divide="ignore"):
            return np.maximum(np.log10(dose / self.damage.lethal_dose), LEVEL_FLOOR)

    def zone_report(self, zones: dict[str, np.ndarray | trimesh.Trimesh], samples: int = 4000) -> dict[str, dict]:
        """Peak temperature (°C), peak dose and minimum margin to the lesion (mm; negative when the
        lesion enters the zone) for each named safety zone: an (N, 3) point set or a closed mesh
        (mm, model coordinates).

        A mesh zone is sampled on its surface: the zone holds no heat source, so by the maximum
        principle its hottest point lies on its boundary.
        """
        report = {}
        for name, zone in zones.items():
            if isinstance(zone, trimesh.Trimesh):
                points = np.vstack([zone.vertices, trimesh.sample.sample_surface(zone, samples, seed=0)[0]])
            else:
                points = as_points(zone, f"zone {name!r}")
            report[name] = {
                "max_temperature_c": float(self.temperature_at(points).max()),
                "max_dose": float(self.dose_at(points).max()),
                "dose_unit": self.damage.unit,
                "min_margin_mm": float(self.lesion.signed_distance(points).min()),
            }
        return report

    def to_pyvista(self, spacing_mm: float = 0.5, half_width_mm: float = 15.0):
        """The fields as a ``pyvista.ImageData`` (model coordinates, mm) with point arrays
        ``temperature_c`` and ``dose`` (slice with ``.slice(normal=..., origin=...)``)."""
        import pyvista as pv

        centre = self.lesion.mesh.bounds.mean(axis=0)
        n = int(np.ceil(2 * half_width_mm / spacing_mm)) + 1
        origin = centre - half_width_mm
        image = pv.ImageData(dimensions=(n, n, n), spacing=(spacing_mm,) * 3, origin=origin)
        points = np.asarray(image.points)
        image.point_data["temperature_c"] = self.temperature_at(points)
        image.point_data["dose"] = self.dose_at(points)
        return image


class AxisymmetricResult(ThermalResult):
    """Fields on the (r, z) grid around one probe (``temperature``, ``dose``: (nr, nz))."""

    def __init__(self, grid: AxisymmetricGrid, temperature: np.ndarray, dose: np.ndarray, tip, direction,
                 damage: DamageModel, properties: PropertySet):
        self.grid, self.temperature, self.dose = grid, temperature, dose
        self.tip, self.direction = as_points(tip)[0], unit_vector(direction, "probe direction")
        self.damage, self.properties = damage, properties
        r = np.concatenate([[-grid.r[0]], grid.r])        # mirror the first column across the axis
        self._interp = {
            name: RegularGridInterpolator((r, grid.z), np.vstack([field[:1], field]), bounds_error=False, fill_value=fill)
            for name, field, fill in (("temperature", temperature, properties.arterial_temperature_c), ("dose", dose, 0.0))
        }
        self.lesion = self._mesh_lesion()

    def _rz(self, points) -> np.ndarray:
        rel = as_points(points) - self.tip
        z = rel @ self.direction
        return np.column_stack([np.linalg.norm(rel - z[:, None] * self.direction, axis=1), z])

    def temperature_at(self, points) -> np.ndarray:
        return self._interp["temperature"](self._rz(points))

    def dose_at(self, points) -> np.ndarray:
        return self._interp["dose"](self._rz(points))

    def _mesh_lesion(self) -> FieldLesion:
        inside = self.dose >= self.damage.lethal_dose
        if not inside.any():
            raise InputError("no tissue reached the lethal dose: no lesion formed (raise set temperature or duration)")
        h = self.grid.spacing_mm
        r_max = self.grid.r[inside.any(axis=1)].max() + 2 * h
        z_in = self.grid.z[inside.any(axis=0)]
        z_lo, z_hi = z_in.min() - 2 * h, z_in.max() + 2 * h
        e1, e2 = perpendicular_basis(self.direction)
        axes = np.vstack([e1, e2, self.direction])
        n_r = int(np.ceil(2 * r_max / h)) + 1
        shape = (n_r, n_r, int(np.ceil((z_hi - z_lo) / h)) + 1)
        origin = self.tip + axes.T @ np.array([-r_max, -r_max, z_lo])
        return FieldLesion.from_grid(self.level, origin, axes, h, shape, self.direction)


def simulate_axisymmetric(tip, direction, device: DeviceProfile | None = None, settings: ThermalSettings | None = None,
                          grid: AxisymmetricGrid | None = None) -> AxisymmetricResult:
    """Heat one probe in homogeneous cancellous bone (axisymmetric model) with the device's set
    temperature and duration; the probe is ``tip`` (mm, model coordinates) and unit ``direction``
    (shaft -> tip). ``settings.heating``: ``"temperature-clamped"`` (electrodes held at the set
    temperature) or ``"rf"`` (Joule heating of the bipolar current, power controlled so that the
    hottest tissue at the electrodes tracks the set temperature; ``settings.rf`` its assumptions).
    With ``"rf"`` the result's ``power_w`` holds the probe power per time step (W)."""
    device = device or DeviceProfile()
    settings = settings or ThermalSettings()
    props, damage = settings.properties, settings.damage
    grid = grid or AxisymmetricGrid()
    if settings.heating == "temperature-clamped":
        source = electrode_distance(grid.r[:, None], grid.z[None, :], device)
        temperature, dose = solve_axisymmetric(grid, props.cancellous, source, device.set_temperature_c, device.duration_s,
                                               damage, props.arterial_temperature_c, props.blood_specific_heat)
        return AxisymmetricResult(grid, temperature, dose, tip, direction, damage, props)
    r, z = np.meshgrid(grid.r, grid.z, indexing="ij")
    distal, proximal = (d.ravel() for d in electrode_distances(r, z, device))
    insulator = ((r <= device.electrode_diameter_mm / 2) & (z <= 0)).ravel()
    labels = np.full(r.size, TISSUE_LABELS["cancellous"])
    fields = tissue_fields(labels, {TISSUE_LABELS["cancellous"]: props.cancellous}, props.blood_specific_heat)
    cells = ProbeCells(axisymmetric_graph(grid), fields, distal, proximal, insulator, grid.spacing_mm)
    temperature, dose, power = simulate_rf(cells, settings.time_march(device, grid.time_step_s, "lu"),
                                           device.set_temperature_c, settings.rf, 2 * np.pi)
    result = AxisymmetricResult(grid, temperature.reshape(r.shape), dose.reshape(r.shape), tip, direction, damage, props)
    result.power_w = power
    return result


# --------------------------------------------------------------------------------- voxel model

def tissue_labels(bone: trimesh.Trimesh, points: np.ndarray, cortical_thickness_mm: float) -> np.ndarray:
    """Label points (N, 3 mm, model coordinates): 1 cancellous, 2 cortical (inside the bone within
    ``cortical_thickness_mm`` of its surface), 0 soft tissue (outside). ``bone`` must be watertight."""
    import pyvista as pv  # here, not at the top: keeps pyvista out of importing the thermal models

    if not bone.is_watertight:
        raise InputError("the vertebra surface is not watertight: inside/outside (bone vs soft tissue) is undefined; "
                         "repair the mesh (bvn_plan.mesh_io.clean_mesh fills small holes)")
    cloud = pv.PolyData(np.asarray(points, dtype=float))
    signed = np.asarray(cloud.compute_implicit_distance(pv.wrap(bone))["implicit_distance"])  # negative inside
    labels = np.zeros(len(points), dtype=np.int8)
    labels[signed < 0] = TISSUE_LABELS["cancellous"]
    labels[(signed < 0) & (signed > -cortical_thickness_mm)] = TISSUE_LABELS["cortical"]
    return labels


class VoxelResult(ThermalResult):
    """Fields on an axis-aligned voxel grid (model coordinates): ``temperature``, ``dose``,
    ``labels`` (TISSUE_LABELS), arrays (nx, ny, nz); node (i, j, k) at ``origin + spacing*(i, j, k)``."""

    def __init__(self, origin, spacing_mm, temperature, dose, labels, axis, damage, properties):
        self.origin, self.spacing_mm = np.asarray(origin, dtype=float), float(spacing_mm)
        self.temperature, self.dose, self.labels = temperature, dose, labels
        self.damage, self.properties = damage, properties
        coords = tuple(self.origin[i] + spacing_mm * np.arange(temperature.shape[i]) for i in range(3))
        self._interp = {
            "temperature": RegularGridInterpolator(coords, temperature, bounds_error=False,
                                                   fill_value=properties.arterial_temperature_c),
            "dose": RegularGridInterpolator(coords, dose, bounds_error=False, fill_value=0.0),
        }
        self.lesion = FieldLesion.from_grid(self.level, self.origin, np.eye(3), self.spacing_mm, temperature.shape, axis)

    def temperature_at(self, points) -> np.ndarray:
        return self._interp["temperature"](as_points(points))

    def dose_at(self, points) -> np.ndarray:
        return self._interp["dose"](as_points(points))



def simulate_voxel(bone: trimesh.Trimesh, probes: list[tuple], device: DeviceProfile | None = None,
                   settings: ThermalSettings | None = None, grid: VoxelGrid | None = None,
                   cortical_shell: bool = True, progress: Callable[[int, int], None] | None = None) -> VoxelResult:
    """Heat one or more probes (list of ``(tip, direction)``, mm, model coordinates) inside the
    real vertebra ``bone`` (watertight surface, mm) on a 3D voxel grid.

    The grid (:class:`VoxelGrid`) is a cube ``half_width_mm`` beyond the probes' active tips on
    every side, with T_a (and, for ``"rf"``, V = 0) on its faces. ``cortical_shell=False`` fills the
    shell with cancellous bone (for comparison). Two probes heat together (bi-pedicular), so their
    fields interact. ``settings`` as in :func:`simulate_axisymmetric` (with ``"rf"`` each probe's
    distal electrode is active, its proximal one the return; one controller for all probes).
    ``progress`` (if given) is called with (time steps done, steps in all) as the heating is marched.
    """
    device = device or DeviceProfile()
    settings = settings or ThermalSettings()
    props, damage = settings.properties, settings.damage
    grid = grid or VoxelGrid()
    cells = voxel_cells(bone, probes, device, props, grid.spacing_mm, grid.half_width_mm, cortical_shell)
    if settings.heating == "rf":
        temperature, dose, power = simulate_rf(cells, dataclasses.replace(settings.time_march(device, grid.time_step_s, "cg"), progress=progress),
                                               device.set_temperature_c, settings.rf)
        result = VoxelResult(cells.origin, grid.spacing_mm, temperature.reshape(cells.shape), dose.reshape(cells.shape),
                             cells.labels.reshape(cells.shape), cells.axis, damage, props)
        result.power_w = power
        return result
    setup = voxel_problem(cells, device, props)
    fixed = setup.fixed.ravel()
    temperature = np.full(fixed.size, device.set_temperature_c)
    dose = np.full(fixed.size, float(damage.rate(device.set_temperature_c) * device.duration_s))
    temperature[~fixed], dose[~fixed] = march(setup.problem, dataclasses.replace(settings.time_march(device, grid.time_step_s, "cg"), progress=progress))
    return VoxelResult(setup.origin, grid.spacing_mm, temperature.reshape(setup.fixed.shape),
                       dose.reshape(setup.fixed.shape), setup.labels, setup.axis, damage, props)


@dataclass
class VoxelCells(ProbeCells):
    """The labelled 3D grid around the probes: node (i, j, k) at ``origin + spacing*(i, j, k)`` (mm,
    model coordinates), ``shape`` (nx, ny, nz), flattened per-cell ``labels`` (TISSUE_LABELS) and
    ``axis`` (the mean probe direction); the electrode distances are to the nearest probe's."""

    origin: np.ndarray
    shape: tuple
    labels: np.ndarray
    axis: np.ndarray


def voxel_cells(bone: trimesh.Trimesh, probes: list[tuple], device: DeviceProfile, props: PropertySet,
                spacing_mm: float, half_width_mm: float, cortical_shell: bool = True) -> VoxelCells:
    """Label the voxels (cancellous, cortical shell, soft tissue) around the probes (arguments as
    :func:`simulate_voxel`) and build their cell graph."""
    if not probes:
        raise InputError("give at least one probe as (tip, direction)")
    probes = [(as_points(t, "probe tip")[0], unit_vector(d, "probe direction")) for t, d in probes]
    ends = np.vstack([[t, t - device.active_length_mm * d] for t, d in probes])
    lo, hi = ends.min(axis=0) - half_width_mm, ends.max(axis=0) + half_width_mm
    shape = tuple(int(np.ceil((hi[i] - lo[i]) / spacing_mm)) + 1 for i in range(3))
    if np.prod(shape) > 3e6:
        raise InputError(f"voxel grid of {shape} cells is too large: increase spacing_mm or reduce half_width_mm")
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).reshape(-1, 3)
    points = lo + spacing_mm * idx
    labels = tissue_labels(bone, points, props.cortical_thickness_mm if cortical_shell else 0.0)
    tissues = {TISSUE_LABELS["soft_tissue"]: props.soft_tissue, TISSUE_LABELS["cancellous"]: props.cancellous,
               TISSUE_LABELS["cortical"]: props.cortical}
    fields = tissue_fields(labels, tissues, props.blood_specific_heat)
    distal, proximal = np.full(len(points), np.inf), np.full(len(points), np.inf)
    insulator = np.zeros(len(points), dtype=bool)
    for tip, d in probes:
        rel = points - tip
        z = rel @ d
        r = np.linalg.norm(rel - z[:, None] * d, axis=1)
        to_distal, to_proximal = electrode_distances(r, z, device)
        distal, proximal = np.minimum(distal, to_distal), np.minimum(proximal, to_proximal)
        insulator |= (r <= device.electrode_diameter_mm / 2) & (z <= 0)
    if not (np.minimum(distal, proximal) <= 0).any():
        raise InputError(f"the electrodes ({device.electrode_diameter_mm} mm) are thinner than the voxel grid can "
                         f"resolve (spacing {spacing_mm} mm): use spacing_mm <= {device.electrode_diameter_mm / 2:.2f}")
    index = np.arange(len(points)).reshape(shape)
    pairs = [np.stack([np.take(index, np.arange(shape[i] - 1), axis=i).ravel(),
                       np.take(index, np.arange(1, shape[i]), axis=i).ravel()], axis=1) for i in range(3)]
    boundary = np.zeros(len(points))
    for axis_i in range(3):
        on_face = (idx[:, axis_i] == 0) | (idx[:, axis_i] == shape[axis_i] - 1)
        boundary[on_face] += 2 * spacing_mm                                   # area h², distance h/2
    pairs = np.vstack(pairs)
    graph = CellGraph(np.full(len(points), spacing_mm ** 3), pairs, np.full(len(pairs), spacing_mm), boundary)
    mean_axis = np.sum([d for _, d in probes], axis=0)
    axis = mean_axis if np.linalg.norm(mean_axis) > 1e-6 else probes[0][1]
    return VoxelCells(graph, fields, distal, proximal, insulator, spacing_mm, origin=lo, shape=shape, labels=labels,
                      axis=axis)


@dataclass
class VoxelSetup:
    """The discretised 3D problem: grid node (i, j, k) at ``origin + spacing*(i, j, k)`` (mm, model
    coordinates); ``fixed`` and ``labels`` are (nx, ny, nz); ``axis`` the mean probe direction."""

    problem: LinearHeatProblem
    origin: np.ndarray
    fixed: np.ndarray
    labels: np.ndarray
    axis: np.ndarray


def voxel_problem(cells: VoxelCells, device: DeviceProfile, props: PropertySet) -> VoxelSetup:
    """Assemble the temperature-clamped Pennes system of :func:`simulate_voxel` on ``cells``
    (:func:`voxel_cells`), the electrodes held at the device's set temperature."""
    graph, fields = cells.graph, cells.fields
    source_distance = np.minimum(cells.distal, cells.proximal)
    face, boundary = graph.conductances(fields["k"] * PER_M_TO_PER_MM)
    problem = assemble(fields["rho_c"] * PER_M3_TO_PER_MM3 * graph.volume,
                       fields["perfusion"] * PER_M3_TO_PER_MM3 * graph.volume, boundary, graph.pairs, face,
                       source_distance, device.set_temperature_c - props.arterial_temperature_c)
    return VoxelSetup(problem, cells.origin, (source_distance <= 0).reshape(cells.shape),
                      cells.labels.reshape(cells.shape), cells.axis)


def lesion_for_probes(probes: list[tuple], device: DeviceProfile | None = None, bone: trimesh.Trimesh | None = None,
                      properties: str | PropertySet = "normal", damage: str | DamageModel = "cem43",
                      heating: str | None = None) -> Lesion:
    """The lesion of one or two probes (list of ``(tip, direction)``, mm, model coordinates) by the
    device's ``lesion_model``: ``"ellipsoid"`` -> the profile's spheroid (a union for two probes);
    ``"bioheat"`` -> the 3D voxel simulation in ``bone`` when given (probes heat together), else
    the axisymmetric simulation per probe (a union, neglecting their thermal interaction), with
    the ``heating`` model of :func:`simulate_axisymmetric` (default: the device's ``heating_model``)."""
    device = device or DeviceProfile()
    heating = heating or device.heating_model
    if not probes:
        raise InputError("give at least one probe as (tip, direction)")
    if device.lesion_model == "ellipsoid":
        parts = [EllipsoidLesion.from_probe(t, d, device) for t, d in probes]
    else:
        settings = ThermalSettings(properties, damage, heating)
        if bone is not None:
            return simulate_voxel(bone, probes, device, settings).lesion
        parts = [simulate_axisymmetric(t, d, device, settings).lesion for t, d in probes]
    return parts[0] if len(parts) == 1 else UnionLesion(parts)
