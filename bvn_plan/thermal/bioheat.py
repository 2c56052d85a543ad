"""Pennes bioheat simulation of an RF probe and the lethal-dose lesion.

    ρc ∂T/∂t = ∇·(k ∇T) − ω_b c_b (T − T_a) + Q

Two heating models (``heating=``):

* ``"temperature-clamped"`` (default): both bipolar electrodes (see DeviceProfile) are held at the
  set temperature for the whole duration, Q = 0 (an instant ramp [A]; no RF current).
* ``"rf"`` (electro-thermal, quasi-static): ∇·(σ∇V) = 0 with the distal (active) electrode at
  +V0/2, the proximal (return) one at −V0/2, the probe insulation non-conducting and V = 0 on the
  outer boundary; Q = σ|∇V|² (Joule heat). σ per tissue (bvn_plan.thermal.tissue, constant in temperature
  [A]). A controller scales the power each time step so that the hottest tissue next to the
  electrodes ends the step at the set temperature (:func:`march_rf`); the electrodes are steel in
  the heat problem. Assumptions: :class:`RfParameters`.

In both, the cooling phase after switch-off is not modelled [A]. The damage (CEM43 or Arrhenius Ω,
bvn_plan.thermal.tissue.DamageModel) accumulates during heating; the lesion is where it reaches the lethal
dose.

Numerical method: cell-centred finite volumes, Dirichlet T_a on the outer boundary, source cells
held at the set temperature (clamped model) or electrode cells at their potential (rf model, with
a cut-cell boundary); time stepping by Crank-Nicolson after four backward-Euler quarter
steps (Rannacher start, which damps the switch-on jump), unconditionally stable, so the time step
is set by accuracy only. Two geometries:

* :func:`simulate_axisymmetric` — homogeneous cancellous bone, 2D (r, z) around the probe axis,
  sparse LU factorised once, for the potential too (default 0.2 mm, 5 s steps);
* :func:`simulate_voxel` — the real vertebra on a 3D voxel grid around the probe(s): cancellous
  inside, a cortical shell ``cortical_thickness_mm`` under the surface, soft tissue outside;
  conjugate gradients with Jacobi preconditioning per step and for the potential (default 0.5 mm,
  10 s steps).

All positions are millimetres in model coordinates; the probe is ``tip`` plus unit ``direction``
pointing from the shaft toward the tip. Internally: mm, s, W, J.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import trimesh
from scipy.interpolate import RegularGridInterpolator
from scipy.sparse.linalg import splu

from ..device import DeviceProfile
from ..errors import InputError
from ..lesion import EllipsoidLesion, FieldLesion, Lesion, UnionLesion
from ..geometry.vectors import as_points, perpendicular_basis, unit_vector
from .tissue import DamageModel, PropertySet, Tissue, damage_model, property_set

#: SI -> mm units: W/m/K -> W/mm/K and J/m³/K (or W/m³/K) -> per mm³.
PER_M_TO_PER_MM = 1e-3
PER_M3_TO_PER_MM3 = 1e-9
#: Floor of log10(dose / lethal dose) used where the dose is zero (far field, outside the grid).
LEVEL_FLOOR = -10.0


# ----------------------------------------------------------------------------------- the solver

@dataclass
class LinearHeatProblem:
    """Discrete Pennes problem for θ = T − T_a on the free cells: C θ' = −A θ + g (W, J, K)."""

    capacity: np.ndarray          # C, J/K per free cell
    stiffness: sp.csr_matrix      # A, W/K (conduction + perfusion + boundary), symmetric positive definite
    forcing: np.ndarray           # g, W: heat from the cells held at the source temperature


def cut_cell_conductance(pairs: np.ndarray, conductance: np.ndarray, source_distance: np.ndarray) -> np.ndarray:
    """Face conductances with a cut-cell Dirichlet condition (Shortley-Weller style): between a free
    and a source cell (``source_distance`` <= 0, mm) the source surface is placed where the linearly
    interpolated distance crosses zero and the conductance scaled accordingly, so a curved source
    is not staircased."""
    fixed = source_distance <= 0
    a, b = pairs[:, 0], pairs[:, 1]
    crossing = fixed[a] != fixed[b]
    da, db = source_distance[a[crossing]], source_distance[b[crossing]]
    d_free = np.where(fixed[a[crossing]], db, da)
    fraction = d_free / np.abs(da - db)                   # free-cell-to-surface share of the centre spacing
    conductance = conductance.copy()
    conductance[crossing] /= np.clip(fraction, 0.1, 1.0)
    return conductance


