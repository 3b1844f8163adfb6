"""Small, realistic ROOT input files for the store and ingestion tests (and their bad twins).

`fake_events` draws events from a crude optical toy on the real sensor geometry (npho falls
off as area * cos / d^2 from a point in the xenon, Poisson-like noise, a few dead sensors at
1e10; times ~2-3e-8 s with npho-dependent jitter, 1e10 where invalid), so that compression and
precision behave as on detector data. `write_uproot` writes them with uproot (fixed-size
arrays or counter-jagged arrays, any compression, several baskets); `write_root` writes them
with real ROOT (fixed `npho[4760]/F` or `std::vector<float>`), and is only usable where
`import ROOT` works. Keyword hooks let a test make bad inputs (NaN truth, short arrays, ...).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from xecdata.geometry import N_SENSORS, sensor_table, uvw_to_xyz
from xecdata.rootio import ID_BRANCHES, OTHER_TRUTH
from xecdata.tasks import CLASSIFICATION, TASKS

SENSOR_BRANCHES = ("npho", "relative_time")
# branch -> (dtype, width; 0 = scalar): the task catalogue's truth branches (as imported: the
# built-in tasks), the other truth positions (cm) and the ids
TRUTH_BRANCHES = {
    **{t.branch: (np.int32 if t.kind == CLASSIFICATION else np.float32,
                  t.target_dim if t.target_dim > 1 else 0) for t in TASKS.values()},
    **{b: (np.float32, 3) for b in OTHER_TRUTH},
    **{b: (np.int32, 0) for b in ID_BRANCHES},
}  # fmt: skip
INVALID = np.float32(1e10)


def fake_events(n: int, seed: int = 0, first_event: int = 0) -> dict[str, np.ndarray]:
    """n events: npho, relative_time (n, 4760) float32 and the truth/id branches."""
    rng = np.random.default_rng(seed)
    geo = sensor_table()
    uvw = np.stack(
        [rng.uniform(-20, 20, n), rng.uniform(-60, 60, n), rng.exponential(3.0, n) + 0.3], -1
    )
    xyz = uvw_to_xyz(uvw)  # (n, 3)
    energy = rng.uniform(0.02, 0.0528, n)  # GeV
    d = xyz[:, None, :] - geo.pos[None]  # (n, 4760, 3)
    dist = np.linalg.norm(d, axis=-1)  # (n, 4760)
    cos = np.clip(np.einsum("nsk,sk->ns", d, geo.normal) / dist, 0.05, 1.0)
    mean = energy[:, None] * 4e7 * 0.15 * geo.area * cos / (4 * np.pi * dist**2)
    npho = mean + np.sqrt(mean) * rng.standard_normal(mean.shape) + rng.normal(0, 1.0, mean.shape)
    t0 = 2.5e-8 + rng.normal(0, 1e-9, n)
    jitter = 4e-10 / np.sqrt(np.maximum(npho / 50.0, 0.1))
    time = t0[:, None] + dist * 1.61 / 29.979e9 + jitter * rng.standard_normal(mean.shape)
    dead = rng.random(N_SENSORS) < 0.003
    npho[:, dead] = INVALID
    time[(npho < 0.5) | dead[None, :]] = INVALID
    vtx = rng.normal(0, 0.5, (n, 3))
    vec = xyz - vtx
    vec /= np.linalg.norm(vec, axis=-1, keepdims=True)
    theta = np.degrees(np.arccos(vec[:, 2]))
    phi = np.degrees(np.arctan2(vec[:, 1], vec[:, 0]))
    return {
        "npho": npho.astype(np.float32),
        "relative_time": time.astype(np.float32),
        "emiAng": np.stack([theta, phi], -1).astype(np.float32),
        "energyTruth": energy.astype(np.float32),
        "timeTruth": (t0 * 1e9).astype(np.float32),
        "uvwTruth": uvw.astype(np.float32),
        "xyzTruth": xyz.astype(np.float32),
        "emiVec": vec.astype(np.float32),
        "xyzVTX": vtx.astype(np.float32),
        "nGamma": np.ones(n, np.int32),
        "run": np.full(n, 1000 + seed, np.int32),
        "event": np.arange(first_event, first_event + n, dtype=np.int32),
    }


def write_uproot(
    path: Path,
    n: int,
    seed: int = 0,
    *,
    tree: str = "tree",
    jagged: bool = False,
    baskets: int = 3,
    compression: object = None,
    drop: tuple[str, ...] = (),
    events: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Write `n` fake events (or `events`) to `path` with uproot; returns what was written.

    jagged=True writes the sensor branches as counter-jagged arrays (`nnpho`, `npho[nnpho]`);
    baskets = number of `extend` calls (one basket per branch each).
    """
    import uproot

    data = events if events is not None else fake_events(n, seed)
    data = {k: v for k, v in data.items() if k not in drop}
    n = len(next(iter(data.values())))
    kwargs = {} if compression is None else {"compression": compression}
    with uproot.recreate(path, **kwargs) as f:
        bounds = np.linspace(0, n, max(1, min(baskets, n)) + 1).astype(int)
        for i, (a, b) in enumerate(itertools.pairwise(bounds)):
            part = {k: v[a:b] for k, v in data.items()}
            if jagged:
                part = {k: _jagged(v) if k in SENSOR_BRANCHES else v for k, v in part.items()}
            if i == 0:
                f.mktree(tree, {k: _branch_type(v) for k, v in part.items()})
            f[tree].extend(part)
    return data


