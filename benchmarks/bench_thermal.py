"""Speed and accuracy of the bioheat models (not a test; run by hand and read the numbers).

    /work/venv/bin/python benchmarks/bench_thermal.py [--repeats 5] [--vhm ../shared/data/vhm_lumbar]

Prints:
1. convergence of the axisymmetric solver against the analytic sphere solutions (steady perfused
   Pennes, transient unperfused erfc) under grid and time-step refinement;
2. median time of the default 15-minute axisymmetric simulation and of the default 3D voxel
   simulation on real L4, each against a plain explicit (forward-Euler) finite-difference solver on
   the same operator, run in the same process, with the difference between their answers;
3. calibration: lesion size at 85 C / 15 min and its sensitivity to conductivity and perfusion;
4. the "rf" (electro-thermal) heating model: grid / time-step convergence, lesion at 85 C / 15 min
   and its sensitivity to sigma, k and perfusion (+-30 %), the steady probe power, run time against
   the clamped model, and the canal temperature with and without the cortical shell on real L4
   for both heating models at several probe-to-wall distances.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
from scipy.special import erfc

from bvn_plan.device import DeviceProfile
from bvn_plan.thermal import (AxisymmetricGrid, AxisymmetricResult, DamageModel, RfParameters, ThermalSettings, Tissue,
                              VoxelGrid, VoxelResult, electrode_distance, property_set, simulate_axisymmetric,
                              simulate_voxel, solve_axisymmetric, voxel_cells)
from bvn_plan.thermal.bioheat import voxel_problem
from bvn_plan.thermal.finite_volumes import axisymmetric_problem
from bvn_plan.thermal.tissue import CANCELLOUS
from bvn_plan.vertebra import Vertebra

from timing import median_time  # benchmarks/timing.py (scripts run from this folder's path)

SPHERE_RADIUS, SPHERE_Z = 1.5, -5.0



def explicit_march(problem, duration_s, arterial_c, damage: DamageModel):
    """Plain forward Euler at the positivity limit dt = min(C_i / A_ii): the baseline."""
    c, a, g = problem.capacity, problem.stiffness.tocsr(), problem.forcing
    dt_limit = float(np.min(c / a.diagonal()))
    n = int(np.ceil(duration_s / dt_limit))
    dt = duration_s / n
    theta, dose = np.zeros_like(c), np.zeros_like(c)
    for _ in range(n):
        dose += damage.rate(arterial_c + theta) * dt
        theta += dt / c * (g - a @ theta)
    return arterial_c + theta, dose, dt, n


def sphere_errors(h, dt=5.0):
    grid = AxisymmetricGrid(spacing_mm=h, time_step_s=dt)
    radius = np.hypot(grid.r[:, None], grid.z[None, :] - SPHERE_Z)
    checked = (radius >= SPHERE_RADIUS + h) & (radius <= 12.0)
    length = np.sqrt(CANCELLOUS.conductivity / (CANCELLOUS.perfusion * 3600.0)) * 1e3
    steady, _ = solve_axisymmetric(grid, CANCELLOUS, radius - SPHERE_RADIUS, 85.0, None)
    exact = 37 + 48 * SPHERE_RADIUS / radius * np.exp(-(radius - SPHERE_RADIUS) / length)
    e_steady = np.abs(steady - exact)[checked] / 48
    dry = dataclasses.replace(CANCELLOUS, perfusion=0.0)
    alpha = dry.conductivity / dry.heat_capacity * 1e6
    transient, _ = solve_axisymmetric(grid, dry, radius - SPHERE_RADIUS, 85.0, 300.0)
    exact = 37 + 48 * SPHERE_RADIUS / radius * erfc((radius - SPHERE_RADIUS) / (2 * np.sqrt(alpha * 300.0)))
    e_trans = np.abs(transient - exact)[checked] / 48
    return e_steady.max(), np.sqrt(np.mean(e_steady ** 2)), e_trans.max(), np.sqrt(np.mean(e_trans ** 2))


def convergence():
    print("\n1. Analytic sphere (a = 1.5 mm, 85 C), error / (T0 - Ta) for a+h <= r <= 12 mm, in %")
    print(f"{'h mm':>6} {'dt s':>5} {'steady max':>11} {'steady rms':>11} {'transient max':>14} {'transient rms':>14}")
    for h in (0.8, 0.4, 0.2, 0.1):
        row = sphere_errors(h)
        print(f"{h:6.2f} {5.0:5.1f} " + " ".join(f"{100 * e:>11.3f}" if i < 2 else f"{100 * e:>14.3f}" for i, e in enumerate(row)))
    for dt in (30.0, 15.0, 5.0, 2.0):
        row = sphere_errors(0.2, dt)
        print(f"{0.2:6.2f} {dt:5.1f} {'':>11} {'':>11} {100 * row[2]:>14.3f} {100 * row[3]:>14.3f}")


def axisymmetric_speed(repeats):
    device, props, damage = DeviceProfile(), property_set("normal"), DamageModel("cem43")
    t_impl, res = median_time(lambda: simulate_axisymmetric([0, 0, 0], [0, 0, 1], device), repeats)
    grid = AxisymmetricGrid()
    source = electrode_distance(grid.r[:, None], grid.z[None, :], device)

    def explicit():
        problem = axisymmetric_problem(grid, props.cancellous, source, device.set_temperature_c - 37.0)
        return explicit_march(problem, device.duration_s, 37.0, damage)

    t_expl, (temp, dose, dt, n) = median_time(explicit, max(1, repeats // 2))
    full_t, full_d = np.full(source.size, 85.0), np.full(source.size, float(damage.rate(85.0) * device.duration_s))
    free = (source > 0).ravel()
    full_t[free], full_d[free] = temp, dose
    ref = AxisymmetricResult(grid, full_t.reshape(source.shape), full_d.reshape(source.shape), [0, 0, 0], [0, 0, 1],
                             damage, props)
    print(f"\n2a. Axisymmetric, default grid ({grid.r.size} x {grid.z.size} cells, h = {grid.spacing_mm} mm), 85 C / 15 min")
    print(f"    implicit (LU, CN dt = 5 s):        median {t_impl:.3f} s   lesion {res.lesion.extent_across():.2f} x "
          f"{res.lesion.extent_along():.2f} mm, {res.lesion.volume:.1f} mm3")
    print(f"    explicit (forward Euler, dt = {dt:.3f} s, {n} steps): median {t_expl:.3f} s   lesion "
          f"{ref.lesion.extent_across():.2f} x {ref.lesion.extent_along():.2f} mm, {ref.lesion.volume:.1f} mm3")
    print(f"    max |T_implicit - T_explicit| = {np.abs(res.temperature - ref.temperature).max():.2e} C;  "
          f"speed-up {t_expl / t_impl:.1f}x")


def voxel_speed(repeats, vhm: Path):
    bone = Vertebra.load(vhm / "L4_whole.stl").mesh
    device, props, damage = DeviceProfile(), property_set("normal"), DamageModel("cem43")
    probes = [([8.0, 0.0, 64.3], [0.3, 1.0, 0.0])]       # VHM frame: +x anterior; ~10 mm in front of the wall
    t_impl, res = median_time(lambda: simulate_voxel(bone, probes, device), repeats)

    def explicit():
        setup = voxel_problem(voxel_cells(bone, probes, device, props, 0.5, 12.0), device, props)
        return setup, explicit_march(setup.problem, device.duration_s, 37.0, damage)

    t_expl, (setup, (temp, dose, dt, n)) = median_time(explicit, 1)
    fixed = setup.fixed.ravel()
    full_t, full_d = np.full(fixed.size, 85.0), np.full(fixed.size, float(damage.rate(85.0) * device.duration_s))
    full_t[~fixed], full_d[~fixed] = temp, dose
    ref = VoxelResult(setup.origin, 0.5, full_t.reshape(setup.fixed.shape), full_d.reshape(setup.fixed.shape),
                      setup.labels, setup.axis, damage, props)
    print(f"\n2b. 3D voxel on real L4, {res.temperature.shape} = {res.temperature.size} cells, h = 0.5 mm, 85 C / 15 min")
    print(f"    implicit (CG, CN dt = 10 s):       median {t_impl:.2f} s   lesion {res.lesion.extent_across():.2f} x "
          f"{res.lesion.extent_along():.2f} mm, {res.lesion.volume:.1f} mm3")
    print(f"    explicit (forward Euler, dt = {dt:.3f} s, {n} steps): {t_expl:.2f} s (1 run)   lesion "
          f"{ref.lesion.extent_across():.2f} x {ref.lesion.extent_along():.2f} mm, {ref.lesion.volume:.1f} mm3")
    print(f"    max |T_implicit - T_explicit| = {np.abs(res.temperature - ref.temperature).max():.2e} C;  "
          f"speed-up {t_expl / t_impl:.1f}x")


def calibration():
    print("\n3. Lesion at the tip (axisymmetric, homogeneous cancellous bone): across x along (mm), volume (mm3)")
    normal = property_set("normal")
    cases = [("normal, CEM43 240 min", {}), ("normal, Arrhenius Omega=1", {"settings": ThermalSettings(damage="arrhenius")}),
             ("conductivity x0.7", {"settings": ThermalSettings(normal.scaled(conductivity=0.7))}),
             ("conductivity x1.3", {"settings": ThermalSettings(normal.scaled(conductivity=1.3))}),
             ("perfusion x0.7", {"settings": ThermalSettings(normal.scaled(perfusion=0.7))}),
             ("perfusion x1.3", {"settings": ThermalSettings(normal.scaled(perfusion=1.3))}),
             ("no perfusion", {"settings": ThermalSettings(normal.scaled(perfusion=0.0))}),
             ("osteoporotic scenario", {"settings": ThermalSettings("osteoporotic")}),
             ("70 C / 15 min", {"device": DeviceProfile(set_temperature_c=70.0)}),
             ("85 C / 7 min", {"device": DeviceProfile(duration_s=420.0)})]
    base = None
    for name, kwargs in cases:
        lesion = simulate_axisymmetric([0, 0, 0], [0, 0, 1], **kwargs).lesion
        base = base or lesion.extent_across()
        print(f"    {name:28s} {lesion.extent_across():5.2f} x {lesion.extent_along():5.2f}   {lesion.volume:7.1f}   "
              f"across {100 * (lesion.extent_across() / base - 1):+5.1f}%")


def scaled_cancellous_sigma(factor: float):
    """The normal set with only the cancellous bone's electrical conductivity scaled."""
    normal = property_set("normal")
    bone: Tissue = dataclasses.replace(normal.cancellous, electrical_conductivity=normal.cancellous.electrical_conductivity * factor)
    return dataclasses.replace(normal, name=f"cancellous sigma x{factor:g}", cancellous=bone)


