"""The one in-memory dataset type that every loader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class ArrayDataset:
    """Images and integer labels held as numpy arrays.

    Attributes:
        images: ``uint8``, ``N×H×W`` for digits (MNIST, Fashion-MNIST) or ``N×112×96×3`` (RGB)
            for aligned faces; may be a read-only memory map.
        labels: ``int64``, ``N``, each in ``0 … num_classes − 1``.
        class_names: the name of class ``k`` at index ``k``.
        source: a human description of where the data came from.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    source: str

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8:
            raise ValueError(
                f"ArrayDataset images must be uint8, got {self.images.dtype}; "
                "convert with np.clip(x, 0, 255).astype(np.uint8)"
            )
        if self.images.ndim not in (3, 4):
            raise ValueError(
                f"ArrayDataset images must be N×H×W or N×H×W×C, got shape {self.images.shape}"
            )
        if self.labels.dtype != np.int64 or self.labels.ndim != 1:
            raise ValueError(
                f"ArrayDataset labels must be a 1-D int64 array, got {self.labels.dtype} "
                f"with shape {self.labels.shape}"
            )
        if len(self.labels) != len(self.images):
            raise ValueError(
                f"ArrayDataset has {len(self.images)} images but {len(self.labels)} labels; "
                "they must match one to one"
            )
        if len(self.labels) and (
            self.labels.min() < 0 or self.labels.max() >= len(self.class_names)
        ):
            raise ValueError(
                f"ArrayDataset labels must lie in 0 … {len(self.class_names) - 1} "
                f"(one per class name), got {self.labels.min()} … {self.labels.max()}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> np.ndarray:
        """Number of images of each class, ``int64`` of length ``num_classes``."""
        return np.bincount(self.labels, minlength=self.num_classes).astype(np.int64)
