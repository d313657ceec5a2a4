"""The networks that map an image to its feature vector x (the "embedding").

Two families:

- ``MnistNet``: a small PReLU CNN for 28×28 digits whose last layer is a linear map to a
  2-, 3- or higher-dimensional feature, so the features can be drawn on the circle or sphere.
- ``SFNet``: the SphereFace residual CNN (Liu et al., CVPR 2017, Table 2) for 112×96 faces,
  in depths 4, 10, 20, 36 and 64.

Neither applies an activation after the last linear layer: the angle between x and the class
weights W_j is what the losses read, and a ReLU would confine x to the positive orthant.
The losses own the class weights; the networks stop at x.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sphereviz.model_names import MODEL_NAMES, SFNET_UNITS_PER_STAGE, canonical_model_name
from sphereviz.validation import check_int

__all__ = [
    "FLIP_MODES",
    "MODEL_NAMES",
    "SFNET_UNITS_PER_STAGE",
    "MnistNet",
    "SFNet",
    "build_model",
    "combine_flip_features",
    "extract_features",
]

SFNET_STAGE_CHANNELS = (64, 128, 256, 512)
FACE_HEIGHT, FACE_WIDTH = 112, 96

FLIP_MODES = ("concat", "sum")
"""How f(image) and f(flipped image) make one feature: concatenated or summed."""


def _check_embedding_dim(embedding_dim) -> int:
    return check_int(
        "embedding_dim", embedding_dim, min=2,
        hint="use 2 or 3 to draw features on the circle or sphere, 512 for faces",
    )  # fmt: skip


class MnistNet(nn.Module):
    """A small CNN for 28×28 grey images: three conv blocks, then x = W·h + b in R^d.

    Each block is [3×3 conv → BatchNorm → PReLU] × 2 followed by 2×2 max pooling
    (28 → 14 → 7 → 3), with ``width``, 2·``width`` and 4·``width`` channels (the layout of the
    L-Softmax / SphereFace MNIST nets, made narrower to train in seconds on a CPU).
    The final linear layer has no activation after it.
    """

    def __init__(self, embedding_dim: int = 3, width: int = 16):
        super().__init__()
        self.embedding_dim = _check_embedding_dim(embedding_dim)
        width = check_int("width", width, min=1)
        channels = (1, width, 2 * width, 4 * width)
        blocks = []
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.PReLU(c_out),
                nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.PReLU(c_out),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*blocks)
        self.embedding = nn.Linear(channels[-1] * 3 * 3, embedding_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (N, 1, 28, 28) normalised → features x: (N, embedding_dim)."""
        return self.embedding(self.features(images).flatten(1))


