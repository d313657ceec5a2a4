"""SphereFace2 (Wen et al., ICLR 2022), variant C: C binary one-vs-all problems, no softmax.

For sample i and class j, with c = cos θ_ij (x and W normalised) and one shared bias b:

    z_ij = r·(c + sg[g(c) − m − c]) + b   (j = y_i),
    z_ij = r·(c + sg[g(c) + m − c]) + b   (j ≠ y_i),      g(c) = 2((c + 1)/2)^t − 1,

sg the stop-gradient (the forward value is r·(g(c) ∓ m) + b, the gradient that of r·c + b).

    L = (λ_w·C/r) · mean_{i,j} w_ij · BCE-with-logits(z_ij, 1[j = y_i]),
    w_ij = α (j = y_i),  1 − α (j ≠ y_i).

Its decision rule is per class: class j claims x where r·(g(cos θ_j) − m) + b > 0, so a point
may be claimed by no class or by several. Closed-set accuracy still uses argmax_j cos θ_j
(``get_logits``: r·cos θ_j, without bias or margin).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sphereviz.losses.base import _autocast_disabled, _row_norms
from sphereviz.losses.normface import ScaledCosineLoss
from sphereviz.losses.registry import check_margin, loss_spec
from sphereviz.margins import initial_bias, similarity_adjustment
from sphereviz.validation import check_real

__all__ = ["SphereFace2Loss", "initial_bias", "similarity_adjustment"]


class SphereFace2Loss(ScaledCosineLoss):
    """SphereFace2, variant C (see the module docstring for the formulas).

    ``margin`` m (a cosine offset in [0, 1]), ``scale`` r, ``alpha`` α ∈ (0, 1) (the weight of
    the positive term), ``t`` ≥ 1 (the exponent of g), ``loss_weight`` λ_w > 0. The learnable
    bias is the parameter ``bias`` (shape (1,)), initialised by :func:`initial_bias`; put
    ``loss.parameters()`` in the optimizer. Paper defaults: r 40, m 0.4, α 0.7, t 3, λ_w 50.
    """

    has_margin = True
    loss_name = "SphereFace2"

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        margin: float = loss_spec("sphereface2").default_margin,
        scale: float = loss_spec("sphereface2").default_scale,
        alpha: float = 0.7,
        t: float = 3.0,
        loss_weight: float = 50.0,
    ):
        super().__init__(num_classes, embedding_size, scale)
        self.margin = check_margin("sphereface2", margin, argument="margin")
        owner = self.loss_name
        self.alpha = check_real("alpha", alpha, min=0, max=1, include_min=False,
                                include_max=False, owner=owner, hint="typical is 0.7")  # fmt: skip
        self.t = check_real("t", t, min=1, owner=owner, hint="typical is 3")
        self.loss_weight = check_real(
            "loss_weight", loss_weight, min=0, include_min=False, owner=owner, hint="typical is 50"
        )
        self.bias = nn.Parameter(torch.empty(1))
        self.reset_bias()

    def reset_bias(self) -> None:
        """Set ``bias`` to the closed form of :func:`initial_bias`."""
        value = initial_bias(self.num_classes, self.margin, self.scale, self.alpha, self.t)
        with torch.no_grad():
            self.bias.fill_(value)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(λ_w·C/r) · mean of the α / (1 − α)-weighted binary cross-entropies of z."""
        x = self._check_embeddings(embeddings)
        labels = self._check_labels(labels, x.shape[0])
        with _autocast_disabled(x.device):
            logits = self._margin_logits(x, labels)
            targets = torch.zeros_like(logits).scatter_(1, labels.unsqueeze(1), 1.0)
            weights = torch.full_like(logits, 1.0 - self.alpha)
            weights.masked_fill_(targets.bool(), self.alpha)
            bce = F.binary_cross_entropy_with_logits(logits, targets, weight=weights)
            return bce * (self.loss_weight * self.num_classes / self.scale)

    def _margin_logits(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = x.to(self._compute_dtype(x))
        plain = self.logits_from_rows(self.scale_embeddings(x, _row_norms(x)))  # r·cos θ_ij
        cos_theta = (plain.detach() / self.scale).clamp(-1.0, 1.0)
        offsets = torch.full_like(cos_theta, self.margin)
        offsets.scatter_(1, labels.unsqueeze(1), -self.margin)  # −m on the target, +m elsewhere
        detached = similarity_adjustment(cos_theta, self.t) + offsets - cos_theta
        return plain + self.scale * detached + self.bias.to(plain.dtype)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, margin={self.margin}, alpha={self.alpha}, t={self.t}, "
            f"loss_weight={self.loss_weight}"
        )
