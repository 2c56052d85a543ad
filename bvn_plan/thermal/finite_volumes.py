"""Finite volumes for the Pennes bioheat equation: grids, cell graphs, the linear heat problem and
its time-stepping solvers.

    ρc ∂T/∂t = ∇·(k ∇T) − ω_b c_b (T − T_a) + Q

Cell-centred finite volumes on any cell graph (:class:`CellGraph`), Dirichlet T_a on the outer
boundary, source cells held at a set temperature with a cut-cell boundary
(:func:`cut_cell_conductance`); time stepping by Crank-Nicolson after four backward-Euler quarter
steps (Rannacher start, which damps the switch-on jump), unconditionally stable, so the time step
is set by accuracy only. The same assembly with zero capacity and perfusion is the potential
problem of the ``"rf"`` heating model (bvn_plan.thermal.rf). Positions are millimetres; internally
mm, s, W, J; tissue properties arrive in SI and are converted with :data:`PER_M_TO_PER_MM` and
:data:`PER_M3_TO_PER_MM3`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from ..errors import InputError
from .tissue import DamageModel, Tissue, damage_model

#: SI -> mm units: W/m/K -> W/mm/K and J/m³/K (or W/m³/K) -> per mm³.
PER_M_TO_PER_MM = 1e-3
PER_M3_TO_PER_MM3 = 1e-9


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


@dataclass(frozen=True)
class TimeMarch:
    """How a heat problem is integrated from θ = 0: for ``duration_s`` in steps of about
    ``time_step_s`` (s; see :func:`time_steps`), the ``damage`` dose accumulated on T = ``arterial_c``
    + θ (°C), each step solved by ``solver``: ``"lu"`` (factorise once) or ``"cg"``
    (Jacobi-preconditioned conjugate gradients, warm-started). ``progress`` (if given) is called
    with (steps done, steps in all) after each step."""

    duration_s: float
    time_step_s: float
    arterial_c: float
    damage: DamageModel
    solver: str
    progress: Callable[[int, int], None] | None = field(default=None, compare=False)

    def tell(self, done: int, steps: list) -> None:
        if self.progress is not None:
            self.progress(done, len(steps))


def march(problem: LinearHeatProblem, schedule: TimeMarch) -> tuple[np.ndarray, np.ndarray]:
    """Integrate ``problem`` by ``schedule``; return final temperature (°C) and dose per free cell.

    Rannacher start (four backward-Euler quarter steps) then Crank-Nicolson.
    """
    dt, steps = time_steps(schedule.duration_s, schedule.time_step_s)
    solve = step_solver(problem, dt, schedule.solver)
    theta = np.zeros_like(problem.capacity)
    dose = np.zeros_like(theta)
    rate = schedule.damage.rate(schedule.arterial_c + theta)
    for done, (key, h) in enumerate(steps, 1):
        theta = solve(key, explicit_part(problem, key, h, theta) + problem.forcing, theta)
        new_rate = schedule.damage.rate(schedule.arterial_c + theta)
        dose += 0.5 * (rate + new_rate) * h
        rate = new_rate
        schedule.tell(done, steps)
    return schedule.arterial_c + theta, dose


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



# ------------------------------------------------------------------------------------- grids

@dataclass(frozen=True)
class AxisymmetricGrid:
    """Cell-centred (r, z) grid around the probe axis (mm): r in [0, radius_mm], z in
    [z_min_mm, z_max_mm] with z = 0 at the tip and +z distal (along the probe direction), marched
    in steps of about ``time_step_s`` (s)."""

    spacing_mm: float = 0.2
    radius_mm: float = 20.0
    z_min_mm: float = -30.0
    z_max_mm: float = 20.0
    time_step_s: float = 5.0

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


@dataclass(frozen=True)
class VoxelGrid:
    """Settings of the axis-aligned voxel grid around the probes: node ``spacing_mm``, the cube
    reaching ``half_width_mm`` beyond the probes' active tips on every side (mm), marched in steps
    of about ``time_step_s`` (s)."""

    spacing_mm: float = 0.5
    half_width_mm: float = 12.0
    time_step_s: float = 10.0


def solve_axisymmetric(grid: AxisymmetricGrid, tissue: Tissue, source_distance: np.ndarray, source_temperature_c: float,
                       duration_s: float | None, damage: str | DamageModel = "cem43", arterial_c: float = 37.0,
                       blood_specific_heat: float = 3600.0) -> tuple[np.ndarray, np.ndarray | None]:
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
    temperature[free], dose[free] = march(problem, TimeMarch(duration_s, grid.time_step_s, arterial_c, damage, "lu"))
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


@dataclass
class ProbeCells:
    """The cells around the probe(s): their ``graph``, per-cell tissue ``fields`` in SI (``k``
    W/m/K, ``rho_c`` J/m³/K, ``perfusion`` W/m³/K, ``sigma`` S/m at T_a), signed distances (mm,
    negative inside) to the ``distal`` (active) and ``proximal`` (return) electrodes, the probe's
    ``insulator`` cells and the grid ``spacing_mm``."""

    graph: CellGraph
    fields: dict[str, np.ndarray]
    distal: np.ndarray
    proximal: np.ndarray
    insulator: np.ndarray
    spacing_mm: float


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

