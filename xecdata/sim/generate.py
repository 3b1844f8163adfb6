"""Event generation of the toy simulator: configuration, seeded event blocks, branch arrays.

Events are made in fixed blocks of ``BLOCK_EVENTS`` = 128. Block b draws its kinematics from
its own generator, seeded by ``SeedSequence(seed, spawn_key=(0, b))``, and every other random
number from named streams ``(0, b, k)`` (photoelectrons, scintillation delays, and one per
detector effect, ``xecdata.sim.effects``); it is always generated whole, so event i is the
same whatever the number of events asked for and however the output is split into files or
batches (same seed -> same arrays, bit for bit), and switching one detector effect changes no
other effect's draws (the same gammas, the same showers, ...).

Detector effects (``SimConfig.effects``): all on by default, the simulated detector meant to
be as sharp as the real MEG II one (docs/detector-realism.md); ``effects=()`` is the ideal
detector. The sensor constants of the detector (gain spread, calibration errors, time
offsets) come from ``detector_seed``, not from the run's seed: like the real detector's, they
are the same in every run (a calibration run and a physics run see the same errors).

Times (the toy's clock): each event has a trigger phase t0 uniform in +-``T0_HALF`` = 2.5 ns,
the emission time of the primary gamma at its vertex. ``time`` is the absolute sensor time
in that clock (s); ``relative_time`` subtracts the earliest sensor with more than 50
photoelectrons (s); ``timeTruth`` is the primary's emission time on the relative_time clock,
t0 - t_ref, in ns, so that it can be learnt from ``relative_time`` alone (1e10 if no sensor
passes the reference cut). Gammas fly at c; the light is emitted at the deposit's time.

Pile-up: with ``pileup`` = K > 1, each event carries nGamma gammas, uniform in 1..K; the
extra gammas have their own vertex, direction, energy and a time offset uniform in
+-``PILEUP_DT`` = 3 ns; their light adds up. Truth branches describe the primary gamma.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

from xecdata.geometry import xyz_to_uvw
from xecdata.sim.effects import (
    BOARD_JITTER,
    CALIBRATION_ERROR,
    CRATE_JITTER,
    EFFECTS,
    GAIN_SPREAD,
    NOISE_PE,
    RAYLEIGH_LENGTH,
    REFERENCE_JITTER,
    REFLECTIVITY,
    SHOWER_SPOT_SCALE,
    TIME_CALIBRATION_ERROR,
    YIELD_REF_MEV,
    YIELD_SIGMA,
    check_effects,
    sensor_calibration,
    stream_rng,
)
from xecdata.sim.kinematics import (
    E_FLAT,
    E_LINE,
    check_energy_range,
    emission_angles,
    sample_energy,
    sample_gammas,
    shower_deposits,
)
from xecdata.sim.optics import C_LIGHT, LIGHT_YIELD, light_and_first_time, sensor_optics
from xecdata.sim.response import (
    INVALID,
    SIGMA_1PE,
    SIGMA_FLOOR,
    TIME_MIN_NPHE,
    Readout,
    dead_channels,
    sensor_response,
)
from xecdata.sim.scattering import light_centroid, reflected_light, scattered_light
from xecdata.sim.shower import gflash_deposits

BLOCK_EVENTS = 128
T0_HALF = 2.5  # ns
PILEUP_DT = 3.0  # ns
MAX_PILEUP = 4


@dataclass(frozen=True)
class SimConfig:
    """Physics options of a simulation run (the seed and the output are given separately)."""

    energy: tuple[float, float] = (E_LINE, E_LINE)
    """Gamma energy range in MeV; equal bounds give a line. Under 14.5 MeV is never made."""
    dead_fraction: float = 0.0
    """Fraction of the 4760 channels dead for the whole run (written as 1e10)."""
    pileup: int = 1
    """Maximum gammas per event (1-4); nGamma is uniform in 1..pileup."""
    run: int = 0
    """Run number written to the `run` branch."""
    n_deposits: int = 8
    """Energy deposits per shower."""
    time_min_nphe: float = TIME_MIN_NPHE
    """Sensors with fewer photoelectrons get no time (1e10)."""
    effects: tuple[str, ...] = EFFECTS
    """Detector effects switched on (``xecdata.sim.effects``); () is the ideal detector."""
    shower_spot_scale: float = SHOWER_SPOT_SCALE
    """Spots per shower relative to GFlash's count, effect ``shower`` (fewer: rougher)."""
    rayleigh_length: float = RAYLEIGH_LENGTH
    """Rayleigh scattering length of the scintillation light (cm), effect ``rayleigh``."""
    reflectivity: float = REFLECTIVITY
    """Specular reflectivity of the inner face (MPPC surfaces), effect ``reflection``."""
    gain_spread: float = GAIN_SPREAD
    """Relative spread of the sensors' true efficiency x gain, effect ``gain``."""
    calibration_error: float = CALIBRATION_ERROR
    """Relative error of each sensor's efficiency x gain calibration, effect ``gain``."""
    noise_pe: float = NOISE_PE
    """Gaussian charge noise per channel (photoelectrons), effect ``noise``."""
    sigma_1pe: float = SIGMA_1PE
    """Single-photoelectron time jitter (ns), scaled by 1/sqrt(nphe), effect ``jitter``."""
    sigma_floor: float = SIGMA_FLOOR
    """Electronics time jitter of each channel (ns), effect ``jitter``."""
    time_calibration_error: float = TIME_CALIBRATION_ERROR
    """Residual per-channel time offsets (ns), effect ``time_calibration``."""
    board_jitter: float = BOARD_JITTER
    """Clock jitter of each DAQ board of 16 channels, per event (ns), effect ``clock``."""
    crate_jitter: float = CRATE_JITTER
    """Clock jitter of each DAQ crate of 16 boards, per event (ns), effect ``clock``."""
    reference_jitter: float = REFERENCE_JITTER
    """Jitter of the event's time reference, common to all channels (ns), ``time_reference``."""
    detector_seed: int = 0
    """Seed of the detector's fixed sensor constants (gain spread, calibration errors, time
    offsets), shared by every run of the same detector; another value is another detector."""

    def __post_init__(self) -> None:
        check_energy_range(*self.energy)
        check_effects(self.effects)
        object.__setattr__(self, "effects", tuple(e for e in EFFECTS if e in self.effects))
        self._check_widths()
        if not 1 <= self.pileup <= MAX_PILEUP:
            raise ValueError(f"--pileup {self.pileup}: choose 1 to {MAX_PILEUP} gammas")
        if not 1 <= self.n_deposits <= 64:
            raise ValueError(f"n_deposits {self.n_deposits}: choose 1 to 64")
        if not 0.0 <= self.dead_fraction < 1.0:
            raise ValueError(f"--dead-fraction {self.dead_fraction} must be in [0, 1)")

    def _check_widths(self) -> None:
        if not 0.05 <= self.shower_spot_scale <= 100:
            raise ValueError(f"--shower-spot-scale {self.shower_spot_scale}: choose 0.05 to 100")
        if not self.rayleigh_length > 0:
            raise ValueError(f"--rayleigh-length {self.rayleigh_length} must be > 0 cm")
        if not 0.0 <= self.reflectivity < 1.0:
            raise ValueError(f"--reflectivity {self.reflectivity} must be in [0, 1)")
        for name in ("gain_spread", "calibration_error"):
            if not 0.0 <= getattr(self, name) < 1.0 / 3.0:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)} must be "
                                 "in [0, 1/3): a relative width")  # fmt: skip
        for name in ("noise_pe", "sigma_1pe", "sigma_floor", "time_calibration_error",
                     "board_jitter", "crate_jitter", "reference_jitter"):  # fmt: skip
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} {getattr(self, name)} must be >= 0")

    def on(self, effect: str) -> bool:
        """Whether a detector effect is switched on."""
        return effect in self.effects

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def parse_energy(text: str) -> tuple[float, float]:
    """'52.8' (a line), '40:55' (flat range), 'line' (52.8) or 'flat' (15-60) -> MeV range."""
    key = text.strip().lower()
    if key == "line":
        return (E_LINE, E_LINE)
    if key == "flat":
        return E_FLAT
    try:
        parts = [float(p) for p in key.split(":")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2):
        raise ValueError(f"--energy {text!r}: use MeV as '52.8', '40:55', 'line' or 'flat'")
    lo, hi = parts[0], parts[-1]
    check_energy_range(lo, hi)
    return (lo, hi)