def rf_axisymmetric(repeats):
    print("\n4a. 'rf' heating, axisymmetric (homogeneous cancellous bone), 85 C / 15 min: across x along (mm), volume (mm3)")
    for h, dt in ((0.2, 15.0), (0.2, 5.0), (0.2, 2.0), (0.1, 5.0)):
        res = simulate_axisymmetric([0, 0, 0], [0, 0, 1], settings=ThermalSettings(heating="rf"),
                                    grid=AxisymmetricGrid(spacing_mm=h, time_step_s=dt))
        print(f"    h {h:.1f} mm, dt {dt:4.1f} s: {res.lesion.extent_across():5.2f} x {res.lesion.extent_along():5.2f}   "
              f"{res.lesion.volume:7.1f}   power first/last step {res.power_w[0]:.2f} / {res.power_w[-1]:.3f} W")
    t_rf, rf = median_time(lambda: simulate_axisymmetric([0, 0, 0], [0, 0, 1], settings=ThermalSettings(heating="rf")),
                           repeats)
    t_cl, cl = median_time(lambda: simulate_axisymmetric([0, 0, 0], [0, 0, 1]), repeats)
    print(f"    run time (default grid, dt 5 s): rf median {t_rf:.2f} s, clamped {t_cl:.2f} s, ratio {t_rf / t_cl:.2f}; "
          f"lesion across rf {rf.lesion.extent_across():.2f} mm vs clamped {cl.lesion.extent_across():.2f} mm")
    normal = property_set("normal")
    base = rf.lesion.extent_across()
    cases = [("sigma x0.7 (all tissues)", normal.scaled(electrical=0.7)), ("sigma x1.3 (all tissues)", normal.scaled(electrical=1.3)),
             ("conductivity x0.7", normal.scaled(conductivity=0.7)), ("conductivity x1.3", normal.scaled(conductivity=1.3)),
             ("perfusion x0.7", normal.scaled(perfusion=0.7)), ("perfusion x1.3", normal.scaled(perfusion=1.3)),
             ("osteoporotic scenario", property_set("osteoporotic")), ("sigma +2 %/C (re-solved per step)", normal)]
    for name, props in cases:
        rf = RfParameters(sigma_temperature_coefficient=0.02 if "per step" in name else 0.0)
        res = simulate_axisymmetric([0, 0, 0], [0, 0, 1], settings=ThermalSettings(props, heating="rf", rf=rf))
        print(f"    {name:28s} {res.lesion.extent_across():5.2f} x {res.lesion.extent_along():5.2f}   {res.lesion.volume:7.1f}   "
              f"across {100 * (res.lesion.extent_across() / base - 1):+5.1f}%   steady power {res.power_w[-1]:.3f} W")


