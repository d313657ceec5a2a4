"""Training-time pipeline: ``uint8`` image arrays → normalised ``float`` NCHW batches.

The uint8 arrays stay uint8 until a batch is drawn: on CUDA the whole array is copied to the
GPU once when it fits (a 13,000-face LFW cache is 0.4 GB, all of CASIA-WebFace 16 GB), and
gathering, normalisation and the random flip run there on the whole batch; on the CPU the
batch is gathered straight from the (possibly memory-mapped) numpy array.

Normalisation ``x = (v − offset) / scale``:

* faces (SphereFace's recipe): ``(v − 127.5) / 128``, so ``x ∈ [−0.996, 0.996]``;
* digits: ``v / 255`` standardised with the usual MNIST statistics, ``(v/255 − 0.1307) / 0.3081``
  (:meth:`PixelNormalisation.from_images` gives a data set's own statistics instead).

All randomness (the shuffle and the flips) comes from one CPU ``torch.Generator``, so a seed
gives the same batches on the CPU and on the GPU.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from sphereviz.validation import check_int

FACE_OFFSET = 127.5
FACE_SCALE = 128.0
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
_UPLOAD_CHUNK_BYTES = 256 * 2**20


@dataclass(frozen=True)
class PixelNormalisation:
    """``x = (v − offset) / scale`` for ``uint8`` pixel values ``v``."""

    offset: float
    scale: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.offset) and math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(
                f"normalisation needs a finite offset and a positive scale, got {self}"
            )

    @classmethod
    def faces(cls) -> PixelNormalisation:
        """SphereFace's ``(v − 127.5) / 128``."""
        return cls(FACE_OFFSET, FACE_SCALE)

    @classmethod
    def digits(cls, mean: float = MNIST_MEAN, std: float = MNIST_STD) -> PixelNormalisation:
        """``(v/255 − mean) / std``, i.e. offset ``255·mean`` and scale ``255·std``."""
        return cls(255.0 * mean, 255.0 * std)

    @classmethod
    def from_images(cls, images: np.ndarray) -> PixelNormalisation:
        """Standardise with the pixel mean and standard deviation of ``images`` (a training set)."""
        values = np.asarray(images, dtype=np.float64)
        return cls(float(values.mean()), float(values.std()) or 1.0)

    def apply(self, pixels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return pixels.to(dtype).sub_(self.offset).mul_(1.0 / self.scale)


def default_normalisation(images: np.ndarray | torch.Tensor) -> PixelNormalisation:
    """Faces (``N×H×W×3``) → :meth:`PixelNormalisation.faces`; digits → ``.digits()``."""
    is_colour = images.ndim == 4 and images.shape[-1] == 3
    return PixelNormalisation.faces() if is_colour else PixelNormalisation.digits()


def _check_images(images: np.ndarray | torch.Tensor) -> None:
    if images.dtype not in (np.uint8, torch.uint8):
        raise ValueError(f"images must be uint8 (N×H×W or N×H×W×C), got dtype {images.dtype}")
    if images.ndim not in (3, 4):
        raise ValueError(
            f"images must be N×H×W (digits) or N×H×W×C (faces), got shape {tuple(images.shape)}"
        )


def fits_on_device(num_bytes: int, device: torch.device, fraction: float = 0.5) -> bool:
    """Whether ``num_bytes`` fit in ``fraction`` of the device's free memory (CPU: always)."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return num_bytes <= fraction * free


def to_training_tensors(
    images: np.ndarray,
    labels: np.ndarray,
    device: str | torch.device | None = None,
    max_fraction_of_free_memory: float = 0.5,
) -> tuple[torch.Tensor | np.ndarray, torch.Tensor]:
    """Place a ``uint8`` image array and its labels where batches will be drawn from.

    On CUDA, when the images take at most ``max_fraction_of_free_memory`` of the free GPU
    memory, they are copied there once (in 256 MB chunks, so a memory-mapped cache is never
    read into host memory whole) and a ``uint8`` CUDA tensor is returned; otherwise the numpy
    array is returned as is and each batch is gathered on the host. Labels become ``int64``
    on the same device as the images.
    """
    _check_images(images)
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels; they must match")
    device = _resolve_device(device)
    if isinstance(images, torch.Tensor):
        return images.to(device), labels.to(device)
    if device.type == "cpu" or not fits_on_device(
        images.nbytes, device, max_fraction_of_free_memory
    ):
        return images, labels
    resident = torch.empty(images.shape, dtype=torch.uint8, device=device)
    per_row = max(1, images[0].nbytes if len(images) else 1)
    step = max(1, _UPLOAD_CHUNK_BYTES // per_row)
    for start in range(0, len(images), step):
        chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + step]))
        resident[start : start + step].copy_(chunk)
    return resident, labels.to(device)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    """``"cuda"`` → ``cuda:<current>`` so that it compares equal to a tensor's device."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _make_generator(generator: torch.Generator | int | None) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        if generator.device.type != "cpu":
            raise ValueError(
                "BatchIterator needs a CPU torch.Generator (same batches on any device)"
            )
        return generator
    made = torch.Generator()
    if generator is None:
        made.seed()
    else:
        made.manual_seed(int(generator))
    return made


class BatchIterator:
    """Seeded mini-batches ``(x, y)`` of normalised ``float`` NCHW images and ``int64`` labels.

    Args:
        images: ``uint8`` ``N×H×W`` (digits → ``N×1×H×W``) or ``N×H×W×C`` (faces →
            ``N×C×H×W``); a numpy array (also a memory map) or a tensor. On CUDA a numpy array
            is made resident on the GPU when it fits (:func:`to_training_tensors`).
        labels: ``N`` integer labels.
        batch_size: images per batch; the last batch is smaller unless ``drop_last``.
        shuffle: a new random order each epoch (each ``iter()``), drawn from ``generator``.
        flip: flip each image horizontally with probability 1/2 (SphereFace's augmentation).
        generator: a CPU ``torch.Generator`` or an integer seed; ``None`` seeds from the OS.
        device: where the batches go (default: the CPU).
        normalisation: default :func:`default_normalisation` of ``images``.
        channels_last: return batches in channels-last memory format (same NCHW shape).
        dtype: the batches' float type.
    """

    def __init__(
        self,
        images: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        flip: bool = False,
        generator: torch.Generator | int | None = None,
        device: str | torch.device | None = None,
        normalisation: PixelNormalisation | None = None,
        drop_last: bool = False,
        channels_last: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        _check_images(images)
        batch_size = check_int("batch_size", batch_size, min=1)
        self.device = _resolve_device(device)
        labels = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else labels
        self.images, self.labels = to_training_tensors(images, labels, self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.flip = flip
        self.generator = _make_generator(generator)
        self.normalisation = normalisation or default_normalisation(images)
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.dtype = dtype

    def __len__(self) -> int:
        count = len(self.labels)
        return count // self.batch_size if self.drop_last else math.ceil(count / self.batch_size)

    @property
    def resident_on_device(self) -> bool:
        """Whether the uint8 images live on the batches' device (no host gather per step)."""
        return isinstance(self.images, torch.Tensor) and self.images.device == self.device

    def _gather(self, index: torch.Tensor) -> torch.Tensor:
        if isinstance(self.images, torch.Tensor):
            return self.images[index.to(self.images.device)].to(self.device, non_blocking=True)
        pixels = torch.from_numpy(np.ascontiguousarray(self.images[index.numpy()]))
        if self.device.type == "cuda":
            pixels = pixels.pin_memory()
        return pixels.to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        count = len(self.labels)
        order = (
            torch.randperm(count, generator=self.generator) if self.shuffle else torch.arange(count)
        )
        for batch in range(len(self)):
            index = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            x = self.normalisation.apply(self._gather(index), self.dtype)
            x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
            if self.flip:
                mirrored = torch.rand(len(index), generator=self.generator) < 0.5
                mirrored = mirrored.to(self.device).view(-1, 1, 1, 1)
                x = torch.where(mirrored, x.flip(3), x)
            memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
            x = x.contiguous(memory_format=memory_format)
            y = self.labels[index.to(self.labels.device)].to(self.device, non_blocking=True)
            yield x, y
