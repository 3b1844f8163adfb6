"""Masked autoencoder pre-training of the encoder (FCMAE-style masking, face decoders).

forward(x, mask=None) -> (loss, pred, mask):
  1. mask: random invalid-aware mask (xecmodel.masking), or the given one minus invalid sensors;
  2. encode: masked sensors become sentinels, the backbones run with dense FCMAE masking;
  3. decode: one convolutional decoder per grid, one graph decoder per hex face, from the
     encoder's final maps (mask tokens at masked cells) and the face's fused token, back to
     pred (B, 4760, 2) in normalized units ((B, 4760, 1) with predict_time=False: npho only);
  4. loss: on masked sensors only, per face and channel (xecmodel.recon).
The encoder always sees both input channels; predict_time only decides what is reconstructed.
`last_losses` holds the named loss components of the last call plus actual_mask_ratio and
n_masked (0-dim tensors, no host sync); `encoder` is the part transferred to a regressor.
predict(x, mask) -> {pred, filled_npho, filled_time} (xecmodel.kind.ReconstructionKind).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch

from xecmodel.decoders import FaceHeads
from xecmodel.encoder import XECEncoder
from xecmodel.kind import ReconstructionKind
from xecmodel.masking import actual_mask_ratio, already_invalid, random_mask
from xecmodel.recon import ReconstructionLoss


class XECMAE(ReconstructionKind):
    """Encoder + face decoders + masked reconstruction loss."""

    kind: ClassVar[str] = "mae"
    predictions_layout: ClassVar[Literal["event", "sensor"] | None] = "event"

    def __init__(
        self,
        encoder: XECEncoder,
        decoder_dim: int = 64,
        decoder_depth: int = 1,
        hex_decoder_dim: int = 96,
        hex_decoder_depth: int = 2,
        mask_ratio: float = 0.65,
        time_mask_ratio_scale: float = 1.0,
        mask_pool: str = "valid_time",
        predict_time: bool = True,
        **loss_options: float | str | bool,
    ) -> None:
        super().__init__(encoder)
        self.mask_ratio, self.time_mask_ratio_scale = mask_ratio, time_mask_ratio_scale
        self.mask_pool, self.predict_time = mask_pool, predict_time
        random_mask(
            torch.zeros(1, 1, 2),
            self.scheme,
            mask_ratio,  # validate the options
            time_mask_ratio_scale=time_mask_ratio_scale,
            pool=mask_pool,
        )
        out_ch = 2 if predict_time else 1
        self.decoder = FaceHeads(
            encoder, decoder_dim, decoder_depth, hex_decoder_dim, hex_decoder_depth, out_ch
        )
        self.criterion = ReconstructionLoss(self.scheme, **loss_options)  # type: ignore[arg-type]
        self.last_ratio: dict[str, torch.Tensor] = {}

    def make_mask(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 4760) bool: a random mask, or the given one restricted to valid sensors."""
        invalid = already_invalid(x, self.scheme, self.mask_pool)
        if mask is None:
            mask = random_mask(
                x,
                self.scheme,
                self.mask_ratio,
                time_mask_ratio_scale=self.time_mask_ratio_scale,
                pool=self.mask_pool,
            )
        mask = mask.bool() & ~invalid
        self.last_ratio = {
            "actual_mask_ratio": actual_mask_ratio(mask, invalid),
            "n_masked": mask.sum(),
        }
        return mask

    def forward_decoder(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encode x under `mask` and decode every sensor -> (B, 4760, out_ch) normalized."""
        maps = self.encoder.forward_maps(x, mask)
        tokens = self.encoder.tokens_from_maps(maps)
        return self.decoder(maps, tokens, self.encoder.gather.masks(mask))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = self.make_mask(x, mask)
        pred = self.forward_decoder(x, mask)
        return self.criterion(pred, x, mask), pred, mask

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Every sensor from x with `mask` hidden; invalid sensors stay sentinels for the encoder
        (as in training), the decoder predicts them all -> (B, 4760, out_ch) normalized."""
        return self.forward_decoder(x, mask & ~already_invalid(x, self.scheme, self.mask_pool))
