"""Normalization schemes: parameters, hashes, transforms and inverses, invalid rules, registry,
user files, JSON Schema, the `xec schemes` verb, and numpy/torch agreement."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

from xec_cli.main import main
from xecdata.schemes import (
    PARAMETER_FIELDS,
    TRANSFORMS,
    Scheme,
    SchemeConflictError,
    SchemeError,
    UnknownSchemeError,
    builtin_scheme_files,
    get_scheme,
    list_schemes,
    load_scheme_file,
    parse_scheme_id,
    register_scheme,
    scheme_json_schema,
)

# The values of the earlier tool (spec, "Input Normalization") and the hashes they give: a change
# of either means the built-in definitions changed, which needs a new version instead.
BUILTINS = {
    "legacy@1": dict(
        npho_transform="log1p", npho_scale=0.58, npho_scale2=1.0, time_scale=6.5e-8,
        time_shift=0.5, npho_sentinel=-5.0, time_sentinel=-5.0, npho_threshold=0.0,
    ),
    "new@1": dict(
        npho_transform="log1p", npho_scale=1000.0, npho_scale2=4.08, time_scale=1.14e-7,
        time_shift=-0.46, npho_sentinel=-1.0, time_sentinel=-1.0, npho_threshold=0.0,
    ),
}  # fmt: skip
HASHES = {
    "legacy@1": "sha256:8052221a7ada22138312626730f0d43a6c1af9522fffc5e12be85d76321e05eb",
    "new@1": "sha256:a159bb490ab03798124d5281146725b812650581fde4998e44ccac918526562a",
}
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "scheme.schema.json"


def variant(base: str, transform: str) -> Scheme:
    """A built-in's numbers with another photon-count transform."""
    return dataclasses.replace(get_scheme(base), name=f"t-{transform}", npho_transform=transform)


ALL_SCHEMES = [(b, t) for b in BUILTINS for t in TRANSFORMS]


def f32(v: float) -> np.float32:
    return np.float32(v)


# ---- built-ins, hash ---------------------------------------------------------------------
@pytest.mark.parametrize("scheme_id", list(BUILTINS))
def test_builtin_parameters_and_hash(scheme_id: str) -> None:
    s = get_scheme(scheme_id)
    assert s.id == scheme_id and s.parameters() == BUILTINS[scheme_id]
    canonical = json.dumps(BUILTINS[scheme_id], sort_keys=True, separators=(",", ":"))
    assert s.hash == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert s.hash == HASHES[scheme_id]
    assert Scheme.from_dict(s.to_dict()) == s


@pytest.mark.parametrize("field", PARAMETER_FIELDS)
def test_hash_changes_with_every_parameter(field: str) -> None:
    s = get_scheme("new@1")
    value = getattr(s, field)
    if field == "npho_transform":
        changed = "sqrt"
    elif field == "npho_sentinel":
        changed = float(np.nextafter(value, -np.inf))  # must stay below forward(0)
    else:
        changed = float(np.nextafter(value, np.inf))  # even a 1-ulp change is a new scheme
    assert dataclasses.replace(s, **{field: changed}).hash != s.hash


def test_hash_ignores_name_version_and_int_vs_float() -> None:
    s = get_scheme("new@1")
    assert dataclasses.replace(s, name="other", version=7).hash == s.hash
    for same in (1000, np.float32(1000.0), np.int64(1000)):  # numeric types do not matter
        assert dataclasses.replace(s, npho_scale=same, version=np.int64(1)) == s
        assert dataclasses.replace(s, npho_scale=same).hash == s.hash