def rf_voxel(vhm: Path):
    bone = Vertebra.load(vhm / "L4_whole.stl").mesh
    fast = VoxelGrid(spacing_mm=0.5, half_width_mm=8.0, time_step_s=60.0)
    canal = np.mgrid[-4.5:-3.4:0.5, -4:4.1:1.0, 60:69:1.0].reshape(3, -1).T   # behind the posterior wall (x ~ -2.4)
    print("\n4b. Real L4, 3D (h 0.5 mm), peak canal temperature (C) without / with the cortical shell; probe toward the left")
    print(f"    {'tip x mm':>8} {'clamped none':>13} {'clamped shell':>14} {'rf none':>8} {'rf shell':>9} {'rf lesion across':>17}")
    for x in (2.0, 4.0, 6.0, 8.0):
        tip, direction = np.array([x, 0.0, 64.3]), np.array([0.3, 1.0, 0.0])
        row = []
        for heating in ("temperature-clamped", "rf"):
            for shell in (False, True):
                res = simulate_voxel(bone, [(tip, direction)], settings=ThermalSettings(heating=heating), grid=fast,
                                     cortical_shell=shell)
                row.append(res.zone_report({"canal": canal})["canal"]["max_temperature_c"])
        print(f"    {x:8.1f} {row[0]:13.2f} {row[1]:14.2f} {row[2]:8.2f} {row[3]:9.2f} {res.lesion.extent_across():17.2f}")
    tip, direction = np.array([2.0, 0.0, 64.3]), np.array([0.3, 1.0, 0.0])
    print("    probe 4.4 mm in front of the posterior wall, rf, one tissue's sigma scaled (a uniform scale changes nothing:")
    print("    the controller sets the power):")
    normal = property_set("normal")
    for name, props in (("normal", normal), ("cancellous sigma x0.7", scaled_cancellous_sigma(0.7)),
                        ("cancellous sigma x1.3", scaled_cancellous_sigma(1.3)),
                        ("soft tissue sigma x0.7", dataclasses.replace(normal, soft_tissue=dataclasses.replace(
                            normal.soft_tissue, electrical_conductivity=0.7 * normal.soft_tissue.electrical_conductivity))),
                        ("soft tissue sigma x1.3", dataclasses.replace(normal, soft_tissue=dataclasses.replace(
                            normal.soft_tissue, electrical_conductivity=1.3 * normal.soft_tissue.electrical_conductivity)))):
        res = simulate_voxel(bone, [(tip, direction)], settings=ThermalSettings(props, heating="rf"), grid=fast)
        print(f"      {name:24s} lesion {res.lesion.extent_across():.2f} x {res.lesion.extent_along():.2f} mm, "
              f"{res.lesion.volume:.1f} mm3, canal peak {res.zone_report({'canal': canal})['canal']['max_temperature_c']:.2f} C, "
              f"steady power {res.power_w[-1]:.3f} W")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--vhm", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "vhm_lumbar")
    args = parser.parse_args()
    convergence()
    axisymmetric_speed(args.repeats)
    voxel_speed(max(1, args.repeats // 2), args.vhm)
    calibration()
    rf_axisymmetric(args.repeats)
    rf_voxel(args.vhm)


if __name__ == "__main__":
    main()
