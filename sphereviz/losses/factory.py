"""``make_loss``: build a loss of the family by name (imports torch and every loss class)."""

from __future__ import annotations

import inspect

from sphereviz.losses.a_softmax import ASoftmaxLoss
from sphereviz.losses.arcface import ArcFaceLoss
from sphereviz.losses.base import MarginLoss
from sphereviz.losses.cosface import CosFaceLoss
from sphereviz.losses.l_softmax import LSoftmaxLoss
from sphereviz.losses.modified_softmax import ModifiedSoftmaxLoss
from sphereviz.losses.normface import NormFaceLoss
from sphereviz.losses.registry import LOSS_NAMES, canonical_loss_name
from sphereviz.losses.softmax import SoftmaxLoss
from sphereviz.losses.sphereface2 import SphereFace2Loss
from sphereviz.losses.sphereface_r import SphereFaceRLoss

__all__ = ["LOSS_CLASSES", "make_loss"]

LOSS_CLASSES: dict[str, type[MarginLoss]] = {
    "softmax": SoftmaxLoss,
    "modified-softmax": ModifiedSoftmaxLoss,
    "a-softmax": ASoftmaxLoss,
    "l-softmax": LSoftmaxLoss,
    "normface": NormFaceLoss,
    "cosface": CosFaceLoss,
    "arcface": ArcFaceLoss,
    "sphereface-r": SphereFaceRLoss,
    "sphereface2": SphereFace2Loss,
}
"""The class of each loss, keyed by the registry's canonical names (``LOSS_NAMES``)."""

if tuple(LOSS_CLASSES) != LOSS_NAMES:  # pragma: no cover - a registry edit without a class
    raise ImportError(f"LOSS_CLASSES {tuple(LOSS_CLASSES)} must list LOSS_NAMES {LOSS_NAMES}")


def make_loss(name: str, num_classes: int, embedding_size: int, **kwargs) -> MarginLoss:
    """Build the loss called ``name`` (one of ``LOSS_NAMES`` or an alias such as "sphereface").

    Names are case-insensitive and "_" may stand for "-". ``kwargs`` are the loss's own
    constructor arguments (``margin``, ``scale``, ``lambda_schedule``, ``easy_margin``;
    SphereFace2 also ``alpha``, ``t``, ``loss_weight``).
    """
    key = canonical_loss_name(name)
    loss_class = LOSS_CLASSES[key]
    accepted = [
        parameter
        for parameter in inspect.signature(loss_class).parameters
        if parameter not in ("num_classes", "embedding_size")
    ]
    unexpected = sorted(set(kwargs) - set(accepted))
    if unexpected:
        allowed = ", ".join(accepted) if accepted else "no options"
        raise ValueError(
            f"loss {key!r} does not take {', '.join(unexpected)}; it accepts: {allowed}"
        )
    return loss_class(num_classes, embedding_size, **kwargs)