def test_from_dict_checks_recorded_hash() -> None:
    d = get_scheme("new@1").to_dict() | {"npho_scale": 999.0}
    with pytest.raises(ValueError, match=r"'hash'.*edited after it was recorded"):
        Scheme.from_dict(d)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"npho_scale": 0.0}, "'npho_scale' must be > 0"),
        ({"time_scale": float("nan")}, "'time_scale' must be finite"),
        ({"npho_transform": "log"}, "unknown npho_transform 'log'"),
        ({"npho_sentinel": 0.0}, "'npho_sentinel'.*below the normalized value of zero"),
        ({"version": 0}, "'version' must be >= 1"),
        ({"name": "a@b"}, "'name' must match"),
    ],
)
def test_bad_parameters_name_the_key(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(get_scheme("new@1"), **change)


# ---- transforms: inverse(forward(x)) == x ------------------------------------------------
@pytest.mark.parametrize(("base", "transform"), ALL_SCHEMES)
def test_inverse_of_forward(base: str, transform: str) -> None:
    s = variant(base, transform)
    tr, s1 = s.transform, s.npho_scale
    # valid domain, above the clamp at the sentinel: from near the domain limit to 1e6 photons
    low = max(tr.domain_limit(s1), float(tr.inverse(s.npho_sentinel + 0.05, s1, s.npho_scale2)))
    x = np.concatenate([np.linspace(low, 0.0, 50), [0.0], np.logspace(-3, 6, 200)])
    y64 = tr.forward(x, s1, s.npho_scale2)
    np.testing.assert_allclose(tr.inverse(y64, s1, s.npho_scale2), x, rtol=1e-12, atol=1e-9 * s1)
    # the float32 path (normalize -> denormalize): rounding x and x/s1 to float32 (eps |x| each)
    # plus a few float32 ulp of y (log1p: 3), propagated to x
    back, _ = s.denormalize(s.normalize(x, np.zeros_like(x)))
    h = 1e-6 * np.maximum(np.abs(y64), 1e-3)
    dxdy = np.abs(tr.inverse(y64 + h, s1, s.npho_scale2) - tr.inverse(y64 - h, s1, s.npho_scale2))
    eps = np.finfo(np.float32).eps
    bound = eps * (2 * np.abs(x) + dxdy / (2 * h) * 4 * np.maximum(np.abs(y64), 1e-6))
    assert np.all(np.abs(back - x) <= bound), np.max(np.abs(back - x) / bound)


@pytest.mark.parametrize("base", list(BUILTINS))
def test_time_inverse(base: str) -> None:
    s = get_scheme(base)
    t = np.linspace(-2e-6, 2e-6, 1001)  # seconds
    x = s.normalize(np.full_like(t, 100.0), t)
    np.testing.assert_allclose(x[..., 1], t / s.time_scale - s.time_shift, rtol=1e-6, atol=1e-6)
    _, back = s.denormalize(x)
    np.testing.assert_allclose(back, t, rtol=0, atol=1e-6 * 2e-6)  # float32 relative error


def test_domain_limits() -> None:
    s1 = 2.0
    assert TRANSFORMS["log1p"].domain_limit(s1) == -2.0 and not TRANSFORMS["log1p"].limit_inclusive
    assert TRANSFORMS["sqrt"].domain_limit(s1) == 0.0 and TRANSFORMS["sqrt"].limit_inclusive
    assert TRANSFORMS["anscombe"].domain_limit(s1) == -0.75
    assert TRANSFORMS["linear"].domain_limit(s1) == -np.inf


def test_anscombe_formula() -> None:
    s = variant("new@1", "anscombe")
    y = s.normalize(np.array([0.0, 3000.0]), np.zeros(2))[..., 0]
    np.testing.assert_allclose(y, 2 * np.sqrt(np.array([0, 3]) + 0.375) / 4.08, rtol=1e-6)


# ---- invalid rules, one by one -----------------------------------------------------------
T0 = 2.28e-8  # a valid time (s): new@1 gives 2.28e-8 / 1.14e-7 + 0.46 = 0.66
N100 = float(np.log1p(0.1) / 4.08)  # new@1 npho channel of 100 photons
ABOVE_M1 = float(np.nextafter(f32(-1.0), f32(1.0)))  # the clamp just above sentinel -1
INF, NAN = float("inf"), float("nan")
RULES = [
    # (case, scheme changes, raw npho, raw time, expected npho channel, expected time channel)
    ("valid", {}, 100.0, T0, N100, 0.66),
    ("dead 1e10", {}, 1e10, T0, -1.0, -1.0),
    ("dead NaN", {}, NAN, T0, -1.0, -1.0),
    ("dead +Inf", {}, INF, T0, -1.0, -1.0),
    ("dead -Inf", {}, -INF, T0, -1.0, -1.0),
    ("dead, time NaN too", {}, 1e10, NAN, -1.0, -1.0),
    ("log1p at domain limit", {}, -1000.0, T0, 0.0, -1.0),
    ("log1p below domain", {}, -5000.0, T0, 0.0, -1.0),
    ("sqrt below domain", {"npho_transform": "sqrt"}, -1.0, T0, 0.0, -1.0),
    ("anscombe below domain", {"npho_transform": "anscombe"}, -376.0, T0,
     2 * np.sqrt(0.375) / 4.08, -1.0),
    ("anscombe at domain limit", {"npho_transform": "anscombe"}, -375.0, T0, 0.0, -1.0),
    ("linear has no limit", {"npho_transform": "linear"}, -100.0, T0, -100 / 1000 / 4.08, -1.0),
    ("zero photons: no time", {}, 0.0, T0, 0.0, -1.0),
    ("negative in domain", {}, -500.0, T0, np.log1p(-0.5) / 4.08, -1.0),
    ("clamped above sentinel", {}, -999.9, T0, ABOVE_M1, -1.0),
    ("linear clamped", {"npho_transform": "linear"}, -1e6, T0, ABOVE_M1, -1.0),
    ("time 1e10", {}, 100.0, 1e10, N100, -1.0),
    ("time -1e10", {}, 100.0, -1e10, N100, -1.0),
    ("time NaN", {}, 100.0, NAN, N100, -1.0),
    ("time +Inf", {}, 100.0, INF, N100, -1.0),
    ("time -Inf", {}, 100.0, -INF, N100, -1.0),
    ("at threshold", {"npho_threshold": 100.0}, 100.0, T0, N100, -1.0),
    ("above threshold", {"npho_threshold": 99.0}, 100.0, T0, N100, 0.66),
    ("own sentinels", {"npho_sentinel": -3.0, "time_sentinel": -7.0}, NAN, T0, -3.0, -7.0),
    ("own time sentinel", {"time_sentinel": -7.0}, 0.0, T0, 0.0, -7.0),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "npho", "time", "exp_n", "exp_t"), RULES)
