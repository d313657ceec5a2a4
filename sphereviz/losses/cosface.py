"""CosFace / AM-Softmax (Wang et al., CVPR 2018): an additive cosine margin."""

from __future__ import annotations

import torch

from sphereviz.losses.base import check_finite_margin
from sphereviz.losses.normface import ScaledCosineLoss

__all__ = ["CosFaceLoss"]


class CosFaceLoss(ScaledCosineLoss):
    """CosFace: f_y = s·(cos θ_y − m), f_j = s·cos θ_j (x and W normalised).

    Typical s = 64 (CosFace) or 30 (AM-Softmax), m = 0.35; m is a cosine offset in [0, 2].
    """

    has_margin = True

    def __init__(
        self, num_classes: int, embedding_size: int, margin: float = 0.35, scale: float = 64.0
    ):
        super().__init__(num_classes, embedding_size, scale)
        self.margin = check_finite_margin(
            margin, "CosFace", upper=2.0, unit="a cosine offset", hint="typical is 0.35"
        )

    def margin_target_logit(self, cos_theta: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        """s·(cos θ_y − m)."""
        return radius * (cos_theta - self.margin)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}"
