"""Pennes bioheat simulation of the RF probe and its lethal-dose lesion (see
bvn_plan.thermal.bioheat for the models, .rf for the electro-thermal heating, .finite_volumes for
the numerics and .tissue for the property sets and damage models). Units: mm, °C, s, SI tissue
properties.

    result = simulate_axisymmetric(tip, direction, device, ThermalSettings(heating="rf"))
    result.lesion, result.zone_report({"canal": canal_points})
"""

from .bioheat import (TISSUE_LABELS, AxisymmetricResult, ThermalResult, ThermalSettings, VoxelCells, VoxelResult,
                      electrode_distance, electrode_distances, lesion_for_probes, simulate_axisymmetric, simulate_voxel,
                      voxel_cells)
from .finite_volumes import (AxisymmetricGrid, CellGraph, ProbeCells, TimeMarch, VoxelGrid, axisymmetric_graph,
                             solve_axisymmetric)
from .rf import PotentialSolution, RfParameters, simulate_rf, solve_potential
from .tissue import PROPERTY_SETS, DamageModel, PropertySet, Tissue, damage_model, property_set

__all__ = [
    "AxisymmetricGrid", "AxisymmetricResult", "CellGraph", "DamageModel", "PROPERTY_SETS", "PotentialSolution",
    "ProbeCells", "PropertySet", "RfParameters", "TISSUE_LABELS", "ThermalResult", "ThermalSettings", "TimeMarch",
    "Tissue", "VoxelCells", "VoxelGrid", "VoxelResult", "axisymmetric_graph", "damage_model", "electrode_distance",
    "electrode_distances", "lesion_for_probes", "property_set", "simulate_axisymmetric", "simulate_rf",
    "simulate_voxel", "solve_axisymmetric", "solve_potential", "voxel_cells",
]