def test_invalid_rule(case: str, change: dict, npho: float, time: float, exp_n, exp_t) -> None:
    s = dataclasses.replace(get_scheme("new@1"), name="rule", **change)
    for dtype in (np.float32, np.float64):
        n, t = s.normalize(np.array([npho], dtype), np.array([time], dtype))[0]
        assert (n, t) == (pytest.approx(exp_n, rel=1e-6, abs=0), pytest.approx(exp_t, rel=1e-6))
        # a sentinel is exact, and a valid value is never the sentinel
        assert (n == s.npho_sentinel) == (exp_n == s.npho_sentinel), case
        assert (t == s.time_sentinel) == (exp_t == s.time_sentinel), case
    n_back, t_back = s.denormalize(s.normalize(np.array([npho]), np.array([time])))
    assert np.isnan(n_back[0]) == (exp_n == s.npho_sentinel)
    assert np.isnan(t_back[0]) == (exp_t == s.time_sentinel)


@pytest.mark.parametrize("base", list(BUILTINS))
def test_valid_time_never_equals_sentinel(base: str) -> None:
    s = get_scheme(base)
    # float32 raw times around the one that maps onto the sentinel
    t0 = f32((s.time_sentinel + s.time_shift) * s.time_scale)
    cands = t0 + np.arange(-50, 51, dtype=np.float32) * np.spacing(t0)
    hit = cands[cands / f32(s.time_scale) - f32(s.time_shift) == f32(s.time_sentinel)]
    assert hit.size > 0  # the arithmetic can land on the sentinel exactly ...
    x = s.normalize(np.full(hit.shape, 10.0, np.float32), hit)
    assert np.all(x[:, 1] > s.time_sentinel)  # ... and normalize moves it one ulp up
    assert np.all(x[:, 1] == np.nextafter(f32(s.time_sentinel), f32(0)))


