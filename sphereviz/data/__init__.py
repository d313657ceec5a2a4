"""The data layer: MNIST / Fashion-MNIST, face folders, alignment, the face cache, LFW protocol.

Everything here returns ``uint8`` arrays wrapped in :class:`ArrayDataset`; turning them into
normalised tensors is :mod:`sphereviz.data.tensors` (imported lazily: it needs torch, the rest
of the data layer does not).
"""

from __future__ import annotations

from sphereviz.data.align import (
    CROP_SHAPE,
    REFERENCE_POINTS,
    UnreadableImageError,
    align_face,
    center_crop_face,
    decode_image,
    load_face_crop,
    read_landmarks,
    similarity_transform,
)
from sphereviz.data.align_pool import align_images
from sphereviz.data.arrays import ArrayDataset
from sphereviz.data.face_cache import FaceCache, load_face_cache
from sphereviz.data.faces import CASIA_LFW_OVERLAP, FaceFolder
from sphereviz.data.lfw import (
    LFW_LANDMARK_FRAME,
    Pair,
    Person,
    default_landmarks,
    default_lfw_root,
    lfw_image_path,
    lfw_images_dir,
    load_lfw_crops,
    pair_image_index,
    read_pairs,
    read_people,
    resolve_pairs,
    view1_training_people,
)
from sphereviz.data.mnist import load_fashion_mnist, load_mnist, read_idx, write_idx
from sphereviz.data.prepare import prepare_faces

_LAZY = {
    "BatchIterator": "sphereviz.data.tensors",
    "PixelNormalisation": "sphereviz.data.tensors",
    "to_training_tensors": "sphereviz.data.tensors",
}

__all__ = [
    "CASIA_LFW_OVERLAP",
    "CROP_SHAPE",
    "LFW_LANDMARK_FRAME",
    "REFERENCE_POINTS",
    "ArrayDataset",
    "BatchIterator",
    "FaceCache",
    "FaceFolder",
    "Pair",
    "Person",
    "PixelNormalisation",
    "UnreadableImageError",
    "align_face",
    "align_images",
    "center_crop_face",
    "decode_image",
    "default_landmarks",
    "default_lfw_root",
    "lfw_image_path",
    "lfw_images_dir",
    "load_face_cache",
    "load_face_crop",
    "load_fashion_mnist",
    "load_lfw_crops",
    "load_mnist",
    "pair_image_index",
    "prepare_faces",
    "read_idx",
    "read_landmarks",
    "read_pairs",
    "read_people",
    "resolve_pairs",
    "similarity_transform",
    "to_training_tensors",
    "view1_training_people",
    "write_idx",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sphereviz.data' has no attribute {name!r}")
