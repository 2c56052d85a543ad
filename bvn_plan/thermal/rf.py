"""The ``"rf"`` (electro-thermal, quasi-static) heating model: the electrical potential of the
bipolar probe, its Joule heat and the temperature-controlled time march.

∇·(σ∇V) = 0 with the distal (active) electrode at +V0/2, the proximal (return) one at −V0/2, the
probe insulation non-conducting and V = 0 on the outer boundary; Q = σ|∇V|² (Joule heat). σ per
tissue (bvn_plan.thermal.tissue, constant in temperature unless
:attr:`RfParameters.sigma_temperature_coefficient` says otherwise [A]). A controller scales the
power each time step so that the hottest tissue next to the electrodes ends the step at the set
temperature (:func:`march_rf`); the electrodes are steel in the heat problem. Assumptions:
:class:`RfParameters`. Positions mm; internally mm, s, W, J, V, S.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import splu

from ..errors import InputError
from .finite_volumes import (PER_M3_TO_PER_MM3, PER_M_TO_PER_MM, CellGraph, LinearHeatProblem, ProbeCells, TimeMarch,
                             assemble, cut_cell_conductance, explicit_part, jacobi_cg, step_solver, time_steps)


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


def march_rf(problem: LinearHeatProblem, schedule: TimeMarch, heat_per_watt, sensor: np.ndarray, set_rise: float,
             max_power: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrate C θ' = −A θ + P(t) q by ``schedule`` (steps as
    :func:`~bvn_plan.thermal.finite_volumes.march`); return the final temperature (°C), dose per
    cell and the power P per step (W; per radian on the axisymmetric grid).

    Controller [A]: the power is constant over each step and chosen so that the hottest ``sensor``
    cell ends the step exactly ``set_rise`` above T_a (the discrete system is linear in P, so this
    one-step "deadbeat" rule is exact), clipped to [0, ``max_power``]. ``q`` = ``heat_per_watt(θ)``,
    the heat distribution per watt at the step's start (returning the same array object while it
    does not change saves the solves).
    """
    dt, steps = time_steps(schedule.duration_s, schedule.time_step_s)
    solve = step_solver(problem, dt, schedule.solver)
    arterial_c, damage = schedule.arterial_c, schedule.damage
    zero = np.zeros_like(problem.capacity)
    theta, dose, powers = zero.copy(), zero.copy(), []
    rate = damage.rate(arterial_c + theta)
    q, unit = None, {}
    for done, (key, h) in enumerate(steps, 1):
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
        schedule.tell(done, steps)
    return arterial_c + theta, dose, np.array(powers)


def simulate_rf(cells: ProbeCells, schedule: TimeMarch, set_temperature_c: float, rf: RfParameters,
                power_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The electro-thermal simulation on any grid: temperature (°C), dose per cell, power per step (W).

    The electrodes of ``cells`` are at ±V0/2 (any V0: the controller scales the power so that the
    hottest tissue at them tracks ``set_temperature_c``, °C); they are steel in the heat problem,
    no longer held at a temperature. ``power_scale`` converts the graph's power to the probe's
    (2π per radian).
    """
    graph, tissue_fields, distal, proximal = cells.graph, cells.fields, cells.distal, cells.proximal
    insulator, spacing_mm = cells.insulator, cells.spacing_mm
    electrode = (distal <= 0) | (proximal <= 0)
    if not (distal <= 0).any() or not (proximal <= 0).any():
        raise InputError(f"an electrode covers no cell centre of the grid (spacing {spacing_mm} mm): refine the grid")
    distance = np.minimum(distal, proximal)
    sigma = np.where(insulator & ~electrode, rf.insulator_conductivity, tissue_fields["sigma"])
    potential = np.where(distal <= 0, 0.5, -0.5)
    tissue = ~(insulator | electrode)
    constant = solve_potential(graph, sigma, distance, potential, schedule.solver).power
    constant = constant / constant.sum()

    def heat_per_watt(theta):
        if rf.sigma_temperature_coefficient == 0:
            return constant
        heated = np.where(tissue, sigma * (1 + rf.sigma_temperature_coefficient * theta), sigma)
        power = solve_potential(graph, heated, distance, potential, schedule.solver).power
        return power / power.sum()

    k = np.where(electrode, rf.electrode_conductivity, tissue_fields["k"]) * PER_M_TO_PER_MM
    rho_c = np.where(electrode, rf.electrode_heat_capacity, tissue_fields["rho_c"]) * PER_M3_TO_PER_MM3
    perfusion = np.where(electrode, 0.0, tissue_fields["perfusion"]) * PER_M3_TO_PER_MM3
    face, boundary = graph.conductances(k)
    problem = assemble(rho_c * graph.volume, perfusion * graph.volume, boundary, graph.pairs, face,
                       np.full(distance.size, np.inf), 0.0)
    sensor = ~electrode & (distance <= max(rf.sensor_distance_mm, spacing_mm))
    max_power = None if rf.max_power_w is None else rf.max_power_w / power_scale
    temperature, dose, powers = march_rf(problem, schedule, heat_per_watt, sensor,
                                         set_temperature_c - schedule.arterial_c, max_power)
    return temperature, dose, powers * power_scale

