"""The angular-margin loss family as ``nn.Module``s, one small file per loss.

Every loss has the same API (see ``base.MarginLoss``): ``forward(embeddings, labels)`` returns
the mean cross-entropy with the margin on the target logit, ``get_logits(embeddings)`` the plain
logits (N, C), ``class_weights()`` the class vectors (C, d), and the attributes ``W`` (d, C),
``num_classes``, ``embedding_size``, ``current_lambda``.

``make_loss(name, num_classes, embedding_size, **kwargs)`` builds one by name for configs and
the command line; ``LOSS_NAMES`` lists the names, ``loss_spec(name)`` what is known of each
(``registry``: titles, aliases, default margins and their ranges).

The registry is imported eagerly and needs no torch; the loss classes and ``make_loss`` are
imported on first use (PEP 562), so ``import sphereviz.losses.registry`` (and ``geometry``,
which reads it) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from sphereviz.losses.registry import (
    LOSS_ALIASES,
    LOSS_NAMES,
    LOSS_SPECS,
    LossSpec,
    canonical_loss_name,
    check_margin,
    loss_spec,
)

if TYPE_CHECKING:  # the lazy names, spelled out for type checkers and the import graph
    from sphereviz.losses.a_softmax import SPHEREFACE_SCHEDULE, ASoftmaxLoss
    from sphereviz.losses.arcface import ArcFaceLoss
    from sphereviz.losses.base import MarginLoss
    from sphereviz.losses.cosface import CosFaceLoss
    from sphereviz.losses.factory import LOSS_CLASSES, make_loss
    from sphereviz.losses.l_softmax import L_SOFTMAX_SCHEDULE, LSoftmaxLoss
    from sphereviz.losses.modified_softmax import ModifiedSoftmaxLoss
    from sphereviz.losses.normface import NormFaceLoss
    from sphereviz.losses.softmax import SoftmaxLoss
    from sphereviz.losses.sphereface2 import SphereFace2Loss
    from sphereviz.losses.sphereface_r import SphereFaceRLoss

_LAZY: dict[str, str] = {
    "LOSS_CLASSES": "factory",
    "make_loss": "factory",
    "L_SOFTMAX_SCHEDULE": "l_softmax",
    "LSoftmaxLoss": "l_softmax",
    "SPHEREFACE_SCHEDULE": "a_softmax",
    "ASoftmaxLoss": "a_softmax",
    "ArcFaceLoss": "arcface",
    "CosFaceLoss": "cosface",
    "MarginLoss": "base",
    "ModifiedSoftmaxLoss": "modified_softmax",
    "NormFaceLoss": "normface",
    "SoftmaxLoss": "softmax",
    "SphereFace2Loss": "sphereface2",
    "SphereFaceRLoss": "sphereface_r",
}
"""Each torch-based name of the package and the submodule that defines it."""

__all__ = [
    "LOSS_ALIASES",
    "LOSS_CLASSES",
    "LOSS_NAMES",
    "LOSS_SPECS",
    "L_SOFTMAX_SCHEDULE",
    "SPHEREFACE_SCHEDULE",
    "ASoftmaxLoss",
    "ArcFaceLoss",
    "CosFaceLoss",
    "LSoftmaxLoss",
    "LossSpec",
    "MarginLoss",
    "ModifiedSoftmaxLoss",
    "NormFaceLoss",
    "SoftmaxLoss",
    "SphereFace2Loss",
    "SphereFaceRLoss",
    "canonical_loss_name",
    "check_margin",
    "loss_spec",
    "make_loss",
]


def __getattr__(name: str):
    """Import a loss class (or ``make_loss``) from its submodule on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
