"""The machinery every loss of the family shares, with small hooks each loss overrides.

For a batch of embeddings x (N, d) and labels y (N,), every loss is a softmax cross-entropy

    L = mean_i  −log( exp(f_{y_i}) / Σ_j exp(f_j) )

over logits computed in two steps:

1. the plain logits f_j for all C classes, with ONE matmul: ``x @ W`` times a per-column
   factor 1/‖W_j‖ when the weights are normalised (no normalised copy of W is made, and the
   backward of the normalisation is written by hand: ``head.unit_column_matmul``);
2. for the margin losses, only the N target entries f_{y_i} are replaced by the margined
   target logit (the N plain target logits, the margin formula on N numbers, an in-place
   scatter-add of the difference). The margin is never evaluated on all C columns, no one-hot
   float mask is built, and no (N, C) or (d, C) gradient is built for the N targets alone
   (``head.logits_and_targets`` joins both gradient paths in one hand-written backward).

Hooks (override one or two):

- ``normalize_weights`` (class attribute): use W_j/‖W_j‖ (True) or the raw W_j (False).
- ``scale_embeddings(x, norms)``: the rows fed to the matmul; x itself gives logits ‖x‖cos θ_j
  (times ‖W_j‖ for raw weights), x·s/‖x‖ gives s·cos θ_j.
- ``logits_from_rows(rows)``: the plain logits from those rows (softmax adds its bias here).
- ``target_radius(norms, target_weight_norms)``: r_i with plain target logit
  f_{y_i} = r_i cos θ_{y_i}, given ‖x_i‖ and ‖W_{y_i}‖.
- ``margin_target_logit(cos_theta, radius)``: the trained target logit; the base has none.
- ``advance_schedule()``: called first in every forward (the annealed losses count iterations).

``margin_logits(embeddings, labels)`` returns the margined logits themselves (for plots of
decision regions, and for tests), at the current λ.

The margin (and, for simplicity and exactness, the whole head) is computed in float32 with
autocast disabled, even when the embeddings arrive in bf16/fp16: 1 − 1e-4 rounds to 1 in fp16,
so clamps and polynomial margins near cos θ = ±1 would be wrong in half precision.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from sphereviz.losses.head import NORM_EPS, logits_and_targets, unit_column_matmul
from sphereviz.validation import check_int, check_real

__all__ = [
    "NORM_EPS",
    "MarginLoss",
    "check_scale",
]


class MarginLoss(nn.Module):
    """Base of the loss family: owns W (d, C), validates input, builds logits, applies the margin.

    Public contract shared by every loss:
    ``forward(embeddings, labels) -> scalar``, ``get_logits(embeddings) -> (N, C)``,
    ``margin_logits(embeddings, labels) -> (N, C)``, ``class_weights() -> (C, d)``,
    attributes ``W`` (Parameter (d, C)), ``num_classes``, ``embedding_size`` and the property
    ``current_lambda`` (None unless annealed).
    """

    normalize_weights: bool = True
    has_margin: bool = False
    check_label_range: bool = True
    """Check 0 ≤ label < C in every forward, for a clear error. On a GPU the check waits for the
    device (one host sync per batch); a trainer whose labels were validated once when the data
    was loaded sets this to False on its loss, so the CPU can queue steps ahead of the GPU."""

    def __init__(self, num_classes: int, embedding_size: int):
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, min=2)
        self.embedding_size = check_int("embedding_size", embedding_size, min=1)
        self.W = nn.Parameter(torch.empty(self.embedding_size, self.num_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform class weights, as the official Caffe layers initialise them."""
        nn.init.xavier_uniform_(self.W)

    # ----- hooks -------------------------------------------------------------------------

    def scale_embeddings(self, x: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
        """The rows multiplied with W: x itself, so a unit W_j gives the logit ‖x‖cos θ_j."""
        return x

    def logits_from_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """The plain logits (N, C) from the scaled rows: one matmul with W, unit columns or raw."""
        weights = self.W.to(rows.dtype)
        return unit_column_matmul(rows, weights) if self.normalize_weights else rows @ weights

    def target_radius(self, norms: torch.Tensor, target_weight_norms: torch.Tensor) -> torch.Tensor:
        """r_i with plain target logit r_i·cos θ_{y_i}, from ‖x_i‖ and ‖W_{y_i}‖; here ‖x_i‖."""
        return norms

    def margin_target_logit(self, cos_theta: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        """The trained target logit from cos θ_y (N,) and r (N,); no margin: r·cos θ_y."""
        return radius * cos_theta

    def advance_schedule(self) -> None:
        """Called at the start of every forward; the annealed losses count iterations here."""

    @property
    def current_lambda(self) -> float | None:
        """The annealing weight λ of the last training forward; None: this loss has none."""
        return None

    # ----- public API ----------------------------------------------------------------------

    def get_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The plain logits (N, C), without margin: what accuracy is measured on."""
        x = self._check_embeddings(embeddings)
        with _autocast_disabled(x.device):
            x = x.to(self._compute_dtype(x))
            return self.logits_from_rows(self.scale_embeddings(x, _row_norms(x)))

    def margin_logits(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The logits the loss trains on (N, C): plain logits with the margin on each target.

        Uses the current λ of the annealed losses and does not advance their schedule.
        """
        x = self._check_embeddings(embeddings)
        labels = self._check_labels(labels, x.shape[0])
        with _autocast_disabled(x.device):
            return self._margin_logits(x, labels)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the logits whose target entries carry the margin."""
        x = self._check_embeddings(embeddings)
        labels = self._check_labels(labels, x.shape[0])
        self.advance_schedule()
        with _autocast_disabled(x.device):
            return F.cross_entropy(self._margin_logits(x, labels), labels)

    def class_weights(self) -> torch.Tensor:
        """The class weight vectors as rows (C, d), detached: unit vectors if normalised."""
        weights = self.W.detach()
        if self.normalize_weights:
            weights = weights * self._inverse_weight_norms(weights)
        return weights.t().clone()

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, embedding_size={self.embedding_size}"

    # ----- machinery -----------------------------------------------------------------------

    def _margin_logits(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = x.to(self._compute_dtype(x))
        norms = _row_norms(x)
        rows = self.scale_embeddings(x, norms)
        if not self.has_margin:
            return self.logits_from_rows(rows)
        logits, plain_target, target_weight_norms = logits_and_targets(
            rows, self.W.to(x.dtype), labels, self.normalize_weights
        )
        radius = self.target_radius(norms, target_weight_norms)
        cos_theta = (plain_target / radius.clamp_min(NORM_EPS)).clamp(-1.0, 1.0)
        target = self.margin_target_logit(cos_theta, radius).to(logits.dtype)
        # add (target − plain) in place: its backward passes the (N, C) gradient through as is
        return logits.scatter_add_(1, labels.unsqueeze(1), (target - plain_target).unsqueeze(1))

    @staticmethod
    def _inverse_weight_norms(weights: torch.Tensor) -> torch.Tensor:
        return 1.0 / torch.linalg.vector_norm(weights, dim=0).clamp_min(NORM_EPS)

    def _compute_dtype(self, x: torch.Tensor) -> torch.dtype:
        dtype = torch.promote_types(x.dtype, self.W.dtype)
        return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype

    def _check_embeddings(self, embeddings) -> torch.Tensor:
        if not isinstance(embeddings, torch.Tensor):
            raise ValueError(
                f"embeddings must be a torch.Tensor of shape (N, {self.embedding_size}), "
                f"got {type(embeddings).__name__}; wrap it with torch.as_tensor(...)"
            )
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"embeddings have shape {tuple(embeddings.shape)} but this loss expects "
                f"(N, {self.embedding_size}) (embedding_size={self.embedding_size}); make the "
                "feature layer's output size and the loss's embedding_size agree"
            )
        if embeddings.shape[0] == 0:
            raise ValueError(
                "the batch is empty (embeddings have shape "
                f"{tuple(embeddings.shape)}); pass at least one sample"
            )
        if not embeddings.is_floating_point():
            raise ValueError(
                f"embeddings must be floating point, got {embeddings.dtype}; use .float()"
            )
        return embeddings

    def _check_labels(self, labels, batch_size: int) -> torch.Tensor:
        if not isinstance(labels, torch.Tensor):
            raise ValueError(
                f"labels must be a torch.Tensor of class indices, got {type(labels).__name__}; "
                "wrap it with torch.as_tensor(..., dtype=torch.long)"
            )
        if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
            raise ValueError(
                f"labels must be an integer tensor of class indices, got {labels.dtype}; "
                "use labels.long() (one-hot or soft labels are not supported)"
            )
        if tuple(labels.shape) != (batch_size,):
            raise ValueError(
                f"labels have shape {tuple(labels.shape)} but the embeddings hold {batch_size} "
                f"samples, so labels must have shape ({batch_size},); flatten them with "
                "labels.view(-1)"
            )
        if self.check_label_range and not torch.compiler.is_compiling():
            low, high = torch.stack(torch.aminmax(labels)).tolist()
            if low < 0 or high >= self.num_classes:
                raise ValueError(
                    f"labels must lie in [0, num_classes) = [0, {self.num_classes}), got values "
                    f"from {low} to {high}; check num_classes or the label encoding"
                )
        return labels.long()


def check_scale(scale, loss_name: str) -> float:
    """The logit scale s as a float: TypeError for a non-number, ValueError unless 0 < s < ∞."""
    return check_real(
        "scale", scale, min=0, include_min=False, owner=loss_name,
        hint="typical values are 30 to 64",
    )  # fmt: skip


def _row_norms(x: torch.Tensor) -> torch.Tensor:
    """‖x_i‖ per row, computed so that it cannot overflow: ‖x‖ = a·‖x/a‖ with a = max_k |x_k|.

    The plain sum of squares overflows once ‖x‖² exceeds the dtype's largest value (‖x‖ ≳
    1.8e19 in float32, 256 in float16), giving ‖x‖ = inf, cos θ = 0 and a zero gradient. With
    the row's largest magnitude factored out every square is ≤ 1. ``a`` is a constant for the
    gradient (detached): ‖x‖ is positively homogeneous, so ∂‖x‖/∂x = x/‖x‖ exactly. A zero
    row keeps norm 0.
    """
    largest = x.detach().abs().amax(dim=1, keepdim=True)
    scale = torch.where(largest > 0, largest, torch.ones_like(largest))
    return torch.linalg.vector_norm(x / scale, dim=1) * scale.squeeze(1)


def _autocast_disabled(device: torch.device):
    if device.type in ("cpu", "cuda", "xpu", "mps", "hpu"):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()