def assemble(capacity: np.ndarray, perfusion: np.ndarray, boundary: np.ndarray, pairs: np.ndarray,
             conductance: np.ndarray, source_distance: np.ndarray, source_rise: float | np.ndarray) -> LinearHeatProblem:
    """Finite-volume system on any cell graph.

    Per cell (flattened): ``capacity`` ρcV (J/K), ``perfusion`` ω c_b V (W/K), ``boundary``
    conductance to the outer T_a boundary (W/K), ``source_distance`` signed distance (mm) of the
    cell centre to the source surface (<= 0: cell held at T_a + ``source_rise``, one value or one
    per cell); ``pairs`` (M, 2) neighbouring cells with face ``conductance`` (W/K), cut at the
    source surface by :func:`cut_cell_conductance`. The same system with zero capacity and
    perfusion is the potential problem of the ``"rf"`` model (S instead of W/K, volts instead of K).
    """
    n = capacity.size
    fixed = source_distance <= 0
    a, b = pairs[:, 0], pairs[:, 1]
    conductance = cut_cell_conductance(pairs, conductance, source_distance)
    laplacian = sp.coo_matrix((np.concatenate([-conductance, -conductance]),
                               (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n)).tocsr()
    degree = np.bincount(a, conductance, n) + np.bincount(b, conductance, n)
    full = (laplacian + sp.diags(degree + perfusion + boundary)).tocsr()
    free = ~fixed
    a_ff = full[free][:, free].tocsr()
    forcing = -(full[free][:, fixed] @ np.broadcast_to(np.asarray(source_rise, dtype=float), (n,))[fixed])
    return LinearHeatProblem(capacity[free], a_ff, forcing)


def time_steps(duration_s: float, time_step_s: float) -> tuple[float, list[tuple[str, float]]]:
    """The step dt (s) dividing ``duration_s`` evenly and the steps ``(kind, s)``: Rannacher start
    (four backward-Euler quarter steps) then Crank-Nicolson."""
    if not (duration_s > 0 and time_step_s > 0):
        raise InputError(f"duration ({duration_s} s) and time step ({time_step_s} s) must be positive")
    n_steps = max(1, int(np.ceil(duration_s / time_step_s)))
    dt = duration_s / n_steps
    return dt, [("be", dt / 4)] * 4 + [("cn", dt)] * (n_steps - 1)


def step_solver(problem: LinearHeatProblem, dt: float, solver: str):
    """``solve(kind, rhs, x0)`` for the backward-Euler (``"be"``, step dt/4) and Crank-Nicolson
    (``"cn"``, step dt) matrices; ``solver``: ``"lu"`` (factorise once) or ``"cg"`` (Jacobi CG)."""
    c, a = problem.capacity, problem.stiffness
    systems = {"be": (sp.diags(c / (dt / 4)) + a).tocsc(), "cn": (sp.diags(c / dt) + 0.5 * a).tocsc()}
    if solver == "lu":
        factors = {key: splu(m, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
                   for key, m in systems.items()}
        return lambda key, rhs, x0: factors[key].solve(rhs)
    systems = {key: m.tocsr() for key, m in systems.items()}
    return lambda key, rhs, x0: jacobi_cg(systems[key], rhs, x0)


def explicit_part(problem: LinearHeatProblem, key: str, h: float, theta: np.ndarray) -> np.ndarray:
    """Right-hand side of one implicit step from θ (without sources)."""
    if key == "be":
        return problem.capacity / h * theta
    return problem.capacity / h * theta - 0.5 * (problem.stiffness @ theta)


def march(problem: LinearHeatProblem, duration_s: float, time_step_s: float, arterial_c: float,
          damage: DamageModel, solver: str) -> tuple[np.ndarray, np.ndarray]:
    """Integrate from θ = 0 for ``duration_s``; return final temperature (°C) and dose per free cell.

    Rannacher start (four backward-Euler quarter steps) then Crank-Nicolson. ``solver``: ``"lu"``
    (factorise once) or ``"cg"`` (Jacobi-preconditioned conjugate gradients, warm-started).
    """
    dt, steps = time_steps(duration_s, time_step_s)
    solve = step_solver(problem, dt, solver)
    theta = np.zeros_like(problem.capacity)
    dose = np.zeros_like(theta)
    rate = damage.rate(arterial_c + theta)
    for key, h in steps:
        theta = solve(key, explicit_part(problem, key, h, theta) + problem.forcing, theta)
        new_rate = damage.rate(arterial_c + theta)
        dose += 0.5 * (rate + new_rate) * h
        rate = new_rate
    return arterial_c + theta, dose


def jacobi_cg(matrix: sp.csr_matrix, rhs: np.ndarray, x0: np.ndarray, rtol: float = 1e-6, maxiter: int = 2000) -> np.ndarray:
    """Conjugate gradients with a Jacobi preconditioner for a symmetric positive definite system.

    Written out (rather than scipy's ``cg``) so that inner products stay single-threaded
    ``einsum`` calls: multithreaded BLAS dot products on a shared 2-core machine made scipy's
    ``cg`` about 5x slower.
    """
    inverse_diagonal = 1.0 / matrix.diagonal()
    x = x0.copy()
    r = rhs - matrix @ x
    z = inverse_diagonal * r
    p = z.copy()
    rz = np.einsum("i,i", r, z)
    target = rtol * np.sqrt(np.einsum("i,i", rhs, rhs))
    for _ in range(maxiter):
        if np.sqrt(np.einsum("i,i", r, r)) <= target:
            return x
        q = matrix @ p
        alpha = rz / np.einsum("i,i", p, q)
        x += alpha * p
        r -= alpha * q
        z = inverse_diagonal * r
        rz, rz_old = np.einsum("i,i", r, z), rz
        p = z + (rz / rz_old) * p
    raise RuntimeError(f"conjugate gradients did not reach relative residual {rtol} in {maxiter} iterations")


# -------------------------------------------------------------------------- axisymmetric model

@dataclass(frozen=True)
class AxisymmetricGrid:
    """Cell-centred (r, z) grid around the probe axis (mm): r in [0, radius_mm], z in
    [z_min_mm, z_max_mm] with z = 0 at the tip and +z distal (along the probe direction)."""

    spacing_mm: float = 0.2
    radius_mm: float = 20.0
    z_min_mm: float = -30.0
    z_max_mm: float = 20.0

    def __post_init__(self):
        if not (self.spacing_mm > 0 and self.radius_mm > 4 * self.spacing_mm and self.z_max_mm - self.z_min_mm > 8 * self.spacing_mm):
            raise InputError(f"axisymmetric grid too small or spacing not positive: {self}")

    @property
    def r(self) -> np.ndarray:
        return (np.arange(int(round(self.radius_mm / self.spacing_mm))) + 0.5) * self.spacing_mm

    @property
    def z(self) -> np.ndarray:
        n = int(round((self.z_max_mm - self.z_min_mm) / self.spacing_mm))
        return self.z_min_mm + (np.arange(n) + 0.5) * self.spacing_mm


def solve_axisymmetric(grid: AxisymmetricGrid, tissue: Tissue, source_distance: np.ndarray, source_temperature_c: float,
                       duration_s: float | None, time_step_s: float = 5.0, damage: str | DamageModel = "cem43",
                       arterial_c: float = 37.0, blood_specific_heat: float = 3600.0) -> tuple[np.ndarray, np.ndarray | None]:
    """Temperature (°C) and dose on ``grid`` (arrays (nr, nz)) for homogeneous ``tissue`` with the
    source held at ``source_temperature_c``; ``source_distance`` (nr, nz): signed distance (mm) of
    each cell centre to the source surface, negative inside.

    ``duration_s=None`` solves the steady state (dose ``None``).
    """
    damage = damage_model(damage)
    problem = axisymmetric_problem(grid, tissue, source_distance, source_temperature_c - arterial_c, blood_specific_heat)
    source = np.asarray(source_distance, dtype=float) <= 0
    temperature = np.full(source.size, float(source_temperature_c))
    free = ~source.ravel()
    if duration_s is None:
        temperature[free] = arterial_c + splu(problem.stiffness.tocsc()).solve(problem.forcing)
        return temperature.reshape(source.shape), None
    dose = np.full(source.size, float(damage.rate(source_temperature_c) * duration_s))
    temperature[free], dose[free] = march(problem, duration_s, time_step_s, arterial_c, damage, "lu")
    return temperature.reshape(source.shape), dose.reshape(source.shape)


@dataclass
class CellGraph:
    """Finite-volume geometry of a grid: per cell ``volume`` (mm³; per radian on the axisymmetric
    grid), neighbouring cell ``pairs`` (M, 2) with ``face_factor`` = face area / centre distance
    (mm), and ``boundary_factor`` per cell = outer-boundary face area / distance to it (mm)."""

    volume: np.ndarray
    pairs: np.ndarray
    face_factor: np.ndarray
    boundary_factor: np.ndarray

    def conductances(self, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face and boundary conductances for a per-cell conductivity ``value`` (per mm): harmonic
        mean across faces."""
        va, vb = value[self.pairs[:, 0]], value[self.pairs[:, 1]]
        return 2 * va * vb / (va + vb) * self.face_factor, value * self.boundary_factor


def axisymmetric_graph(grid: AxisymmetricGrid) -> CellGraph:
    """The (r, z) grid's cells (flattened (nr, nz)), per radian, outer boundary at half a cell."""
    r, z = grid.r, grid.z
    h = grid.spacing_mm
    rr = np.repeat(r[:, None], z.size, axis=1)
    index = np.arange(r.size * z.size).reshape(r.size, z.size)
    radial_pairs = np.stack([index[:-1].ravel(), index[1:].ravel()], axis=1)
    radial_f = np.repeat(np.arange(1, r.size) * h, z.size)            # r_face * h / h
    axial_pairs = np.stack([index[:, :-1].ravel(), index[:, 1:].ravel()], axis=1)
    axial_f = rr[:, :-1].ravel()                                        # r * h / h
    boundary = np.zeros_like(rr)
    boundary[-1, :] += 2 * r.size * h                 # outer cylinder
    boundary[:, 0] += 2 * r
    boundary[:, -1] += 2 * r
    return CellGraph((rr * h * h).ravel(), np.vstack([radial_pairs, axial_pairs]), np.concatenate([radial_f, axial_f]),
                     boundary.ravel())


def axisymmetric_problem(grid: AxisymmetricGrid, tissue: Tissue, source_distance: np.ndarray, source_rise: float,
                         blood_specific_heat: float = 3600.0) -> LinearHeatProblem:
    """Assemble the (r, z) finite-volume Pennes system (per radian) for :func:`solve_axisymmetric`."""
    source = np.asarray(source_distance, dtype=float) <= 0
    if source.shape != (grid.r.size, grid.z.size) or not source.any():
        raise InputError(f"the source covers no cell centre of the grid (shape {(grid.r.size, grid.z.size)}): refine the grid")
    graph = axisymmetric_graph(grid)
    face, boundary = graph.conductances(np.full(graph.volume.size, tissue.conductivity * PER_M_TO_PER_MM))
    return assemble(tissue.heat_capacity * PER_M3_TO_PER_MM3 * graph.volume,
                    tissue.perfusion * blood_specific_heat * PER_M3_TO_PER_MM3 * graph.volume,
                    boundary, graph.pairs, face, np.asarray(source_distance, dtype=float).ravel(), source_rise)


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


# ------------------------------------------------------------------ RF (electro-thermal) heating

#: Heating models: the electrodes held at the set temperature, or RF current with a controller.
HEATING_MODELS = ("temperature-clamped", "rf")


@dataclass(frozen=True)
class RfParameters:
    """Assumptions of the ``"rf"`` heating model (all [A]; no device data found).

    ``insulator_conductivity`` (S/m): the probe's polymer insulation (the gap between the electrodes
    and the shaft behind them), a near-zero stand-in that keeps the system definite;
    ``electrode_conductivity`` (W/m/K) and ``electrode_heat_capacity`` (J/m³/K): stainless steel
    (k ≈ 16, ρc ≈ 7900 x 500); ``max_power_w``: generator power limit for one probe (W; ``None``:
    unlimited, i.e. the instant ramp of the clamped model); ``sensor_distance_mm``: tissue within this
    distance of an electrode is watched by the controller (the thermocouple) — at least one grid
    spacing is used; ``sigma_temperature_coefficient`` (1/°C): tissue σ(T) = σ(1 + α (T − T_a)),
    re-solved each step from the temperature at its start; 0 by default (σ constant, the potential
    solved once); the common figure is +2 %/°C (0.02) [A, from memory of RF ablation models].
    """

    insulator_conductivity: float = 1e-5
    electrode_conductivity: float = 16.0
    electrode_heat_capacity: float = 4.0e6
    max_power_w: float | None = None
    sensor_distance_mm: float = 0.2
    sigma_temperature_coefficient: float = 0.0

    def __post_init__(self):
        if not 0 <= self.sigma_temperature_coefficient < 0.1:
            raise InputError(f"RF parameter sigma_temperature_coefficient must be 0-0.1 per C (e.g. 0.02), "
                             f"got {self.sigma_temperature_coefficient!r}")
        for name in ("insulator_conductivity", "electrode_conductivity", "electrode_heat_capacity", "sensor_distance_mm"):
            if not getattr(self, name) > 0:
                raise InputError(f"RF parameter {name} must be positive, got {getattr(self, name)!r}")
        if self.max_power_w is not None and not self.max_power_w > 0:
            raise InputError(f"RF parameter max_power_w must be positive or None, got {self.max_power_w!r}")


def heating_model(name: str) -> str:
    """Check a heating model name (:data:`HEATING_MODELS`)."""
    if name not in HEATING_MODELS:
        raise InputError(f"unknown heating model {name!r}: use one of {', '.join(HEATING_MODELS)}")
    return name


@dataclass
class PotentialSolution:
    """The quasi-static potential on a cell graph: ``potential`` (V per cell, electrode cells at
    their set potential), Joule ``power`` deposited per cell (W, per radian on the axisymmetric
    grid) and the ``current`` (A, idem) leaving the electrodes at positive potential."""

    potential: np.ndarray
    power: np.ndarray
    current: float


def solve_potential(graph: CellGraph, sigma: np.ndarray, electrode_distance_mm: np.ndarray, electrode_potential: np.ndarray,
                    solver: str, boundary_potential: np.ndarray | None = None) -> PotentialSolution:
    """Solve ∇·(σ∇V) = 0 with cells of ``electrode_distance_mm`` <= 0 held at ``electrode_potential``
    (V, per cell) and the outer boundary at ``boundary_potential`` (V per cell, default 0).

    ``sigma`` per cell in S/m. The Joule heat σ|∇V|² is the power G ΔV² of each face: shared
    half-and-half between two tissue cells, all of it to the tissue cell at an electrode face (the
    metal dissipates nothing). ``solver``: ``"lu"`` or ``"cg"``.
    """
    n = sigma.size
    fixed = electrode_distance_mm <= 0
    outer = np.zeros(n) if boundary_potential is None else np.asarray(boundary_potential, dtype=float)
    face, boundary = graph.conductances(sigma * PER_M_TO_PER_MM)
    problem = assemble(np.zeros(n), np.zeros(n), boundary, graph.pairs, face, electrode_distance_mm, electrode_potential)
    rhs = problem.forcing + (boundary * outer)[~fixed]
    potential = np.where(fixed, electrode_potential, 0.0)
    if solver == "lu":
        potential[~fixed] = splu(problem.stiffness.tocsc()).solve(rhs)
    else:
        potential[~fixed] = jacobi_cg(problem.stiffness, rhs, np.zeros(rhs.size), rtol=1e-8, maxiter=5000)
    face = cut_cell_conductance(graph.pairs, face, electrode_distance_mm)
    a, b = graph.pairs[:, 0], graph.pairs[:, 1]
    face_power = face * (potential[a] - potential[b]) ** 2
    share_a = np.where(fixed[a], 0.0, np.where(fixed[b], 1.0, 0.5))
    share_b = np.where(fixed[b], 0.0, np.where(fixed[a], 1.0, 0.5))
    power = (np.bincount(a, face_power * share_a, n) + np.bincount(b, face_power * share_b, n)
             + boundary * (potential - outer) ** 2 * ~fixed)
    leaving = fixed[a] & ~fixed[b] & (potential[a] > 0)
    entering = fixed[b] & ~fixed[a] & (potential[b] > 0)
    current = (np.sum(face[leaving] * (potential[a] - potential[b])[leaving])
               + np.sum(face[entering] * (potential[b] - potential[a])[entering]))
    return PotentialSolution(potential, power, float(current))


def march_rf(problem: LinearHeatProblem, heat_per_watt, sensor: np.ndarray, set_rise: float,
             duration_s: float, time_step_s: float, arterial_c: float, damage: DamageModel, solver: str,
             max_power: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrate C θ' = −A θ + P(t) q from θ = 0 (steps as :func:`march`); return the final
    temperature (°C), dose per cell and the power P per step (W; per radian on the axisymmetric grid).

    Controller [A]: the power is constant over each step and chosen so that the hottest ``sensor``
    cell ends the step exactly ``set_rise`` above T_a (the discrete system is linear in P, so this
    one-step "deadbeat" rule is exact), clipped to [0, ``max_power``]. ``q`` = ``heat_per_watt(θ)``,
    the heat distribution per watt at the step's start (returning the same array object while it
    does not change saves the solves).
    """
    dt, steps = time_steps(duration_s, time_step_s)
    solve = step_solver(problem, dt, solver)
    zero = np.zeros_like(problem.capacity)
    theta, dose, powers = zero.copy(), zero.copy(), []
    rate = damage.rate(arterial_c + theta)
    q, unit = None, {}
    for key, h in steps:
        new_q = heat_per_watt(theta)
        if new_q is not q:
            q, unit = new_q, {}
        if key not in unit:
            unit[key] = solve(key, q, zero)
        base = solve(key, explicit_part(problem, key, h, theta), theta)
        power = max(0.0, float(np.min((set_rise - base[sensor]) / unit[key][sensor])))
        power = power if max_power is None else min(power, max_power)
        theta = base + power * unit[key]
        new_rate = damage.rate(arterial_c + theta)
        dose += 0.5 * (rate + new_rate) * h
        rate = new_rate
        powers.append(power)
    return arterial_c + theta, dose, np.array(powers)


def simulate_rf(graph: CellGraph, tissue_fields: dict[str, np.ndarray], distal: np.ndarray, proximal: np.ndarray,
                insulator: np.ndarray, spacing_mm: float, device: DeviceProfile, props: PropertySet, damage: DamageModel,
                time_step_s: float, solver: str, rf: RfParameters,
                power_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The electro-thermal simulation on any grid: temperature (°C), dose per cell, power per step (W).

    ``tissue_fields`` per cell, SI: ``k`` (W/m/K), ``rho_c`` (J/m³/K), ``perfusion`` (W/m³/K),
    ``sigma`` (S/m, at T_a); ``distal`` / ``proximal`` signed distances (mm) to the active / return
    electrode; ``insulator`` marks the probe's insulation. The electrodes are at ±V0/2 (any V0:
    the controller scales the power); the electrodes are steel in the heat problem, no longer held
    at a temperature. ``power_scale`` converts the graph's power to the probe's (2π per radian).
    """
    electrode = (distal <= 0) | (proximal <= 0)
    if not (distal <= 0).any() or not (proximal <= 0).any():
        raise InputError(f"an electrode covers no cell centre of the grid (spacing {spacing_mm} mm): refine the grid")
    distance = np.minimum(distal, proximal)
    sigma = np.where(insulator & ~electrode, rf.insulator_conductivity, tissue_fields["sigma"])
    potential = np.where(distal <= 0, 0.5, -0.5)
    tissue = ~(insulator | electrode)
    constant = solve_potential(graph, sigma, distance, potential, solver).power
    constant = constant / constant.sum()

    def heat_per_watt(theta):
        if rf.sigma_temperature_coefficient == 0:
            return constant
        heated = np.where(tissue, sigma * (1 + rf.sigma_temperature_coefficient * theta), sigma)
        power = solve_potential(graph, heated, distance, potential, solver).power
        return power / power.sum()

    k = np.where(electrode, rf.electrode_conductivity, tissue_fields["k"]) * PER_M_TO_PER_MM
    rho_c = np.where(electrode, rf.electrode_heat_capacity, tissue_fields["rho_c"]) * PER_M3_TO_PER_MM3
    perfusion = np.where(electrode, 0.0, tissue_fields["perfusion"]) * PER_M3_TO_PER_MM3
    face, boundary = graph.conductances(k)
    problem = assemble(rho_c * graph.volume, perfusion * graph.volume, boundary, graph.pairs, face,
                       np.full(distance.size, np.inf), 0.0)
    sensor = ~electrode & (distance <= max(rf.sensor_distance_mm, spacing_mm))
    max_power = None if rf.max_power_w is None else rf.max_power_w / power_scale
    temperature, dose, powers = march_rf(problem, heat_per_watt, sensor, device.set_temperature_c - props.arterial_temperature_c,
                                         device.duration_s, time_step_s, props.arterial_temperature_c, damage, solver,
                                         max_power)
    return temperature, dose, powers * power_scale



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


def simulate_axisymmetric(tip, direction, device: DeviceProfile | None = None, properties: str | PropertySet = "normal",
                          damage: str | DamageModel = "cem43", grid: AxisymmetricGrid | None = None,
                          time_step_s: float = 5.0, heating: str = "temperature-clamped",
                          rf: RfParameters | None = None) -> AxisymmetricResult:
    """Heat one probe in homogeneous cancellous bone (axisymmetric model) with the device's set
    temperature and duration; the probe is ``tip`` (mm, model coordinates) and unit ``direction``
    (shaft -> tip). ``heating``: ``"temperature-clamped"`` (electrodes held at the set
    temperature) or ``"rf"`` (Joule heating of the bipolar current, power controlled so that the
    hottest tissue at the electrodes tracks the set temperature; ``rf`` its assumptions). With
    ``"rf"`` the result's ``power_w`` holds the probe power per time step (W)."""
    device = device or DeviceProfile()
    props = property_set(properties)
    damage = damage_model(damage)
    grid = grid or AxisymmetricGrid()
    if heating_model(heating) == "temperature-clamped":
        source = electrode_distance(grid.r[:, None], grid.z[None, :], device)
        temperature, dose = solve_axisymmetric(grid, props.cancellous, source,
                                               device.set_temperature_c, device.duration_s, time_step_s, damage,
                                               props.arterial_temperature_c, props.blood_specific_heat)
        return AxisymmetricResult(grid, temperature, dose, tip, direction, damage, props)
    r, z = np.meshgrid(grid.r, grid.z, indexing="ij")
    distal, proximal = (d.ravel() for d in electrode_distances(r, z, device))
    insulator = ((r <= device.electrode_diameter_mm / 2) & (z <= 0)).ravel()
    tissue = props.cancellous
    n = r.size
    fields = {"k": np.full(n, tissue.conductivity), "rho_c": np.full(n, tissue.heat_capacity),
              "perfusion": np.full(n, tissue.perfusion * props.blood_specific_heat),
              "sigma": np.full(n, tissue.electrical_conductivity)}
    temperature, dose, power = simulate_rf(axisymmetric_graph(grid), fields, distal, proximal, insulator, grid.spacing_mm,
                                           device, props, damage, time_step_s, "lu", rf or RfParameters(), 2 * np.pi)
    result = AxisymmetricResult(grid, temperature.reshape(r.shape), dose.reshape(r.shape), tip, direction, damage, props)
    result.power_w = power
    return result


# --------------------------------------------------------------------------------- voxel model

TISSUE_LABELS = {"soft_tissue": 0, "cancellous": 1, "cortical": 2}


def tissue_labels(bone: trimesh.Trimesh, points: np.ndarray, cortical_thickness_mm: float) -> np.ndarray:
    """Label points (N, 3 mm, model coordinates): 1 cancellous, 2 cortical (inside the bone within
    ``cortical_thickness_mm`` of its surface), 0 soft tissue (outside). ``bone`` must be watertight."""
    import pyvista as pv

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
                   properties: str | PropertySet = "normal", damage: str | DamageModel = "cem43",
                   spacing_mm: float = 0.5, half_width_mm: float = 12.0, time_step_s: float = 10.0,
                   cortical_shell: bool = True, heating: str = "temperature-clamped",
                   rf: RfParameters | None = None) -> VoxelResult:
    """Heat one or more probes (list of ``(tip, direction)``, mm, model coordinates) inside the
    real vertebra ``bone`` (watertight surface, mm) on a 3D voxel grid.

    The grid is a cube ``half_width_mm`` beyond the probes' active tips on every side, with T_a
    (and, for ``"rf"``, V = 0) on its faces. ``cortical_shell=False`` fills the shell with
    cancellous bone (for comparison). Two probes heat together (bi-pedicular), so their fields
    interact. ``heating`` as in :func:`simulate_axisymmetric` (with ``"rf"`` each probe's distal
    electrode is active, its proximal one the return; one controller for all probes).
    """
    device = device or DeviceProfile()
    props = property_set(properties)
    damage = damage_model(damage)
    cells = voxel_cells(bone, probes, device, props, spacing_mm, half_width_mm, cortical_shell)
    if heating_model(heating) == "rf":
        temperature, dose, power = simulate_rf(cells.graph, cells.fields, cells.distal, cells.proximal, cells.insulator,
                                               spacing_mm, device, props, damage, time_step_s, "cg", rf or RfParameters())
        result = VoxelResult(cells.origin, spacing_mm, temperature.reshape(cells.shape), dose.reshape(cells.shape),
                             cells.labels.reshape(cells.shape), cells.axis, damage, props)
        result.power_w = power
        return result
    setup = voxel_problem(bone, probes, device, props, spacing_mm, half_width_mm, cortical_shell, cells)
    fixed = setup.fixed.ravel()
    temperature = np.full(fixed.size, device.set_temperature_c)
    dose = np.full(fixed.size, float(damage.rate(device.set_temperature_c) * device.duration_s))
    temperature[~fixed], dose[~fixed] = march(setup.problem, device.duration_s, time_step_s,
                                              props.arterial_temperature_c, damage, "cg")
    return VoxelResult(setup.origin, spacing_mm, temperature.reshape(setup.fixed.shape),
                       dose.reshape(setup.fixed.shape), setup.labels, setup.axis, damage, props)


@dataclass
class VoxelCells:
    """The labelled 3D grid: node (i, j, k) at ``origin + spacing*(i, j, k)`` (mm, model
    coordinates), flattened per-cell ``labels`` (TISSUE_LABELS), tissue ``fields`` (SI, as
    :func:`simulate_rf` takes them), signed distances (mm) to the ``distal`` and ``proximal``
    electrodes of the nearest probe, the probes' ``insulator``, the ``graph`` and ``axis`` (the
    mean probe direction)."""

    origin: np.ndarray
    shape: tuple
    labels: np.ndarray
    fields: dict
    distal: np.ndarray
    proximal: np.ndarray
    insulator: np.ndarray
    graph: CellGraph
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
    fields = {name: np.zeros(len(points)) for name in ("k", "rho_c", "perfusion", "sigma")}
    for label, t in tissues.items():
        sel = labels == label
        fields["k"][sel] = t.conductivity
        fields["rho_c"][sel] = t.heat_capacity
        fields["perfusion"][sel] = t.perfusion * props.blood_specific_heat
        fields["sigma"][sel] = t.electrical_conductivity
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
    return VoxelCells(lo, shape, labels, fields, distal, proximal, insulator, graph, axis)


@dataclass
class VoxelSetup:
    """The discretised 3D problem: grid node (i, j, k) at ``origin + spacing*(i, j, k)`` (mm, model
    coordinates); ``fixed`` and ``labels`` are (nx, ny, nz); ``axis`` the mean probe direction."""

    problem: LinearHeatProblem
    origin: np.ndarray
    fixed: np.ndarray
    labels: np.ndarray
    axis: np.ndarray


def voxel_problem(bone: trimesh.Trimesh, probes: list[tuple], device: DeviceProfile, props: PropertySet,
                  spacing_mm: float, half_width_mm: float, cortical_shell: bool = True,
                  cells: VoxelCells | None = None) -> VoxelSetup:
    """Assemble the temperature-clamped Pennes system for :func:`simulate_voxel` (arguments as
    there; ``cells`` reuses a :func:`voxel_cells` labelling)."""
    cells = cells or voxel_cells(bone, probes, device, props, spacing_mm, half_width_mm, cortical_shell)
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
    if device.lesion_model == "bioheat" and bone is not None:
        return simulate_voxel(bone, probes, device, properties, damage, heating=heating).lesion
    if device.lesion_model == "bioheat":
        parts = [simulate_axisymmetric(t, d, device, properties, damage, heating=heating).lesion for t, d in probes]
    else:
        parts = [EllipsoidLesion.from_probe(t, d, device) for t, d in probes]
    return parts[0] if len(parts) == 1 else UnionLesion(parts)
