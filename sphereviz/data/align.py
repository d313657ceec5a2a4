"""Face alignment: decode an image and warp it to SphereFace's 112×96 crop.

The official SphereFace preprocessing maps five facial landmarks (left eye, right eye, nose,
left and right mouth corners) onto fixed reference points of a 112×96 (H×W) crop with the
similarity transform (rotation, uniform scale, translation; 4 degrees of freedom) that fits
them best in the least-squares sense (Umeyama 1991; MATLAB's ``cp2tform('similarity')`` in
the official release; here its closed form, checked against scikit-image in the tests). With
real landmarks the fit is not exact: on LFW the worst of the five points lands a median of
about 5 px from its reference point (pose and expression differ from the reference face);
what is exact is that no other similarity transform does better.

Without landmarks, :func:`center_crop_face` takes the window that the average alignment of
LFW takes (measured on its 13,232 landmark sets), a fixed crop that suits face-detector crops
such as LFW and CASIA-WebFace (``crop="window"``). Images in which the face already fills the
frame (the ORL/AT&T faces, crops aligned by another tool) would lose their outer half to that
window; ``crop="whole"`` keeps the whole image instead: the largest centred window of the
crop's 96:112 aspect, scaled to 112×96.

Crops are RGB ``uint8``. Decoding is OpenCV's (``cv2.imdecode``), warping ``cv2.warpAffine``
with bilinear interpolation and black outside the image.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from sphereviz.fileio import read_text_file
from sphereviz.validation import check_choice

CROP_HEIGHT = 112
CROP_WIDTH = 96
CROP_SHAPE = (CROP_HEIGHT, CROP_WIDTH, 3)
LANDMARK_NAMES = ("left eye", "right eye", "nose", "left mouth corner", "right mouth corner")
# SphereFace's reference points (x, y) in the 96-wide, 112-high crop, in LANDMARK_NAMES order.
REFERENCE_POINTS = np.array(
    [
        (30.2946, 51.6963),
        (65.5318, 51.5014),
        (48.0252, 71.7366),
        (33.5493, 92.3655),
        (62.7299, 92.2041),
    ],
    dtype=np.float64,
)
# The average SphereFace alignment of LFW, as a fixed window: 0.446 of the shorter side wide
# (height = width · 112/96), centred at 50 % of the width and 46.6 % of the height.
CENTER_CROP_WIDTH_FRACTION = 0.446
CENTER_CROP_CENTER = (0.5, 0.466)
#: Centre crops without landmarks: "window" (LFW's average alignment, for detector crops) or
#: "whole" (the image is a face crop already: all of it, at the crop's aspect).
CROPS = ("window", "whole")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".pgm")

LandmarkFrame = int | tuple[int, int] | None


class UnreadableImageError(ValueError):
    """An image file that is missing, empty, corrupt or truncated."""


class NotAFaceError(ValueError):
    """An image that decodes but cannot hold an aligned face (its message starts "not a face")."""


MIN_FACE_SIDE = 16
"""The smallest image side (pixels) that can hold a face; smaller ones give an empty crop."""
LANDMARK_SLACK = 0.25
"""Landmarks may lie this fraction of the image size outside it (faces cut by the border)."""
LANDMARK_NEGATIVE_TOLERANCE = 16.0
"""Without a frame, a landmark file's coordinates may be this far (pixels) below 0."""
LANDMARK_MAX_COORDINATE = 65535.0
"""Without a frame, no coordinate may exceed the largest side a JPEG can have."""
MIN_EYE_DISTANCE = 2.0
"""Eyes closer than this (pixels, in the image's frame) carry no scale or rotation."""
UNIFORM_FRACTION = 0.97
"""A crop with this fraction of its pixels within ±4 levels of one colour is no face."""


def check_face_geometry(image_shape: tuple[int, ...], points: np.ndarray | None) -> None:
    """NotAFaceError unless the image is large enough and its landmarks can place a face.

    Refused: a side below :data:`MIN_FACE_SIDE`; landmarks not finite or more than
    :data:`LANDMARK_SLACK` of the image size outside it (1e30, −5000, another image's
    coordinates); eye landmarks closer than :data:`MIN_EYE_DISTANCE` pixels. Each of these
    would otherwise give a black or meaningless 112×96 crop, cached as a face.
    """
    height, width = image_shape[:2]
    if min(height, width) < MIN_FACE_SIDE:
        raise NotAFaceError(
            f"not a face: the image is {width}×{height} pixels, too small to hold a face "
            f"(needs at least {MIN_FACE_SIDE}×{MIN_FACE_SIDE})"
        )
    if points is None:
        return
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(points)):
        raise NotAFaceError(f"not a face: landmarks are not finite ({points.tolist()})")
    low = -LANDMARK_SLACK * np.array([width, height])
    high = (1 + LANDMARK_SLACK) * np.array([width, height])
    outside = np.any((points < low) | (points > high), axis=1)
    if outside.any():
        first = int(np.argmax(outside))
        raise NotAFaceError(
            f"not a face: the {LANDMARK_NAMES[first] if len(points) == 5 else 'landmark'} "
            f"at {points[first].round(1).tolist()} lies far outside the {width}×{height} "
            "image; check the landmark file and --landmark-frame"
        )
    if len(points) >= 2 and float(np.linalg.norm(points[0] - points[1])) < MIN_EYE_DISTANCE:
        raise NotAFaceError(
            f"not a face: the eye landmarks coincide ({points[0].tolist()} and "
            f"{points[1].tolist()})"
        )


