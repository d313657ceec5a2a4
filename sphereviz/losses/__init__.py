"""The angular-margin loss family as ``nn.Module``s, one small file per loss.

Every loss has the same API (see ``base.MarginLoss``): ``forward(embeddings, labels)`` returns
the mean cross-entropy with the margin on the target logit, ``get_logits(embeddings)`` the plain
logits (N, C), ``class_weights()`` the class vectors (C, d), and the attributes ``W`` (d, C),
``num_classes``, ``embedding_size``, ``current_lambda``.

``make_loss(name, num_classes, embedding_size, **kwargs)`` builds one by name for configs and
the command line; ``LOSS_NAMES`` lists the names.
"""

from __future__ import annotations

import inspect

from sphereviz.loss_names import LOSS_ALIASES
from sphereviz.loss_names import canonical_loss_name as _canonical_loss_name
from sphereviz.losses.a_softmax import SPHEREFACE_SCHEDULE, ASoftmaxLoss
from sphereviz.losses.arcface import ArcFaceLoss
from sphereviz.losses.base import MarginLoss
from sphereviz.losses.cosface import CosFaceLoss
from sphereviz.losses.l_softmax import L_SOFTMAX_SCHEDULE, LSoftmaxLoss
from sphereviz.losses.modified_softmax import ModifiedSoftmaxLoss
from sphereviz.losses.normface import NormFaceLoss
from sphereviz.losses.softmax import SoftmaxLoss
from sphereviz.losses.sphereface2 import SphereFace2Loss
from sphereviz.losses.sphereface_r import SphereFaceRLoss

__all__ = [
    "LOSS_ALIASES",
    "LOSS_CLASSES",
    "LOSS_NAMES",
    "L_SOFTMAX_SCHEDULE",
    "SPHEREFACE_SCHEDULE",
    "ASoftmaxLoss",
    "ArcFaceLoss",
    "CosFaceLoss",
    "LSoftmaxLoss",
    "MarginLoss",
    "ModifiedSoftmaxLoss",
    "NormFaceLoss",
    "SoftmaxLoss",
    "SphereFace2Loss",
    "SphereFaceRLoss",
    "canonical_loss_name",
    "make_loss",
]

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
LOSS_NAMES: tuple[str, ...] = tuple(LOSS_CLASSES)
"""The canonical loss names accepted by ``make_loss`` (aliases: ``LOSS_ALIASES``)."""


def canonical_loss_name(name: str, known: tuple[str, ...] = LOSS_NAMES) -> str:
    """The canonical name of ``name`` among ``known`` (default ``LOSS_NAMES``): case-insensitive,
    "_" for "-", aliases of ``LOSS_ALIASES`` resolved (``sphereviz.loss_names``, shared with
    ``geometry`` and ``train``); a ValueError listing the choices otherwise."""
    return _canonical_loss_name(name, known)


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
