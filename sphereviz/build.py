"""From a config to torch modules: the feature network, the loss (which owns W), both in one.

:func:`build_model_and_loss` makes the network of ``config.model`` and the loss of
``config.loss`` with its options (m, s, the λ schedule, SphereFace2's α, t, weight);
:class:`Classifier` joins them in one module, so DistributedDataParallel also syncs W's
gradient. Kept apart from :mod:`sphereviz.config`, which imports no torch.
"""

from __future__ import annotations

import torch
from torch import nn

from sphereviz.config import TrainConfig, _loss_options
from sphereviz.losses import make_loss
from sphereviz.model_names import canonical_model_name
from sphereviz.models import build_model

__all__ = ["Classifier", "build_model_and_loss"]


def build_model_and_loss(
    config: TrainConfig, num_classes: int, total_steps: int | None = None
) -> tuple[nn.Module, nn.Module]:
    """The feature network and the loss (which owns the class weights) of ``config``;
    ``total_steps`` fixes a λ schedule given as a fraction of the run."""
    if canonical_model_name(config.model) == "mnistnet":
        options = {"width": config.width}
    else:
        options = {} if config.sfnet_width is None else {"width": config.sfnet_width}
    model = build_model(config.model, config.dim, **options)
    loss = make_loss(config.loss, num_classes, config.dim, **_loss_options(config, total_steps))
    return model, loss


class Classifier(nn.Module):
    """Features and loss in one module, so DistributedDataParallel also syncs W's gradient."""

    def __init__(self, model: nn.Module, loss: nn.Module):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, images: torch.Tensor, labels: torch.Tensor):
        features = self.model(images)
        return self.loss(features, labels), features