# ---- ids, registry ----------------------------------------------------------------------
def test_parse_scheme_id() -> None:
    assert parse_scheme_id("new@1") == ("new", 1)
    assert parse_scheme_id("my_scheme-2.b@12") == ("my_scheme-2.b", 12)
    assert parse_scheme_id("new") == ("new", None)
    for bad in ("new@", "@1", "new@0", "new@01", "new@x", "a@1@2", "", "1new", "new@-1"):
        with pytest.raises(SchemeError, match=r"bad scheme id.*name@version"):
            parse_scheme_id(bad)


def test_unknown_id_lists_known() -> None:
    with pytest.raises(UnknownSchemeError, match=r"'new@2'; known: legacy@1, new@1"):
        get_scheme("new@2")
    with pytest.raises(UnknownSchemeError, match=r"'nope'.*load_scheme_file"):
        get_scheme("nope")


def test_register_latest_conflict_and_noop() -> None:
    new1 = get_scheme("new@1")
    new2 = dataclasses.replace(new1, version=2, npho_scale2=4.0)
    assert register_scheme(new2) is new2
    assert get_scheme("new") is new2 and get_scheme("new@1") is new1
    assert register_scheme(dataclasses.replace(new2)) is new2  # identical: no-op
    with pytest.raises(SchemeConflictError, match=r"new@1 is already registered.*new@3"):
        register_scheme(dataclasses.replace(new1, time_shift=0.0))
    assert get_scheme("new@1") is new1
    assert [s.id for s in list_schemes()] == ["legacy@1", "new@1", "new@2"]


# ---- user files, JSON Schema -------------------------------------------------------------
USER_YAML = """\
name: mine
version: 3
npho_transform: sqrt
npho_scale: 10.0
npho_scale2: 2.0
time_scale: 1.0e-7
time_shift: 0.25
npho_sentinel: -2.0
time_sentinel: -3.0
npho_threshold: 5.0
"""


