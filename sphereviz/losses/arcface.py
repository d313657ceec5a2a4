"""ArcFace (Deng et al., CVPR 2019): an additive angular margin, in radians."""

from __future__ import annotations

import torch

from sphereviz.losses.normface import ScaledCosineLoss
from sphereviz.losses.registry import check_margin, loss_spec
from sphereviz.margins import arcface_target

_SPEC = loss_spec("arcface")

__all__ = ["ArcFaceLoss"]


class ArcFaceLoss(ScaledCosineLoss):
    """ArcFace: f_y = s·cos(θ_y + m), f_j = s·cos θ_j (x and W normalised), m in radians.

    cos(θ + m) = cos θ·cos m − sin θ·sin m, with sin θ = √(1 − cos²θ): no acos.

    Where θ + m > π, cos(θ + m) would rise again (a larger angle would be rewarded). We use
    the fallback of the official insightface code: for cos θ ≤ cos(π − m) the target is
    cos θ − m·sin m, which keeps the target decreasing in θ (it jumps down by about 0.12 at
    θ = π − m for m = 0.5). ``easy_margin=True`` instead applies the margin only where
    cos θ > 0 and uses cos θ elsewhere. Typical s = 64, m = 0.5.
    """

    has_margin = True

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        margin: float = _SPEC.default_margin,
        scale: float = _SPEC.default_scale,
        easy_margin: bool = False,
    ):
        super().__init__(num_classes, embedding_size, scale)
        self.margin = check_margin("arcface", margin, argument="margin")  # radians in [0, π)
        self.easy_margin = bool(easy_margin)

    def margin_target_logit(self, cos_theta: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        """s·cos(θ_y + m), with the fallback described in the class docstring
        (``margins.arcface_target``)."""
        return radius * arcface_target(cos_theta, self.margin, self.easy_margin)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}, easy_margin={self.easy_margin}"