def check_crop_not_uniform(crop: np.ndarray) -> None:
    """NotAFaceError when ≥ :data:`UNIFORM_FRACTION` of the crop's pixels have one colour
    (each channel within ±4 levels of its most common value): a black warp beside the image,
    a blank or padded image.

    Counted on every fourth row and column (672 of the 10,752 pixels of a crop).
    """
    sample = np.asarray(crop, dtype=np.uint8)[::4, ::4].reshape(
        -1, crop.shape[2] if crop.ndim == 3 else 1
    )
    close = np.ones(len(sample), dtype=bool)
    levels = []
    for channel in sample.T:
        level = int(np.bincount(channel, minlength=256).argmax())
        close &= np.abs(channel.astype(np.int16) - level) <= 4
        levels.append(level)
    fraction = float(close.mean())
    if fraction >= UNIFORM_FRACTION:
        raise NotAFaceError(
            f"not a face: {fraction:.0%} of the crop is one colour ({levels}); a blank "
            "image, or landmarks that miss the face"
        )


def similarity_transform(
    landmarks: np.ndarray, reference: np.ndarray = REFERENCE_POINTS
) -> np.ndarray:
    """The 2×3 matrix ``M`` of the least-squares similarity transform from landmarks to reference.

    ``M = [[a, −b, t_x], [b, a, t_y]]`` (``a = s·cos α``, ``b = s·sin α``) minimises
    ``Σ_i ‖M·(x_i, y_i, 1)ᵀ − r_i‖²`` over the point pairs. With centred points
    ``p_i = (x_i, y_i) − p̄`` and ``q_i = r_i − r̄`` the minimiser is (Umeyama 1991, in 2-D)::

        a = Σ (p_i · q_i) / Σ ‖p_i‖²,   b = Σ (p_i × q_i) / Σ ‖p_i‖²,   t = r̄ − [[a, −b], [b, a]]·p̄

    the same matrix as ``skimage.transform.SimilarityTransform`` estimates (the tests check it
    against scikit-image and against ``numpy.linalg.lstsq``), at a tenth of its cost per face.
    """
    source = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    target = np.asarray(reference, dtype=np.float64).reshape(-1, 2)
    if source.shape != target.shape or len(source) < 2:
        raise ValueError(
            f"need matching point sets of at least 2 (x, y) points, got {source.shape} landmarks "
            f"and {target.shape} reference points"
        )
    if not np.all(np.isfinite(source)):
        raise ValueError(f"landmarks must be finite numbers, got {source.tolist()}")
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    p, q = source - source_mean, target - target_mean
    spread = float((p * p).sum())
    if spread <= 1e-12 * max(1.0, float(np.abs(source).max()) ** 2):
        raise ValueError(f"landmarks {source.tolist()} are degenerate (coincident points)")
    a = float((p * q).sum()) / spread
    b = float((p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]).sum()) / spread
    linear = np.array([[a, -b], [b, a]])
    return np.hstack([linear, (target_mean - linear @ source_mean)[:, None]])


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine matrix to ``N×2`` points (x, y): ``p ↦ A·p + t``."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def scale_landmarks(
    landmarks: np.ndarray, image_shape: tuple[int, ...], landmark_frame: LandmarkFrame
) -> np.ndarray:
    """Rescale landmarks given in a ``landmark_frame`` to the image's own pixel frame.

    ``landmark_frame`` is the (square) size or the ``(width, height)`` of the image the
    landmarks were measured on, e.g. 250 for LFW's landmark file while the LFW copy here is
    150×150: x scales by ``image_width / frame_width``, y by ``image_height / frame_height``.
    ``None`` means the landmarks are already in the image's frame.
    """
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if landmark_frame is None:
        return points
    frame_width, frame_height = (
        (landmark_frame, landmark_frame) if np.isscalar(landmark_frame) else tuple(landmark_frame)
    )
    if frame_width <= 0 or frame_height <= 0:
        raise ValueError(f"landmark_frame must be positive, got {landmark_frame}")
    height, width = image_shape[:2]
    return points * np.array([width / frame_width, height / frame_height])