class ResidualUnit(nn.Module):
    """x + PReLU(conv(PReLU(conv(x)))): two 3×3 convs with an identity shortcut, no BN."""

    def __init__(self, channels: int, batch_norm: bool = False):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_prelu(channels, channels, stride=1, batch_norm=batch_norm),
            *_conv_prelu(channels, channels, stride=1, batch_norm=batch_norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _conv_prelu(c_in: int, c_out: int, stride: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.PReLU(c_out))
    return layers


class SFNet(nn.Module):
    """SphereFace's residual CNN ("sphere" network), input 112×96 RGB, feature in R^512.

    Four stages with 64/128/256/512 channels (``width``, 2·, 4·, 8·``width``: a narrower net
    for a quick run on a CPU, e.g. 16 at a tenth of the cost; the paper's is 64). Each stage:
    a 3×3 stride-2 conv + PReLU
    (112×96 → 56×48 → 28×24 → 14×12 → 7×6), then n residual units of
    [3×3 conv + PReLU] × 2 with identity shortcut. Units per stage (paper, Table 2):
    SFNet-4 (0,0,0,0), -10 (0,1,2,0), -20 (1,2,4,1), -36 (2,4,8,2), -64 (3,8,16,3).
    No batch norm (unless ``batch_norm=True``, a common modern variant), no pooling; an FC
    layer 8·``width``·7·6 → ``embedding_dim`` with no activation after it.

    Initialisation follows the official Caffe prototxt: Caffe's "xavier" (uniform on
    ±√(3/fan_in)) for the stride-2 convs and the FC layer, Gaussian (std 0.01) for the convs
    inside residual units, PReLU slopes 0.25, biases 0.
    """

    def __init__(
        self,
        depth: int = 20,
        embedding_dim: int = 512,
        batch_norm: bool = False,
        width: int = SFNET_STAGE_CHANNELS[0],
    ):
        super().__init__()
        width = check_int("width", width, min=1)
        if depth not in SFNET_UNITS_PER_STAGE:
            raise ValueError(
                f"SFNet depth must be one of {sorted(SFNET_UNITS_PER_STAGE)}, got {depth!r}"
            )
        self.depth = depth
        self.embedding_dim = _check_embedding_dim(embedding_dim)
        stages = []
        c_in = 3
        channels = [width * 2**stage for stage in range(len(SFNET_STAGE_CHANNELS))]
        for c_out, units in zip(channels, SFNET_UNITS_PER_STAGE[depth], strict=True):
            stage = nn.Sequential(
                *_conv_prelu(c_in, c_out, stride=2, batch_norm=batch_norm),
                *(ResidualUnit(c_out, batch_norm) for _ in range(units)),
            )
            stages.append(stage)
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.embedding = nn.Linear(c_in * (FACE_HEIGHT // 16) * (FACE_WIDTH // 16), embedding_dim)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.zeros_(module.bias)
                # Caffe's xavier filler: U(±√(3/fan_in)), which is kaiming_uniform with a = 1.
                nn.init.kaiming_uniform_(module.weight, a=1)
        for module in self.modules():
            if isinstance(module, ResidualUnit):
                for conv in module.body:
                    if isinstance(conv, nn.Conv2d):
                        nn.init.normal_(conv.weight, std=0.01)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (N, 3, 112, 96) normalised → features x: (N, embedding_dim)."""
        return self.embedding(self.stages(images).flatten(1))


def build_model(name: str, embedding_dim: int, **kwargs) -> nn.Module:
    """The model called ``name`` ("mnistnet", "sfnet4", "sfnet10", … "sfnet64")."""
    key = canonical_model_name(name)
    if key == "mnistnet":
        return MnistNet(embedding_dim, **kwargs)
    return SFNet(int(key.removeprefix("sfnet")), embedding_dim, **kwargs)


# ---------------------------------------------------------------------------------------------
# Features of a data set


@torch.no_grad()
def extract_features(
    model: torch.nn.Module,
    images: np.ndarray,
    device: str | torch.device | None = None,
    batch_size: int = 256,
    flip: str | None = None,
) -> np.ndarray:
    """Features of ``uint8`` images (N×H×W digits or N×112×96×3 faces), as float32 (N, d).

    The model runs in eval mode on ``device`` (default: where its parameters are), under bf16
    autocast on CUDA, on batches normalised as in training. ``flip`` None gives f(image);
    "concat" / "sum" combine it with f(horizontally flipped image) (SphereFace's LFW feature).
    """
    from sphereviz.data.tensors import BatchIterator

    if flip is not None and flip not in FLIP_MODES:
        raise ValueError(f"flip must be None or one of {FLIP_MODES}, got {flip!r}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    on_cuda = device.type == "cuda"
    batches = BatchIterator(
        images,
        np.zeros(len(images), dtype=np.int64),
        batch_size,
        shuffle=False,
        generator=0,
        device=device,
        channels_last=True,
    )
    features, flipped = [], []
    for x, _ in batches:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=on_cuda):
            features.append(model(x).float().cpu())
            if flip is not None:
                flipped.append(model(x.flip(3)).float().cpu())
    model.train(was_training)
    result = torch.cat(features).numpy() if features else np.zeros((0, 0), np.float32)
    if flip is None:
        return result
    return combine_flip_features(result, torch.cat(flipped).numpy(), flip).astype(np.float32)


def combine_flip_features(features, flipped_features, mode: str = "concat") -> np.ndarray:
    """The feature of a face from f(image) and f(flipped image): [f; f_flip] or f + f_flip."""
    features, flipped_features = np.asarray(features), np.asarray(flipped_features)
    if features.shape != flipped_features.shape or features.ndim != 2:
        raise ValueError(
            "features and flipped_features must both be (N, d), "
            f"got {features.shape} and {flipped_features.shape}"
        )
    if mode == "concat":
        return np.concatenate([features, flipped_features], axis=1)
    if mode == "sum":
        return features + flipped_features
    raise ValueError(f"flip mode must be one of {FLIP_MODES}, got {mode!r}")