def block_rng(seed: int, block: int) -> np.random.Generator:
    """The generator of event block `block` of a run with this seed."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, block)))


def _gammas(rng: np.random.Generator, cfg: SimConfig) -> dict[str, np.ndarray]:
    """Primary and pile-up gammas of one block, arrays (B, G, ...)."""
    b, g = BLOCK_EVENTS, cfg.pileup
    n_gamma = rng.integers(1, g + 1, b) if g > 1 else np.ones(b, np.int64)
    energy = sample_energy(rng, (b, g), *cfg.energy)
    vtx, dirs, conv = (a.reshape(b, g, 3) for a in sample_gammas(rng, b * g))
    t0 = rng.uniform(-T0_HALF, T0_HALF, b)
    offsets = np.concatenate([np.zeros((b, 1)), rng.uniform(-PILEUP_DT, PILEUP_DT, (b, g - 1))], 1)
    t_conv = t0[:, None] + offsets + np.linalg.norm(conv - vtx, axis=-1) / C_LIGHT
    active = np.arange(g)[None, :] < n_gamma[:, None]
    return dict(n_gamma=n_gamma, energy=energy, vtx=vtx, dirs=dirs, conv=conv, t0=t0,
                t_conv=t_conv, active=active)  # fmt: skip


def _deposits(seed: int, block: int, gam: dict, cfg: SimConfig) -> tuple[np.ndarray, ...]:
    """Shower deposits of the block's gammas: positions (B, G*D, 3) cm, photons (B, G*D) and
    emission times (B, G*D) ns (inf where no light)."""
    rng = stream_rng(seed, block, "shower")
    args = (rng, gam["conv"], gam["dirs"], gam["energy"], cfg.n_deposits)
    if cfg.on("shower"):
        pos, e_dep, along = gflash_deposits(*args, spot_scale=cfg.shower_spot_scale)
    else:
        pos, e_dep, along = shower_deposits(*args)
    e_dep = e_dep * gam["active"][..., None]
    photons = e_dep * LIGHT_YIELD  # (B, G, D)
    if cfg.on("yield"):
        z = stream_rng(seed, block, "yield").standard_normal(e_dep.shape)
        rel = YIELD_SIGMA * np.sqrt(YIELD_REF_MEV / np.where(e_dep > 0, e_dep, 1.0))
        photons = np.maximum(photons * (1.0 + rel * z), 0.0)
    t_emit = gam["t_conv"][..., None] + along / C_LIGHT
    t_emit = np.where(photons > 0, t_emit, np.inf)
    b = photons.shape[0]
    return pos.reshape(b, -1, 3), photons.reshape(b, -1), t_emit.reshape(b, -1)


def _light(seed: int, block: int, gam: dict, cfg: SimConfig) -> tuple[np.ndarray, np.ndarray]:
    """Shower the gammas and collect their light, direct and (with the ``rayleigh`` and
    ``reflection`` effects) secondary: mu (B, S) pe and first-light time (B, S) ns. The
    first light is always direct (secondary light arrives later; the few sensors that face
    away from every deposit get no time)."""
    pos, photons, t_emit = _deposits(seed, block, gam, cfg)
    length = cfg.rayleigh_length if cfg.on("rayleigh") else None
    mu, t_first, *raw = light_and_first_time(pos, photons, t_emit, length)
    centroid, total, t_mean = light_centroid(pos, photons, t_emit)
    extra = []
    if cfg.on("rayleigh"):
        kept = mu.sum(1, dtype=np.float64) / np.maximum(raw[0].sum(1, dtype=np.float64), 1e-30)
        scattered = total * (1.0 - kept)
        extra.append(scattered_light(centroid, t_mean, scattered, cfg.rayleigh_length))
    if cfg.on("reflection"):
        extra.append(reflected_light(centroid, total, t_mean, cfg.reflectivity))
    if extra:
        p2, n2, t2 = (np.concatenate(parts, 1) for parts in zip(*extra, strict=True))
        mu += light_and_first_time(p2, n2, t2, with_time=False)[0]
    return mu, t_first


def _readout(cfg: SimConfig) -> tuple[Readout, np.ndarray]:
    """The detector's readout constants and the sensors' true efficiency factors (S,)."""
    cal = sensor_calibration(
        cfg.detector_seed,
        cfg.gain_spread if cfg.on("gain") else 0.0,
        cfg.calibration_error if cfg.on("gain") else 0.0,
        cfg.time_calibration_error if cfg.on("time_calibration") else 0.0,
    )
    nominal = sensor_optics().efficiency
    jitter = cfg.on("jitter")
    readout = Readout(
        efficiency=nominal * cal.efficiency_factor * cal.calibration_factor,
        min_nphe=cfg.time_min_nphe,
        sigma_1pe=cfg.sigma_1pe if jitter else 0.0,
        sigma_floor=cfg.sigma_floor if jitter else 0.0,
        noise_pe=cfg.noise_pe if cfg.on("noise") else 0.0,
        time_offset=cal.time_offset if cfg.on("time_calibration") else None,
        board_jitter=cfg.board_jitter if cfg.on("clock") else 0.0,
        crate_jitter=cfg.crate_jitter if cfg.on("clock") else 0.0,
        reference_jitter=cfg.reference_jitter if cfg.on("time_reference") else 0.0,
    )
    return readout, cal.efficiency_factor


def simulate_block(
    seed: int, block: int, cfg: SimConfig, dead: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """All branches of event block `block` (BLOCK_EVENTS events) of the run `seed`."""
    dead = dead_channels(seed, cfg.dead_fraction) if dead is None else dead
    gam = _gammas(block_rng(seed, block), cfg)
    mu, t_first = _light(seed, block, gam, cfg)
    readout, efficiency_factor = _readout(cfg)
    if cfg.on("gain"):
        mu *= efficiency_factor
    streams = ("response", "delay", "jitter", "noise", "clock", "time_reference")
    rngs = {name: stream_rng(seed, block, name) for name in streams}
    sensors, t_ref = sensor_response(rngs, mu, t_first, readout, dead)
    first = block * BLOCK_EVENTS
    return {
        **sensors,
        "relative_npho": sensors["npho"].copy(),
        **_truth(gam, t_ref),
        "run": np.full(BLOCK_EVENTS, cfg.run, np.int32),
        "event": np.arange(first, first + BLOCK_EVENTS, dtype=np.int32),
        "nGamma": gam["n_gamma"].astype(np.int32),
    }


def _truth(gam: dict, t_ref: np.ndarray) -> dict[str, np.ndarray]:
    """Truth branches of the primary gamma (index 0 of the gamma axis)."""
    dirs, conv = gam["dirs"][:, 0], gam["conv"][:, 0]
    return {
        "emiAng": emission_angles(dirs).astype(np.float32),
        "energyTruth": (gam["energy"][:, 0] * 1e-3).astype(np.float32),  # GeV
        "timeTruth": np.nan_to_num(gam["t0"] - t_ref, nan=INVALID).astype(np.float32),
        "uvwTruth": xyz_to_uvw(conv).astype(np.float32),
        "xyzTruth": conv.astype(np.float32),
        "emiVec": dirs.astype(np.float32),
        "xyzVTX": gam["vtx"][:, 0].astype(np.float32),
    }


def iter_blocks(
    n_events: int, seed: int = 0, config: SimConfig | None = None
) -> Iterator[dict[str, np.ndarray]]:
    """Yield the run's events in order, block by block (the last one truncated to n_events)."""
    if n_events < 0:
        raise ValueError(f"-n {n_events}: the number of events must be >= 0")
    cfg = config or SimConfig()
    dead = dead_channels(seed, cfg.dead_fraction)
    n_blocks = -(-n_events // BLOCK_EVENTS)
    for b in range(n_blocks):
        arrays = simulate_block(seed, b, cfg, dead)
        keep = min(BLOCK_EVENTS, n_events - b * BLOCK_EVENTS)
        yield {k: v[:keep] for k, v in arrays.items()} if keep < BLOCK_EVENTS else arrays


def simulate_events(
    n_events: int, seed: int = 0, config: SimConfig | None = None
) -> dict[str, np.ndarray]:
    """Simulate n_events in memory: branch name -> array with the event axis first."""
    blocks = list(iter_blocks(n_events, seed, config))
    if not blocks:
        return {k: v[:0] for k, v in simulate_block(seed, 0, config or SimConfig()).items()}
    return {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