def warp_to_crop(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Warp ``image`` by the 2×3 ``matrix`` into a 112×96 crop (bilinear, black border)."""
    return cv2.warpAffine(
        image,
        np.asarray(matrix, dtype=np.float64),
        (CROP_WIDTH, CROP_HEIGHT),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def align_face(
    image: np.ndarray, landmarks: np.ndarray, landmark_frame: LandmarkFrame = None
) -> np.ndarray:
    """Align a face: similarity-warp ``image`` so its five landmarks meet the reference points.

    ``landmarks`` are five (x, y) points in :data:`LANDMARK_NAMES` order, in the image's frame
    or in ``landmark_frame`` (see :func:`scale_landmarks`). Returns a ``112×96`` crop with the
    image's channels (channel order is kept).
    """
    points = scale_landmarks(landmarks, image.shape, landmark_frame)
    return warp_to_crop(image, similarity_transform(points))


def center_crop_matrix(image_shape: tuple[int, ...], crop: str = "window") -> np.ndarray:
    """The 2×3 scale-and-shift matrix of the fixed centre crop (see the module docstring).

    "window": a window 0.446 of the shorter side wide, centred at (0.5, 0.466) of the image;
    "whole": min(W, H·96/112) wide, centred at (0.5, 0.5). Either is scaled by 96/width.
    """
    crop = check_choice("crop", crop, CROPS)
    height, width = image_shape[:2]
    if crop == "window":
        window_width = CENTER_CROP_WIDTH_FRACTION * min(height, width)
        center_x, center_y = CENTER_CROP_CENTER[0] * width, CENTER_CROP_CENTER[1] * height
    else:
        window_width = min(width, height * CROP_WIDTH / CROP_HEIGHT)
        center_x, center_y = width / 2, height / 2
    scale = CROP_WIDTH / window_width
    return np.array(
        [
            [scale, 0.0, CROP_WIDTH / 2 - scale * center_x],
            [0.0, scale, CROP_HEIGHT / 2 - scale * center_y],
        ]
    )


def center_crop_face(image: np.ndarray, crop: str = "window") -> np.ndarray:
    """Crop and resize a face without landmarks (:func:`center_crop_matrix`): the average LFW
    alignment as a fixed window, or the whole image."""
    matrix = center_crop_matrix(image.shape, crop)
    interpolation = cv2.INTER_AREA if matrix[0, 0] < 1 else cv2.INTER_LINEAR  # shrinking
    # The whole image fills the crop: its edge pixels continue to the border, as in a resize.
    border = cv2.BORDER_REPLICATE if crop == "whole" else cv2.BORDER_CONSTANT
    return cv2.warpAffine(
        image, matrix, (CROP_WIDTH, CROP_HEIGHT), flags=interpolation, borderMode=border
    )


def _looks_truncated(data: bytes) -> bool:
    """A JPEG must end with its end-of-image marker FF D9 (trailing zero padding allowed)."""
    return data[:2] == b"\xff\xd8" and data.rstrip(b"\x00")[-2:] != b"\xff\xd9"


def decode_image_bgr(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into a ``uint8`` ``H×W×3`` BGR array (grey images are replicated).

    Raises :class:`UnreadableImageError` for a missing, empty, undecodable or truncated file.
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise UnreadableImageError(f"{path}: cannot read ({error.strerror or error})") from error
    if not data:
        raise UnreadableImageError(f"{path}: empty file")
    if _looks_truncated(data):
        raise UnreadableImageError(f"{path}: truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise UnreadableImageError(f"{path}: not a decodable image")
    return image


def decode_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into a ``uint8`` ``H×W×3`` RGB array."""
    return cv2.cvtColor(decode_image_bgr(path), cv2.COLOR_BGR2RGB)


def load_face_crop(
    path: str | os.PathLike,
    landmarks: np.ndarray | None = None,
    landmark_frame: LandmarkFrame = None,
    crop: str = "window",
) -> np.ndarray:
    """Decode ``path`` and return its RGB ``112×96×3`` crop: aligned with landmarks, else centred
    (``crop``: see :func:`center_crop_matrix`).

    The warp runs on the BGR image and only the small crop is converted to RGB. An image too
    small for a face, or landmarks that cannot place one, raise :class:`NotAFaceError` (see
    :func:`check_face_geometry`).
    """
    image = decode_image_bgr(path)
    if landmarks is None:
        check_face_geometry(image.shape, None)
        face = center_crop_face(image, crop)
    else:
        check_face_geometry(image.shape, scale_landmarks(landmarks, image.shape, landmark_frame))
        face = align_face(image, landmarks, landmark_frame)
    return cv2.cvtColor(face, cv2.COLOR_BGR2RGB)


def normalise_relative_path(path: str) -> str:
    """``Name\\img.jpg`` or ``./Name/img.jpg`` → ``Name/img.jpg`` (the key of a landmark table)."""
    path = path.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def read_landmarks(
    path: str | os.PathLike, landmark_frame: LandmarkFrame = None
) -> dict[str, np.ndarray]:
    """Read a landmark file in LFW's format into ``{relative image path: 5×2 array (x, y)}``.

    One line per image: ``path x1 y1 x2 y2 … x5 y5`` separated by tabs (or spaces), the points in
    :data:`LANDMARK_NAMES` order, paths relative to the images folder
    (``Aaron_Eckhart/Aaron_Eckhart_0001.jpg``). Blank lines are ignored; any other malformed
    line is a ``ValueError`` naming the file and line, and so is an image listed twice with
    different points (which one is right cannot be known; identical repeats are accepted).
    The file must be UTF-8 (a byte-order mark is accepted).

    So is a coordinate that no image can have. Every coordinate must be finite, and:

    * with ``landmark_frame`` (the size the file was measured on, as for
      :func:`scale_landmarks`: 250 for LFW's file, whatever the size of the images it is used
      with; the LFW copy here is 150×150), x within [−s·W, (1 + s)·W] and y within
      [−s·H, (1 + s)·H] for the frame's W×H and s = :data:`LANDMARK_SLACK`: the rule
      :func:`check_face_geometry` applies to each image once its landmarks are scaled;
    * without one (each line in its own image's pixels, sizes unknown until decoded), within
      [−:data:`LANDMARK_NEGATIVE_TOLERANCE`, :data:`LANDMARK_MAX_COORDINATE`] (16 px below 0
      for a face cut by the border; the largest JPEG side above).
    """
    path = Path(path)
    low, high, frame_text = _landmark_bounds(landmark_frame)
    table: dict[str, np.ndarray] = {}
    first_line: dict[str, int] = {}
    text = read_text_file(path, "landmark file")
    for number, line in enumerate(text.split("\n"), start=1):
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [field.strip() for field in fields if field.strip()]
        if not fields:
            continue
        if len(fields) != 11:
            raise ValueError(
                f"{path}:{number}: expected an image path and 10 numbers (x1 y1 … x5 y5), "
                f"got {len(fields)} fields"
            )
        try:
            values = np.array([float(v) for v in fields[1:]], dtype=np.float64).reshape(5, 2)
        except ValueError as error:
            raise ValueError(f"{path}:{number}: landmark is not a number ({error})") from None
        outside = ~np.isfinite(values) | (values < low) | (values > high)
        if outside.any():
            point, axis = np.argwhere(outside)[0]
            raise ValueError(
                f"{path}:{number}: the {LANDMARK_NAMES[point]}'s {'xy'[axis]} = "
                f"{values[point, axis]:g} is not a coordinate in {frame_text} (allowed: "
                f"{low[axis]:g} … {high[axis]:g}); check the file (and --landmark-frame)"
            )
        key = normalise_relative_path(fields[0])
        points = values.astype(np.float32)
        if key in table and not np.array_equal(table[key], points):
            raise ValueError(
                f"{path}:{number}: {key} is listed again with other landmarks than on line "
                f"{first_line[key]}; keep one line per image"
            )
        first_line.setdefault(key, number)
        table[key] = points
    if not table:
        raise ValueError(f"{path}: no landmarks found; expected lines like 'Name/img.jpg x1 y1 …'")
    return table


def _landmark_bounds(landmark_frame: LandmarkFrame) -> tuple[np.ndarray, np.ndarray, str]:
    """The lowest and highest (x, y) a landmark file may hold (see :func:`read_landmarks`),
    and where they come from ("any image", "the 250×250 frame")."""
    if landmark_frame is None:
        low, high = -LANDMARK_NEGATIVE_TOLERANCE, LANDMARK_MAX_COORDINATE
        return np.full(2, low), np.full(2, high), "any image"
    width, height = (
        (landmark_frame, landmark_frame) if np.isscalar(landmark_frame) else tuple(landmark_frame)
    )
    if width <= 0 or height <= 0:
        raise ValueError(f"landmark_frame must be positive, got {landmark_frame}")
    size = np.array([width, height], dtype=np.float64)
    return -LANDMARK_SLACK * size, (1 + LANDMARK_SLACK) * size, f"the {width}×{height} frame"