def _jagged(v: object) -> object:
    """A (n, 4760) array or a list of 1-d arrays (any lengths) as an awkward float32 column."""
    import awkward as ak

    rows = list(v)
    counts = np.array([len(r) for r in rows], dtype=np.int64)
    flat = np.concatenate(rows).astype(np.float32) if rows else np.zeros(0, np.float32)
    return ak.unflatten(flat, counts)


def _branch_type(v: object) -> object:
    """uproot mktree type for a numpy column or an awkward jagged column."""
    if isinstance(v, np.ndarray):
        return np.dtype((v.dtype, v.shape[1:])) if v.ndim > 1 else v.dtype
    return v.type  # awkward: var * float32


def write_root(
    path: Path,
    n: int,
    seed: int = 0,
    *,
    algorithm: str = "ZLIB",
    level: int = 4,
    vector: bool = False,
    tree: str = "tree",
) -> dict[str, np.ndarray]:
    """Write `n` fake events with real ROOT (PyROOT); fixed arrays or std::vector<float>."""
    import array

    import ROOT

    data = fake_events(n, seed)
    algo = getattr(ROOT.RCompressionSetting.EAlgorithm, f"k{algorithm}")
    f = ROOT.TFile(str(path), "RECREATE", "", int(algo) * 100 + level)
    t = ROOT.TTree(tree, tree)
    t.SetAutoFlush(7)  # several baskets even for a few events
    bufs: dict[str, object] = {}
    for name in SENSOR_BRANCHES:
        if vector:
            bufs[name] = ROOT.std.vector("float")(N_SENSORS)
            t.Branch(name, bufs[name])
        else:
            bufs[name] = array.array("f", bytes(4 * N_SENSORS))
            t.Branch(name, bufs[name], f"{name}[{N_SENSORS}]/F")
    for name, (dtype, width) in TRUTH_BRANCHES.items():
        code, typecode = ("F", "f") if dtype == np.float32 else ("I", "i")
        bufs[name] = array.array(typecode, [0] * max(width, 1))
        leaf = f"{name}[{width}]/{code}" if width else f"{name}/{code}"
        t.Branch(name, bufs[name], leaf)
    for i in range(n):
        for name in SENSOR_BRANCHES:
            buf = bufs[name]
            view = np.frombuffer(buf.data(), np.float32, N_SENSORS) if vector else buf
            if vector:
                view[:] = data[name][i]
            else:
                view[:] = array.array("f", data[name][i].tobytes())
        for name in TRUTH_BRANCHES:
            bufs[name][:] = array.array(bufs[name].typecode, np.atleast_1d(data[name][i]).tolist())
        t.Fill()
    t.Write()
    f.Close()
    return data


def have_root() -> bool:
    """True where real ROOT (PyROOT) is installed (found without importing it here)."""
    import importlib.util

    return importlib.util.find_spec("ROOT") is not None


def array_bytes(store: Path) -> dict[str, bytes]:
    """Every array file of a store (chunks, shards, array metadata), keyed by relative path;
    leaves out the root metadata (time stamps) and the bookkeeping folder `_xec`."""
    out = {}
    for path in sorted(Path(store).rglob("*")):
        rel = path.relative_to(store).as_posix()
        if path.is_file() and rel != "zarr.json" and not rel.startswith("_xec"):
            out[rel] = path.read_bytes()
    return out