def test_user_scheme_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(USER_YAML)
    s = load_scheme_file(path)
    assert get_scheme("mine") is s and s.id == "mine@3"
    assert s.npho_transform == "sqrt" and s.time_scale == 1e-7 and s.npho_threshold == 5.0
    x = s.normalize(np.array([40.0, 4.0]), np.array([1e-7, 1e-7]))  # (2 sensors, 2)
    np.testing.assert_allclose(x[:, 0], [np.sqrt(40 / 10) / 2, np.sqrt(4 / 10) / 2], rtol=1e-6)
    assert x[0, 1] == pytest.approx(1e-7 / 1e-7 - 0.25, rel=1e-6)
    assert x[1, 1] == -3.0  # 4 photons <= npho_threshold 5: no time
    as_json = tmp_path / "mine.json"
    as_json.write_text(json.dumps(s.to_dict()))
    assert load_scheme_file(as_json) is s  # same definition (with id and hash): no-op
    path.write_text(USER_YAML.replace("0.25", "0.5"))
    with pytest.raises(SchemeConflictError, match=r"mine.yaml: .*version: 4 \(id mine@4\)"):
        load_scheme_file(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("npho_scale: 10.0\n", ""), "key '<top level>': 'npho_scale' is a required property"),
        (("1.0e-7", "1e-7"), r"key 'time_scale': '1e-7' is not of type 'number' \(YAML reads"),
        (("sqrt", "cbrt"), "key 'npho_transform': 'cbrt' is not one of"),
        (("npho_scale2: 2.0", "npho_scale2: -2.0"), "key 'npho_scale2': -2.0 is less than or"),
        (("version: 3", "version: 3\ncolour: red"), r"'colour' was unexpected"),
        (("npho_sentinel: -2.0", "npho_sentinel: 0.5"), "key 'npho_sentinel'.*zero photons"),
    ],
)
def test_bad_user_file_names_the_key(tmp_path: Path, edit: tuple, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(USER_YAML.replace(*edit))
    with pytest.raises(SchemeError, match=f"bad.yaml: (?s:.*){message}"):
        load_scheme_file(path)
    with pytest.raises(UnknownSchemeError):
        get_scheme("mine")


def test_schema_matches_dataclass_and_builtins() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert scheme_json_schema() == schema  # the packaged copy is the same file
    jsonschema.Draft202012Validator.check_schema(schema)
    names = [f.name for f in dataclasses.fields(Scheme)]
    assert schema["required"] == names
    assert set(schema["properties"]) == {*names, "id", "hash"}
    assert sorted(p.name for p in builtin_scheme_files()) == ["legacy@1.json", "new@1.json"]
    for path in builtin_scheme_files():
        jsonschema.validate(json.loads(path.read_text()), schema)
    for s in list_schemes():
        jsonschema.validate(s.to_dict(), schema)


# ---- CLI ---------------------------------------------------------------------------------
def test_cli_json() -> None:
    result = CliRunner().invoke(main, ["schemes", "--json"])
    assert result.exit_code == 0, result.output
    listed = {d["id"]: d for d in json.loads(result.output)["schemes"]}
    assert set(listed) == set(BUILTINS)
    for scheme_id, params in BUILTINS.items():
        name, version = scheme_id.split("@")
        expected = {"id": scheme_id, "hash": HASHES[scheme_id], "name": name}
        assert listed[scheme_id] == expected | {"version": int(version)} | params


def test_cli_table_and_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(USER_YAML)
    result = CliRunner().invoke(main, ["schemes", "--file", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["id", "transform", "npho_scale"]
    assert [line.split()[0] for line in lines[1:]] == ["legacy@1", "mine@3", "new@1"]
    assert lines[3].split()[1:3] == ["log1p", "1000.0"] and HASHES["new@1"][:19] in lines[3]
    bad = CliRunner().invoke(main, ["schemes", "-f", str(tmp_path / "missing.yaml")])
    assert bad.exit_code != 0 and "cannot read scheme file" in bad.output


# ---- normalize_into, numpy vs torch, import hygiene --------------------------------------
def raw_events(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4760) float32 npho and time (s) with every invalid case sprinkled in."""
    rng = np.random.default_rng(seed)
    npho = (rng.exponential(1.0, (n, 4760)) * 10.0 ** rng.uniform(-2, 4, (n, 4760))).astype(
        np.float32
    )
    time = rng.normal(0.0, 5e-8, (n, 4760)).astype(np.float32)
    bad_n = [1e10, np.nan, np.inf, -np.inf, 0.0, -0.3, -0.58, -1.0, -100.0, -999.0, -2000.0]
    bad_t = [1e10, -1e10, np.nan, np.inf, -np.inf]
    npho.flat[rng.choice(npho.size, 4000)] = rng.choice(bad_n, 4000)
    time.flat[rng.choice(time.size, 2000)] = rng.choice(bad_t, 2000)
    return npho, time


def test_normalize_into_slice_and_errors() -> None:
    s = get_scheme("new@1")
    npho, time = raw_events(40)
    big = np.full((50, 4760, 2), 7.0, np.float32)
    assert s.normalize_into(npho, time, big[5:45]) is not None
    np.testing.assert_array_equal(big[5:45], s.normalize(npho, time))
    np.testing.assert_array_equal(s.normalize(npho.astype(np.float64), time), big[5:45])
    assert np.all(big[:5] == 7.0) and np.all(big[45:] == 7.0)
    with pytest.raises(ValueError, match="shape plus"):
        s.normalize_into(npho, time, big[:39])
    with pytest.raises(ValueError, match="C-contiguous float32"):
        s.normalize_into(npho, time, np.empty((40, 4760, 2), np.float64))


@pytest.mark.parametrize(("base", "transform"), ALL_SCHEMES)
def test_numpy_torch_agree(base: str, transform: str) -> None:
    torch = pytest.importorskip("torch")
    s = variant(base, transform)
    npho, time = raw_events(64, seed=len(transform))  # 64 events: several numpy blocks
    x_np = s.normalize(npho, time)
    x_t = s.normalize_torch(torch.from_numpy(npho), torch.from_numpy(time))
    assert x_t.dtype == torch.float32 and x_t.shape == (64, 4760, 2)
    x_t = x_t.numpy()
    for c, sentinel in ((0, s.npho_sentinel), (1, s.time_sentinel)):
        np.testing.assert_array_equal(x_np[..., c] == sentinel, x_t[..., c] == sentinel)
    np.testing.assert_allclose(x_t, x_np, rtol=2e-6, atol=1e-6)
    n_np, t_np = s.denormalize(x_np)
    n_t, t_t = s.denormalize_torch(torch.from_numpy(x_np))
    np.testing.assert_allclose(n_t.numpy(), n_np, rtol=1e-5, atol=1e-5 * s.npho_scale)
    np.testing.assert_allclose(t_t.numpy(), t_np, rtol=1e-6, atol=1e-15)


def edge_events(s: Scheme, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """raw_events plus every boundary of s: domain limits (either side), the clamp above the
    sentinel, the threshold, the 9e9 markers, and raw times that land on the time sentinel."""
    npho, time = raw_events(n, seed)
    rng = np.random.default_rng(seed + 1)
    s1, lim = s.npho_scale, s.transform.domain_limit(s.npho_scale)
    edges = [-s1, -0.375 * s1, 0.0, s.npho_threshold, 9e9, 9.1e9, -1e30, 3e38, -3e38]
    edges += [float(s.transform.inverse(s.npho_sentinel + d, s1, s.npho_scale2)) for d in
              (-1e-3, 0.0, 1e-7, 1e-3)]  # fmt: skip
    edges = [e for e in edges if np.isfinite(e)] + ([lim] if np.isfinite(lim) else [])
    near = np.array(edges, np.float32)[:, None] + np.arange(-3, 4) * np.spacing(
        np.array(edges, np.float32)[:, None]
    )
    npho.flat[rng.choice(npho.size, near.size * 20)] = np.resize(near.ravel(), near.size * 20)
    t0 = f32((s.time_sentinel + s.time_shift) * s.time_scale)
    hit = t0 + np.arange(-50, 51, dtype=np.float32) * np.spacing(t0)
    edges_t = np.concatenate([hit, np.float32([9e9, -9e9, 9.1e9, 3e38, -3e38, 0.0, -0.0])])
    time.flat[rng.choice(time.size, 2000)] = np.resize(edges_t, 2000)
    return npho, time


@pytest.mark.parametrize("threshold", [0.0, 5.0])
@pytest.mark.parametrize(("base", "transform"), ALL_SCHEMES)
def test_fused_kernels_equal_numpy_path(base: str, transform: str, threshold: float) -> None:
    """The numba kernels and the numpy block path give the same bits, every invalid case."""
    from xecdata.schemes import kernels

    assert kernels.available(), "numba is a dependency: the fused path must be tested"
    s = dataclasses.replace(variant(base, transform), npho_threshold=threshold)
    npho, time = edge_events(s, 40, seed=len(transform))  # 40 events: several blocks
    for n_in, t_in in ((npho, time), (npho.astype(np.float64), time.astype(np.float64))):
        fused = s.normalize_into(n_in, t_in, np.empty((40, 4760, 2), np.float32))
        with np.errstate(over="ignore"):  # linear: +-3e38 / s1 overflows to +-inf
            ref = s.normalize_into(n_in, t_in, np.empty((40, 4760, 2), np.float32), fused=False)
        np.testing.assert_array_equal(fused.view(np.uint32), ref.view(np.uint32))
        for c, sentinel in ((0, s.npho_sentinel), (1, s.time_sentinel)):
            assert 0 < np.count_nonzero(ref[..., c] == sentinel) < ref[..., c].size


def test_no_torch_at_import() -> None:
    code = "import sys, xecdata.schemes; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
