"""The names of the feature networks, without torch: what a config may name and how it is read.

``canonical_model_name`` is the one place a model name is normalised (case, "-" and "_"), so
the config's checks and ``models.build_model`` agree on every spelling.
"""

from __future__ import annotations

__all__ = ["MODEL_NAMES", "SFNET_UNITS_PER_STAGE", "canonical_model_name", "is_sfnet"]

#: Residual units per stage of SFNet-N (SphereFace Table 2).
SFNET_UNITS_PER_STAGE: dict[int, tuple[int, int, int, int]] = {
    4: (0, 0, 0, 0),
    10: (0, 1, 2, 0),
    20: (1, 2, 4, 1),
    36: (2, 4, 8, 2),
    64: (3, 8, 16, 3),
}

MODEL_NAMES = ("mnistnet", *(f"sfnet{depth}" for depth in SFNET_UNITS_PER_STAGE))


def canonical_model_name(name: str) -> str:
    """``name`` as one of :data:`MODEL_NAMES` ("SFNet-20", "sfnet_20" → "sfnet20")."""
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}: model must be one of {', '.join(MODEL_NAMES)}")
    return key


def is_sfnet(name: str) -> bool:
    """True for the face networks (SFNet-N, 3×112×96 input), False for MnistNet (1×28×28)."""
    return canonical_model_name(name).startswith("sfnet")
