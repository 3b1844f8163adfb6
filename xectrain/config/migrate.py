"""Migrate a configuration of the earlier tool (xec-ml-wl) to an xec run configuration.

    m = migrate_config(read_yaml("train_config.yaml"), store="sim.xec.zarr")
    Path("train.xec.yaml").write_text(render_migration(m, "train_config.yaml"))

Every key is looked up in `legacy.OLD_KEYS`: a mapped key sets its xec key and leaves one
comment line above it (old key -> new key, value conversion); a key with no equivalent is not
migrated and is listed with the reason; a key neither tool knows stops the migration. The
result is checked by loading it, so what is written always trains.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xecdata.schemes import get_scheme, list_schemes
from xecdata.tasks import REGRESSION
from xecmodel import TASKS

from .keys import is_xec_key, leaves
from .legacy import NORMALIZATION_KEYS, Context, NotMigrated, apply_old_key, find_old_key
from .loading import default_config
from .sections import KINDS, RunConfig
from .typed import ConfigError, deep_merge, did_you_mean, from_dict, to_dict
from .validate import validate

EARLIER_DEFAULT_SCHEME = "legacy@1"  # the earlier tool's built-in normalization constants


@dataclass
class Migration:
    """An xec configuration made from an earlier one: values by dotted key, the comment lines
    of each, and the earlier keys that were not migrated with the reason."""

    kind: str
    kind_reason: str
    values: dict[str, Any] = field(default_factory=dict)
    comments: dict[str, list[str]] = field(default_factory=dict)
    not_migrated: list[tuple[str, str]] = field(default_factory=list)

    def set(self, key: str, value: Any, comment: str, source: str) -> None:
        """Set `key`; a second, different value for it is not migrated (the first wins)."""
        if key in self.values and self.values[key] != value:
            self.not_migrated.append((source, f"conflicts with an earlier key setting {key}"))
            return
        self.values[key] = value
        self.comments.setdefault(key, []).append(comment)


def _flow(value: Any) -> str:
    """One-line YAML of a value (as written in the file and in comments)."""
    return (
        str(yaml.safe_dump(value, default_flow_style=True, width=10**6))
        .strip()
        .removesuffix("...")
        .strip()
    )


_RECON_HINTS = ("mask_ratio", "npho_weight", "time_weight", "auto_channel_weight", "loss_fn")


def guess_kind(tree: dict[str, Any], name: str = "") -> tuple[str, str]:
    """(model kind, why) of an earlier configuration: model.kind, the file name, its keys."""
    kind = (tree.get("model") or {}).get("kind") if isinstance(tree.get("model"), dict) else None
    if kind in KINDS:
        return str(kind), "model.kind"
    lowered = Path(name).name.lower()
    for word, guess in (("inpaint", "inpainter"), ("mae", "mae")):
        if word in lowered:
            return guess, f"the file name contains {word!r}"
    names = {k.rsplit(".", 1)[-1]: k for k, _ in leaves(tree)}
    for leaf in ("mae_checkpoint", "freeze_encoder"):
        if leaf in names:
            return "inpainter", f"it sets {names[leaf]}"
    for leaf in _RECON_HINTS:
        if leaf in names and not names[leaf].startswith("tasks."):
            return "mae", f"it sets {names[leaf]}"
    return "regressor", "no MAE or inpainter keys"


def _scheme_id(given: dict[str, Any]) -> str:
    """The registered scheme whose parameters equal the earlier normalization values (missing
    values: the earlier tool's defaults, those of the legacy scheme); raises NotMigrated."""
    base = get_scheme(EARLIER_DEFAULT_SCHEME)
    default = {"npho_scale": base.npho_scale, "npho_scale2": base.npho_scale2,
               "time_scale": base.time_scale, "time_shift": base.time_shift,
               "sentinel_value": base.time_sentinel}  # fmt: skip
    want = {k: float(given.get(k, v)) for k, v in default.items()}
    for s in list_schemes():
        have = (s.npho_scale, s.npho_scale2, s.time_scale, s.time_shift, s.time_sentinel)
        if s.npho_transform == "log1p" and all(
            math.isclose(a, b, rel_tol=1e-9) for a, b in zip(have, want.values(), strict=True)
        ):
            return s.id
    raise NotMigrated(
        f"no registered scheme has these parameters ({_flow(want)}); write them as a scheme "
        "file (see `xec schemes --json`), ingest with --scheme FILE and set data.scheme"
    )


def _normalization(m: Migration, old: dict[str, Any]) -> None:
    given = old.get("normalization")
    given = given if isinstance(given, dict) else {}
    unknown = [k for k in given if k not in NORMALIZATION_KEYS]
    if unknown:
        raise ConfigError(f"normalization.{unknown[0]}: unknown key of the earlier tool")
    sources = [f"normalization.{k}" for k in given] or ["(no normalization section)"]
    try:
        scheme = _scheme_id(given)
    except NotMigrated as err:
        m.not_migrated += [(f"{s} = {_flow(given[s.split('.')[1]])}", str(err)) for s in sources]
        return
    why = "the registered scheme with these values" if given else "the earlier tool's defaults"
    for s in sources:
        m.set("data.scheme", scheme, f"{s} -> data.scheme: {scheme} ({why})", s)


def _implicit_transforms(m: Migration, old: dict[str, Any]) -> None:
    """Tasks the earlier config lists without log_transform trained on raw targets."""
    tasks = old.get("tasks") if isinstance(old.get("tasks"), dict) else {}
    for task, entry in (tasks or {}).items():
        key = f"tasks.{task}.transform"
        regression = task in TASKS and TASKS[task].kind == REGRESSION
        bare = isinstance(entry, dict) and "log_transform" not in entry
        if regression and bare and key not in m.values:
            note = "raw targets, as the earlier tool; xec's default: standardize"
            line = f"tasks.{task} (no log_transform) -> {key}: identity ({note})"
            m.set(key, "identity", line, f"tasks.{task}")


def _migrate_key(m: Migration, key: str, value: Any, ctx: Context, unknown: list[str]) -> None:
    found = find_old_key(key)
    if found is None:
        if is_xec_key(key):
            m.set(key, value, f"{key}: already an xec key, kept", key)
        else:
            unknown.append(key)
        return
    pattern, task = found
    if pattern.startswith("normalization."):
        return
    try:
        out = apply_old_key(pattern, value, dataclasses.replace(ctx, task=task))
    except NotMigrated as err:
        m.not_migrated.append((f"{key} = {_flow(value)}", str(err)))
        return
    for new, new_value in out.items():
        change = "" if new_value == value else f": {_flow(value)} -> {_flow(new_value)}"
        m.set(new, new_value, f"{key} -> {new}{change}", key)


def migrate_config(
    old: dict[str, Any], kind: str | None = None, store: str | None = None, name: str = ""
) -> Migration:
    """The xec configuration equivalent to the earlier configuration `old` (a parsed YAML
    mapping); `kind` overrides the guess, `store` replaces the earlier ROOT input paths."""
    guessed, why = guess_kind(old, name)
    m = Migration(kind or guessed, "--kind" if kind else why)
    ctx = Context(m.kind, None, old, store)
    unknown: list[str] = []
    for key, value in leaves(old):
        if key != "model.kind":
            _migrate_key(m, key, value, ctx, unknown)
    if unknown:
        hints = [f"{k}{did_you_mean(k, [p for p, _ in leaves(to_dict(RunConfig()))])}"
                 for k in unknown]  # fmt: skip
        raise ConfigError(
            f"{name or 'config'}: key(s) neither the earlier tool's documentation nor xec "
            f"defines: {'; '.join(hints)} (list the known ones: xec config migrate --keys)"
        )
    _normalization(m, old)
    if m.kind == "regressor":
        _implicit_transforms(m, old)
    m.values = {"model.kind": m.kind, **m.values}
    m.comments["model.kind"] = [f"model kind: {m.kind} ({m.kind_reason})"]
    check_migrated(m)
    return m


def nested(values: dict[str, Any]) -> dict[str, Any]:
    """{'a.b': 1} -> {'a': {'b': 1}}, sections in RunConfig's order."""
    order = [f.name for f in dataclasses.fields(RunConfig)]
    out: dict[str, Any] = {name: {} for name in order}
    for key, value in values.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return {k: v for k, v in out.items() if v != {}}


def check_migrated(m: Migration) -> None:
    """Raise ConfigError when the migrated values do not form a valid xec configuration."""
    tree = deep_merge(to_dict(default_config(m.kind)), nested(m.values))
    try:
        validate(from_dict(RunConfig, tree))
    except ConfigError as err:
        problems = str(err).removeprefix("invalid configuration:").strip().replace("\n  ", "; ")
        raise ConfigError(f"the migrated configuration is not valid: {problems}") from None


def render_migration(m: Migration, source: str) -> str:
    """The migrated configuration as commented YAML (loads back to the same values)."""
    lines = [
        f"# xec run configuration migrated by `xec config migrate` from {source}",
        "# (the earlier tool, xec-ml-wl). Above each key: earlier key -> xec key (conversion).",
    ]
    if m.not_migrated:
        lines.append("# Not migrated (no xec equivalent):")
        lines += [f"#   {key}: {why}" for key, why in m.not_migrated]
    _emit(nested(m.values), m.comments, "", "", lines)
    return "\n".join(lines) + "\n"


def _emit(
    tree: dict[str, Any], comments: dict[str, list[str]], prefix: str, pad: str, lines: list[str]
) -> None:
    for name, value in tree.items():
        key = f"{prefix}{name}"
        lines += [f"{pad}# {c}" for c in comments.get(key, [])]
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{name}:")
            _emit(value, comments, f"{key}.", pad + "  ", lines)
        else:
            lines.append(f"{pad}{name}: {_flow(value)}")
