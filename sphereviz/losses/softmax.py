"""The original softmax loss: a linear layer with bias, then cross-entropy."""

from __future__ import annotations

import torch
from torch import nn

from sphereviz.losses.base import MarginLoss

__all__ = ["SoftmaxLoss"]


class SoftmaxLoss(MarginLoss):
    """Softmax loss: f_j = W_jᵀx + b_j (raw weights, bias ``b`` of shape (C,), no margin).

    Binary decision boundary: (W₁ − W₂)ᵀx + b₁ − b₂ = 0. ``class_weights`` returns raw W_j.
    """

    normalize_weights = False

    def __init__(self, num_classes: int, embedding_size: int):
        super().__init__(num_classes, embedding_size)
        self.b = nn.Parameter(torch.zeros(self.num_classes))

    def logits_from_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Wᵀx + b for every class."""
        return torch.addmm(self.b.to(rows.dtype), rows, self.W.to(rows.dtype))
