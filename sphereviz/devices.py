"""Which torch device to run on, checked before any work: a clear error for one that is absent.

``torch.device("cuda")`` succeeds on a machine without a GPU; the failure comes later, deep
inside torch (``AssertionError: Torch not compiled with CUDA enabled``), or as a misleading
"damaged checkpoint" when a checkpoint is mapped onto it. :func:`require_device` checks first.
"""

from __future__ import annotations

import torch

__all__ = ["require_device"]

DEVICE_CHOICES = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"


def require_device(name: str | torch.device = "auto") -> torch.device:
    """The device ``name`` names, if this machine has it; else a ValueError saying what to do.

    ``auto`` picks CUDA if available, then Apple MPS, then the CPU. ``cuda:N`` needs at least
    N + 1 visible GPUs.
    """
    if isinstance(name, str) and name.strip().lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name.strip().lower() if isinstance(name, str) else name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be {DEVICE_CHOICES}, got {name!r}") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = f"CUDA {torch.version.cuda}" if torch.version.cuda else "without CUDA"
            raise ValueError(
                f"device {name!r}: this machine has no usable CUDA GPU (torch {torch.__version__}"
                f", built {built}); use --device cpu (or auto, which picks what is there)"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"device {name!r}: only {count} CUDA GPU(s) visible (cuda:0 … cuda:{count - 1}); "
                "pick one of those, or check CUDA_VISIBLE_DEVICES"
            )
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(
                f"device {name!r}: Apple MPS is not available here (it needs macOS on Apple "
                "silicon); use --device cpu (or auto)"
            )
        return device
    raise ValueError(f"device must be {DEVICE_CHOICES}, got {name!r}")
