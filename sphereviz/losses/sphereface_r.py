"""SphereFace-R ("SphereFace Revived", Liu et al., TPAMI 2022): A-Softmax with a real m.

Features and weights are normalised and scaled by s; the margin is a **real** m ≥ 1 through
the monotonic extension of cos(mθ) (SphereFace eq. 7 with any real m), and there is no λ.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sphereviz.losses.normface import ScaledCosineLoss
from sphereviz.losses.registry import check_margin, loss_spec

__all__ = ["SphereFaceRLoss", "check_real_margin", "real_psi_from_cos"]


def check_real_margin(m) -> float:
    """A real m ≥ 1 as a float: TypeError for a non-number, ValueError below 1 or non-finite
    (SphereFace-R's range in ``registry``)."""
    return check_margin("sphereface-r", m)


def real_psi_from_cos(cos_theta, m: float):
    """ψ_m(θ) = (−1)^k cos(mθ) − 2k,  k = ⌊mθ/π⌋ ∈ {0, …, ⌈m⌉ − 1}, for a real m ≥ 1.

    SphereFace-R's monotonic extension: cos(mθ) on [0, π/m], continuous and strictly
    decreasing on [0, π] (pieces k and k + 1 both give −1 − 2k at θ = (k + 1)π/m), and
    ψ_m(π) = (−1)^K cos(mπ) − 2K with K = ⌈m⌉ − 1; for an integer m it is A-Softmax's ψ.
    Takes cos θ as a numpy array or a tensor and returns the same kind. θ is
    atan2(√(1 − c²), c), never acos; for a tensor the result carries **no gradient**:
    SphereFace-R only uses it inside a stop-gradient.
    """
    m = check_real_margin(m)
    last_piece = math.ceil(m) - 1
    if isinstance(cos_theta, torch.Tensor):
        c = cos_theta.detach().clamp(-1.0, 1.0)
        theta = torch.atan2(torch.sqrt((1.0 - c * c).clamp_min(0.0)), c)
        k = torch.floor(theta * (m / math.pi)).clamp(0, last_piece)
        sign = 1.0 - 2.0 * torch.remainder(k, 2)
        return sign * torch.cos(m * theta) - 2.0 * k
    c = np.clip(np.asarray(cos_theta, dtype=float), -1.0, 1.0)
    theta = np.arctan2(np.sqrt(np.maximum(1.0 - c * c, 0.0)), c)
    k = np.clip(np.floor(theta * (m / math.pi)), 0, last_piece)
    sign = 1.0 - 2.0 * np.mod(k, 2)
    return sign * np.cos(m * theta) - 2.0 * k


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
