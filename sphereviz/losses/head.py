"""The one matmul of every normalised-weight head, with a hand-written backward.

Autograd through ``x @ (W / ‖W‖)`` would build the normalised copy of W and spend several
passes over the (d, C) weights in the backward; at CASIA-WebFace size (d = 512, C = 10,572)
that is most of the cost of the head beyond the matmul itself. Here the normalisation is a
per-column factor on the (N, C) logits and its gradient is folded into one pass over W.
"""

from __future__ import annotations

import torch

__all__ = ["NORM_EPS", "logits_and_targets", "unit_column_matmul"]

NORM_EPS = 1e-12
"""Floor for ‖x‖ and ‖W_j‖ when dividing by them, so zero-norm vectors give finite values."""


def unit_column_matmul(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """x @ (W / ‖W‖ per column), without ever building the normalised copy of W.

    Forward: (x @ W)·r with r_j = 1/max(‖W_j‖, eps), one matmul and one pass over (N, C).
    The backward is written by hand (autograd's would spend several passes over W):
    with G the incoming gradient and A = xᵀ(G·r),

        ∂L/∂x = (G·r) Wᵀ,   ∂L/∂W_j = A_j − r_j² (W_j · A_j) W_j,

    the second term removing the radial part (zero where ‖W_j‖ < eps, where r is constant).
    """
    return _HeadMatmul.apply(x, weights, None, True)[0]


def logits_and_targets(
    rows: torch.Tensor, weights: torch.Tensor, labels: torch.Tensor, normalize_weights: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The plain logits (N, C), their target entries f_{i,y_i} (N,) and ‖W_{y_i}‖ (N,).

    Logits as in ``unit_column_matmul`` (or rows @ W for raw weights). The target entries and
    norms are separate outputs, so the margin can be computed from them while the gradients
    of both paths meet inside one backward: no (N, C) or (d, C) gradient is built for the N
    target entries alone.
    """
    return _HeadMatmul.apply(rows, weights, labels, normalize_weights)


class _HeadMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rows, weights, labels, normalize_weights: bool):
        # vecdot reduces the (d, C) columns in one fast pass (vector_norm is ~3x slower here)
        norms = torch.linalg.vecdot(weights, weights, dim=0).sqrt()
        inverse_norms = 1.0 / norms.clamp_min(NORM_EPS)
        products = rows @ weights
        logits = products * inverse_norms if normalize_weights else products
        if labels is None:
            targets = target_weight_norms = logits.new_empty(0)
        else:
            targets = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
            target_weight_norms = norms[labels]
        ctx.normalize_weights = normalize_weights
        saved_products = products if normalize_weights else None
        ctx.save_for_backward(rows, weights, inverse_norms, norms, labels, saved_products)
        return logits, targets, target_weight_norms

    @staticmethod
    def backward(ctx, grad_logits, grad_targets, grad_target_weight_norms):
        rows, weights, inverse_norms, norms, labels, products = ctx.saved_tensors
        has_targets = labels is not None
        if has_targets:
            target_index = labels.unsqueeze(1)
        if ctx.normalize_weights:
            grad_products = grad_logits * inverse_norms  # ∂L/∂(rows @ W), a fresh tensor
            if has_targets:
                target_grad = (grad_targets * inverse_norms[labels]).unsqueeze(1)
                grad_products.scatter_add_(1, target_index, target_grad)
        elif has_targets:
            grad_products = grad_logits.scatter_add(1, target_index, grad_targets.unsqueeze(1))
        else:
            grad_products = grad_logits
        grad_rows = grad_products @ weights.t() if ctx.needs_input_grad[0] else None
        grad_weights = None
        if ctx.needs_input_grad[1]:
            grad_weights = rows.t() @ grad_products
            # per column j: grad_weights_j += coefficient_j · W_j
            coefficient = torch.zeros_like(norms)
            if ctx.normalize_weights:
                # remove the radial part: −r_j² (A_j · W_j), where A_j · W_j is computed
                # on the (N, C) side as Σ_n ∂L/∂P_nj · P_nj, P = rows @ W (half the work)
                radial = torch.linalg.vecdot(grad_products, products, dim=0)
                coefficient -= radial * inverse_norms.square()
            if has_targets:  # ∂‖W_j‖/∂W_j = W_j / ‖W_j‖
                coefficient.index_add_(0, labels, grad_target_weight_norms * inverse_norms[labels])
            coefficient = coefficient.masked_fill(norms < NORM_EPS, 0.0)
            grad_weights.addcmul_(weights, coefficient)
        return grad_rows, grad_weights, None, None
