"""Toy LXe detector simulator: gammas from the target, showers in the xenon, scintillation
light on the 4760 sensors, written as ROOT files in the input layout (see DESIGN.md).

Modules: ``kinematics`` (vertex, energy, direction, conversion, toy shower), ``shower``
(fluctuating GFlash showers), ``solid_angle`` (exact and approximate sensor solid angles),
``optics`` (light yield, expected photoelectrons, first-light times, attenuation),
``scattering`` (Rayleigh-scattered and reflected light), ``response`` (Poisson counts, noise,
time jitter, thresholds, dead channels), ``effects`` (the detector effects' switches,
parameters, random streams and the detector's sensor constants), ``generate`` (seeded event
blocks, branch arrays), ``writer`` (ROOT files).
Each module's docstring lists its physics parameters with their sources.
"""

from xecdata.sim.effects import EFFECTS, parse_effects
from xecdata.sim.generate import (
    BLOCK_EVENTS,
    SimConfig,
    iter_blocks,
    parse_energy,
    simulate_block,
    simulate_events,
)
from xecdata.sim.writer import COMPRESSIONS, TREE_NAME, simulate

__all__ = [
    "BLOCK_EVENTS",
    "COMPRESSIONS",
    "EFFECTS",
    "TREE_NAME",
    "SimConfig",
    "iter_blocks",
    "parse_effects",
    "parse_energy",
    "simulate",
    "simulate_block",
    "simulate_events",
]
