"""SphereFace-R ("SphereFace Revived", Liu et al., TPAMI 2022): A-Softmax with a real m.

Features and weights are normalised and scaled by s; the margin is a **real** m ≥ 1 through
the monotonic extension of cos(mθ) (SphereFace eq. 7 with any real m), and there is no λ.
"""

from __future__ import annotations

import torch

from sphereviz.losses.normface import ScaledCosineLoss
from sphereviz.losses.registry import check_margin, loss_spec
from sphereviz.margins import real_psi_from_cos

__all__ = ["SphereFaceRLoss", "check_real_margin", "real_psi_from_cos"]


def check_real_margin(m) -> float:
    """A real m ≥ 1 as a float: TypeError for a non-number, ValueError below 1 or non-finite
    (SphereFace-R's range in ``registry``)."""
    return check_margin("sphereface-r", m)


class SphereFaceRLoss(ScaledCosineLoss):
    """SphereFace-R: f_y = s·(cos θ_y + sg[ψ_m(θ_y) − cos θ_y]),  f_j = s·cos θ_j (j ≠ y).

    sg is the stop-gradient (*characteristic gradient detachment*, SphereFace-R §4): the
    forward value of the target logit is s·ψ_m(θ_y), with a real m ≥ 1, and its gradient is
    that of s·cos θ_y. x and W are normalised; no λ. Typical s = 30, m = 1.5.
    ``get_logits`` gives s·cos θ_j, without margin.
    """

    has_margin = True
    loss_name = "SphereFace-R"

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        margin: float = loss_spec("sphereface-r").default_margin,
        scale: float = loss_spec("sphereface-r").default_scale,
    ):
        super().__init__(num_classes, embedding_size, scale)
        self.margin = check_real_margin(margin)

    def margin_target_logit(self, cos_theta: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        """s·(cos θ_y + sg[ψ_m(θ_y) − cos θ_y]): value s·ψ_m(θ_y), gradient of s·cos θ_y."""
        detached_margin = real_psi_from_cos(cos_theta, self.margin) - cos_theta.detach()
        return radius * (cos_theta + detached_margin)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}"
