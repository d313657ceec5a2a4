"""NormFace (Wang et al., ACM MM 2017): cosine logits with a fixed scale, no margin."""

from __future__ import annotations

import torch

from sphereviz.losses.base import MarginLoss, check_scale
from sphereviz.losses.head import NORM_EPS
from sphereviz.losses.registry import loss_spec

__all__ = ["NormFaceLoss", "ScaledCosineLoss"]


class ScaledCosineLoss(MarginLoss):
    """Base of NormFace, CosFace and ArcFace: x and W normalised, logits s·cos θ_j."""

    normalize_weights = True

    def __init__(self, num_classes: int, embedding_size: int, scale: float):
        scale = check_scale(scale, type(self).__name__.removesuffix("Loss"))
        super().__init__(num_classes, embedding_size)
        self.scale = scale

    def scale_embeddings(self, x: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
        """x·s/‖x‖, so a unit W_j gives the logit s·cos θ_j.

        An embedding with ‖x‖ ≤ eps has no direction: its logits are 0 (cos θ = 0 taken) and
        it gets a zero gradient, instead of the s/eps ≈ 1e13 that would overflow fp16.

        Computed as (x/a)·s/(‖x‖/a) with a = max_k |x_k| (a constant for the gradient), so
        neither the value nor the backward (which holds 1/‖x‖²) overflows for huge rows:
        every intermediate is of order 1 (‖x‖/a lies in [1, √d]).
        """
        largest = x.detach().abs().amax(dim=1, keepdim=True)
        divisor = torch.where(largest > 0, largest, torch.ones_like(largest))
        relative_norms = norms / divisor.squeeze(1)
        has_direction = norms > NORM_EPS
        factor = torch.where(
            has_direction, self.scale / relative_norms.clamp_min(NORM_EPS), torch.zeros_like(norms)
        )
        return (x / divisor) * factor.unsqueeze(1)

    def target_radius(self, norms: torch.Tensor, target_weight_norms: torch.Tensor) -> torch.Tensor:
        """s for every sample."""
        return torch.full_like(norms, self.scale)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale={self.scale}"


class NormFaceLoss(ScaledCosineLoss):
    """NormFace: f_j = s·cos θ_j for every class (x and W normalised), no margin."""

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        scale: float = loss_spec("normface").default_scale,
    ):
        super().__init__(num_classes, embedding_size, scale)
