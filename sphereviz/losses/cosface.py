"""CosFace / AM-Softmax (Wang et al., CVPR 2018): an additive cosine margin."""

from __future__ import annotations

import torch

from sphereviz.losses.normface import ScaledCosineLoss
from sphereviz.losses.registry import check_margin, loss_spec
from sphereviz.margins import cosface_target

_SPEC = loss_spec("cosface")

__all__ = ["CosFaceLoss"]


class CosFaceLoss(ScaledCosineLoss):
    """CosFace: f_y = s·(cos θ_y − m), f_j = s·cos θ_j (x and W normalised).

    Typical s = 64 (CosFace) or 30 (AM-Softmax), m = 0.35; m is a cosine offset in [0, 2]
    (``registry.check_margin``).
    """

    has_margin = True

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        margin: float = _SPEC.default_margin,
        scale: float = _SPEC.default_scale,
    ):
        super().__init__(num_classes, embedding_size, scale)
        self.margin = check_margin("cosface", margin, argument="margin")

    def margin_target_logit(self, cos_theta: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        """s·(cos θ_y − m) (``margins.cosface_target``)."""
        return radius * cosface_target(cos_theta, self.margin)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}"
