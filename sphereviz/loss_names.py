"""The names of the losses: the alias table and the one name resolver (no torch import).

``sphereviz.losses`` (``make_loss``), ``sphereviz.train`` and ``sphereviz.geometry`` (which must
not import torch) all resolve loss names through :func:`canonical_loss_name`.
"""

from __future__ import annotations

__all__ = ["LOSS_ALIASES", "canonical_loss_name"]

LOSS_ALIASES: dict[str, str] = {
    "sphereface": "a-softmax",
    "asoftmax": "a-softmax",
    "largemargin": "l-softmax",
    "norm-softmax": "normface",
    "am-softmax": "cosface",
    "lmcl": "cosface",
    "spherefacer": "sphereface-r",
    "sphereface-revived": "sphereface-r",
}
"""Other names of the losses, mapped to their canonical names."""


def canonical_loss_name(name: str, known: tuple[str, ...]) -> str:
    """The canonical name of ``name``: case-insensitive, "_" for "-", aliases resolved.

    Raises a ValueError listing ``known`` and the aliases that lead to them when the result
    is not one of ``known``.
    """
    key = str(name).strip().lower().replace("_", "-")
    key = LOSS_ALIASES.get(key, key)
    if key not in known:
        aliases = tuple(alias for alias, target in LOSS_ALIASES.items() if target in known)
        raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(known + aliases)}")
    return key
