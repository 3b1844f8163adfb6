"""Dead-channel inpainter: encoder (frozen or trained) + local heads per face.

forward(x, mask=None) -> (loss, pred, mask): mask is random over valid sensors at `mask_ratio`
(realistic dead-channel densities are 1-10 %) or given (B, 4760) bool; the encoder sees the
masked sensors as sentinels (FCMAE masking), each face head sees its masked face image plus the
mask (local context) and the encoder's map and token (global context), and predicts npho (and
time unless predict_time=False: npho-only mode) per sensor, (B, 4760, 1 or 2) normalized. The
loss covers the masked sensors only (xecmodel.recon). `inpaint(x, mask)` returns x with masked
sensors filled; predict(x, mask) -> {pred, filled_npho, filled_time} in physical units
(xecmodel.kind.ReconstructionKind).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch

from xecmodel.decoders import FaceHeads
from xecmodel.encoder import XECEncoder
from xecmodel.faces import fill_masked, sentinel_fill
from xecmodel.kind import ReconstructionKind
from xecmodel.masking import actual_mask_ratio, already_invalid, random_mask
from xecmodel.recon import ReconstructionLoss


class XECInpainter(ReconstructionKind):
    """Encoder + face inpainting heads + masked reconstruction loss."""

    kind: ClassVar[str] = "inpainter"
    predictions_layout: ClassVar[Literal["event", "sensor"] | None] = "sensor"

    def __init__(
        self,
        encoder: XECEncoder,
        head_dim: int = 64,
        head_depth: int = 2,
        hex_head_dim: int = 96,
        hex_head_depth: int = 3,
        mask_ratio: float = 0.05,
        time_mask_ratio_scale: float = 1.0,
        mask_pool: str = "valid_time",
        freeze_encoder: bool = False,
        predict_time: bool = True,
        **loss_options: float | str | bool,
    ) -> None:
        super().__init__(encoder)
        self.mask_ratio, self.mask_pool, self.predict_time = mask_ratio, mask_pool, predict_time
        self.time_mask_ratio_scale = time_mask_ratio_scale
        random_mask(torch.zeros(1, 1, 2), self.scheme, mask_ratio,  # validate the options
                    time_mask_ratio_scale=time_mask_ratio_scale, pool=mask_pool)  # fmt: skip
        out_ch = 2 if predict_time else 1
        self.heads = FaceHeads(
            encoder, head_dim, head_depth, hex_head_dim, hex_head_depth, out_ch, image=True
        )
        self.criterion = ReconstructionLoss(self.scheme, **loss_options)  # type: ignore[arg-type]
        self.freeze_encoder = freeze_encoder
        self.encoder.requires_grad_(not freeze_encoder)
        self.last_ratio: dict[str, torch.Tensor] = {}

    def train(self, mode: bool = True) -> XECInpainter:
        """A frozen encoder stays in eval mode (no dropout / drop-path) while heads train."""
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    def make_mask(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 4760) bool: random over valid sensors, or the given mask restricted to them."""
        invalid = already_invalid(x, self.scheme, self.mask_pool)
        if mask is None:
            mask = random_mask(x, self.scheme, self.mask_ratio, pool=self.mask_pool,
                               time_mask_ratio_scale=self.time_mask_ratio_scale)  # fmt: skip
        else:
            mask = mask.bool()
        self.last_ratio = {
            "actual_mask_ratio": actual_mask_ratio(mask & ~invalid, invalid),
            "n_masked_total": (mask & ~invalid).sum(),
        }
        return mask

    def forward_heads(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predict every sensor from x under `mask` -> (B, 4760, out_ch) normalized."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_encoder):
            maps = self.encoder.forward_maps(x, mask)
            tokens = self.encoder.tokens_from_maps(maps)
        gather = self.encoder.gather
        faces = gather(sentinel_fill(x, mask, self.scheme))
        return self.heads(maps, tokens, gather.masks(mask), faces)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = self.make_mask(x, mask)
        pred = self.forward_heads(x, mask)
        valid = ~already_invalid(x, self.scheme, self.mask_pool)
        return self.criterion(pred, x, mask & valid), pred, mask

    def inpaint(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x with masked sensors replaced by predictions (time stays sentinel if not predicted)."""
        mask = mask.bool()
        return fill_masked(x, self.forward_heads(x, mask), mask, self.scheme)

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.forward_heads(x, mask)
