"""Backend construction: `make_backend` resolves `auto` and builds the named backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from xecdata.loaders.sampler import SamplerConfig, SplitLayout
from xecdata.reweight import Reweighter

if TYPE_CHECKING:
    from xecdata.protocols import LoaderBackend
    from xecdata.store import Store

NAMES = ("cpu", "pinned", "dali", "resident", "root")


def resolve(name: str, device: torch.device, fits: bool) -> str:
    """`auto` -> resident (CUDA, split fits comfortably), pinned (CUDA), cpu (otherwise)."""
    if name == "auto":
        if device.type == "cuda":
            return "resident" if fits else "pinned"
        return "cpu"
    if name not in NAMES:
        raise ValueError(f"unknown loader backend {name!r}; choose auto or one of {NAMES}")
    return name


def make_backend(
    name: str,
    store: Store,
    scheme_id: str,
    layout: SplitLayout,
    cfg: SamplerConfig,
    device: torch.device,
    targets: tuple[str, ...],
    reweighter: Reweighter | None,
    options: dict[str, Any],
) -> tuple[str, LoaderBackend]:
    """(resolved name, backend object) for the loader."""
    from xecdata.loaders.backends.resident import AUTO_FRACTION, free_bytes, resident_bytes
    from xecdata.loaders.source import SourceFactory

    factory = SourceFactory(str(store.path), scheme_id, targets, reweighter)
    source = factory.build(store)
    fits = False
    if name == "auto" and device.type == "cuda":
        fits = resident_bytes(source, layout) < AUTO_FRACTION * free_bytes(device)
    name = resolve(name, device, fits)
    common = {
        "batch_size": cfg.batch_size,
        "dtype": options["dtype"],
        "threads": options["threads"],
        "device": device,
    }
    if name == "cpu":
        from xecdata.loaders.backends.cpu import CpuBackend

        return name, CpuBackend(source, ring=options["ring"], **common)
    if name == "pinned":
        from xecdata.loaders.backends.pinned import PinnedBackend

        return name, PinnedBackend(source, ring=options["ring"], **common)
    if name == "resident":
        from xecdata.loaders.backends.resident import ResidentBackend

        return name, ResidentBackend(source, layout, **common)
    if name == "dali":
        from xecdata.loaders.backends.dali import DaliBackend

        return name, DaliBackend(source, factory, layout, cfg, ring=options["ring"], **common)
    from xecdata.loaders.backends.cpu import CpuBackend
    from xecdata.loaders.backends.root import RootSource

    root = RootSource(store, scheme_id, targets, reweighter)
    return name, CpuBackend(root, ring=options["ring"], **common)
