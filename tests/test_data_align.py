"""Alignment: the 5-point similarity transform, the warp, decoding, landmarks, centre crop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from sphereviz.data.align import (
    CROP_HEIGHT,
    CROP_WIDTH,
    REFERENCE_POINTS,
    UnreadableImageError,
    align_face,
    center_crop_face,
    center_crop_matrix,
    decode_image,
    load_face_crop,
    read_landmarks,
    scale_landmarks,
    similarity_transform,
    transform_points,
)

SAMPLE_IMAGES = [
    "Aaron_Eckhart/Aaron_Eckhart_0001.jpg",
    "George_W_Bush/George_W_Bush_0001.jpg",
    "Serena_Williams/Serena_Williams_0003.jpg",
    "Colin_Powell/Colin_Powell_0010.jpg",
    "Winona_Ryder/Winona_Ryder_0002.jpg",
]


@pytest.fixture(scope="module")
def landmarks(lfw_root):
    return read_landmarks(lfw_root / "lfw_landmark.txt")


def least_squares_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Independent fit: solve [x −y 1 0; y x 0 1]·(a, b, tx, ty) = (u, v) with numpy lstsq."""
    rows = []
    for x, y in source:
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows), target.reshape(-1), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


def skimage_similarity(source: np.ndarray) -> np.ndarray:
    """Independent fit: scikit-image's Umeyama estimate."""
    from skimage.transform import SimilarityTransform

    if hasattr(SimilarityTransform, "from_estimate"):
        return SimilarityTransform.from_estimate(source, REFERENCE_POINTS).params[:2]
    transform = SimilarityTransform()
    transform.estimate(source, REFERENCE_POINTS)
    return transform.params[:2]


def test_exact_similarity_is_recovered_and_inverted():
    rng = np.random.default_rng(1)
    for _ in range(5):
        angle, scale = rng.uniform(-0.6, 0.6), rng.uniform(0.5, 3.0)
        shift = rng.uniform(-50, 150, size=2)
        rotation = scale * np.array(
            [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
        )
        face_landmarks = REFERENCE_POINTS @ rotation.T + shift
        matrix = similarity_transform(face_landmarks)
        np.testing.assert_allclose(
            transform_points(matrix, face_landmarks), REFERENCE_POINTS, atol=1e-6
        )
        np.testing.assert_allclose(matrix[:, :2], np.linalg.inv(rotation), atol=1e-9)


def test_real_landmarks_get_the_least_squares_similarity(lfw_root, landmarks):
    for name in SAMPLE_IMAGES:
        points = landmarks[name].astype(np.float64) * 0.6  # 250×250 frame → the 150×150 files
        matrix = similarity_transform(points)
        np.testing.assert_allclose(
            matrix, least_squares_similarity(points, REFERENCE_POINTS), atol=1e-6
        )
        np.testing.assert_allclose(matrix, skimage_similarity(points), atol=1e-6)
        # It is a similarity: equal scales, orthogonal columns.
        a, b = matrix[0, 0], matrix[1, 0]
        np.testing.assert_allclose(matrix[:, :2], [[a, -b], [b, a]], atol=1e-12)
        residual = np.linalg.norm(transform_points(matrix, points) - REFERENCE_POINTS, axis=1)
        # Real faces do not match the reference exactly; LFW's median worst point is ~5 px.
        assert residual.max() < 12


def test_warp_moves_a_dot_to_the_transformed_landmark(lfw_root, landmarks):
    for name in SAMPLE_IMAGES[:3]:
        image = decode_image(lfw_root / "images" / name)
        assert image.shape == (150, 150, 3)
        points = landmarks[name]
        matrix = similarity_transform(scale_landmarks(points, image.shape, 250))
        expected = transform_points(matrix, scale_landmarks(points, image.shape, 250))
        plain = align_face(image, points, landmark_frame=250).astype(np.float64)
        for k, (x, y) in enumerate(scale_landmarks(points, image.shape, 250)):
            # A bright disc drawn at the origin, then shifted to the exact sub-pixel landmark.
            disc = np.zeros(image.shape[:2], np.float32)
            cv2.circle(disc, (75, 75), 2, 1.0, -1)
            shift = np.float32([[1, 0, x - 75], [0, 1, y - 75]])
            disc = cv2.warpAffine(disc, shift, (150, 150))
            marked = np.clip(image + 400 * disc[..., None], 0, 255).astype(np.uint8)
            difference = np.abs(align_face(marked, points, 250).astype(np.float64) - plain).sum(2)
            rows, cols = np.indices(difference.shape)
            found = (
                np.array([(cols * difference).sum(), (rows * difference).sum()]) / difference.sum()
            )
            assert np.linalg.norm(found - expected[k]) < 1.0, (name, k, found, expected[k])
            assert np.linalg.norm(found - REFERENCE_POINTS[k]) < 12


def test_cv2_warp_agrees_with_skimage_warp(lfw_root, landmarks):
    from skimage.transform import AffineTransform, warp

    name = SAMPLE_IMAGES[1]
    image = decode_image(lfw_root / "images" / name)
    crop = align_face(image, landmarks[name], 250).astype(np.float64)
    matrix = similarity_transform(scale_landmarks(landmarks[name], image.shape, 250))
    transform = AffineTransform(matrix=np.vstack([matrix, [0, 0, 1]]))
    reference = warp(image, transform.inverse, output_shape=(CROP_HEIGHT, CROP_WIDTH), order=1)
    # Bilinear in both; OpenCV quantises the coordinates to 1/32 px, hence a small tolerance.
    assert np.abs(crop - 255 * reference).mean() < 1.0


def test_scale_landmarks_square_and_rectangular_frames():
    points = np.array([[100.0, 50.0]] * 5)
    np.testing.assert_allclose(scale_landmarks(points, (150, 150, 3), 250)[0], [60, 30])
    np.testing.assert_allclose(scale_landmarks(points, (100, 300), (200, 400))[0], [150, 12.5])
    np.testing.assert_allclose(scale_landmarks(points, (150, 150), None), points)
    with pytest.raises(ValueError, match="positive"):
        scale_landmarks(points, (150, 150), 0)


def test_center_crop_is_the_average_lfw_alignment(lfw_root, landmarks):
    # Independent truth: the reference points are where aligned landmarks go on average.
    sample = [landmarks[name] for name in sorted(landmarks)[::50]]
    mapped = np.stack(
        [transform_points(center_crop_matrix((250, 250)), points) for points in sample]
    )
    np.testing.assert_allclose(mapped.mean(0), REFERENCE_POINTS, atol=2.0)


def test_center_crop_geometry_on_a_synthetic_image():
    image = np.zeros((200, 200, 3), np.uint8)
    centre_x, centre_y = 100, 93  # 0.5 and 0.466 of the size
    width = 0.446 * 200
    image[int(centre_y - 10) : int(centre_y + 10), int(centre_x - 10) : int(centre_x + 10)] = 255
    crop = center_crop_face(image)
    assert crop.shape == (CROP_HEIGHT, CROP_WIDTH, 3)
    rows, cols = np.nonzero(crop[..., 0] > 127)
    # The white square is centred on the crop centre and 20 · 96/width px wide.
    assert abs(cols.mean() - (CROP_WIDTH - 1) / 2) < 1 and abs(rows.mean() - CROP_HEIGHT / 2) < 1.5
    assert abs((cols.max() - cols.min() + 1) - 20 * CROP_WIDTH / width) <= 1.5


def test_decode_keeps_rgb_order_and_expands_grey(tmp_path):
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("L", (40, 30), 77).save(tmp_path / "grey.pgm")
    red = decode_image(tmp_path / "red.png")
    assert red.shape == (30, 40, 3) and tuple(red[0, 0]) == (255, 0, 0)
    grey = decode_image(tmp_path / "grey.pgm")
    assert grey.shape == (30, 40, 3) and np.all(grey == 77)
    crop = load_face_crop(tmp_path / "red.png")
    assert crop.shape == (112, 96, 3) and tuple(crop[56, 48]) == (255, 0, 0)


def test_unreadable_images_raise(tmp_path):
    Image.new("RGB", (64, 64), (10, 200, 30)).save(tmp_path / "ok.jpg", quality=90)
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.jpg").write_bytes(b"this is not an image" * 10)
    (tmp_path / "empty.png").write_bytes(b"")
    decode_image(tmp_path / "ok.jpg")
    for name, reason in [
        ("truncated.jpg", "truncated"),
        ("garbage.jpg", "not a decodable"),
        ("empty.png", "empty"),
        ("missing.jpg", "cannot read"),
    ]:
        with pytest.raises(UnreadableImageError, match=f"{name}.*{reason}"):
            decode_image(tmp_path / name)


def test_read_landmarks_lfw_file(lfw_root, landmarks):
    assert len(landmarks) == 13233  # all LFW images, Betsy_Coffin_0001 included
    np.testing.assert_array_equal(
        landmarks["Aaron_Eckhart/Aaron_Eckhart_0001.jpg"],
        [[107, 107], [147, 111], [124, 143], [103, 157], [139, 161]],
    )


def test_read_landmarks_errors_name_the_line(tmp_path):
    path = tmp_path / "marks.txt"
    path.write_text("a/b.jpg 1 2 3 4 5 6 7 8 9 10\n\na/c.jpg 1 2 3\n")
    with pytest.raises(ValueError, match=r"marks.txt:3: expected an image path and 10 numbers"):
        read_landmarks(path)
    path.write_text("a\\b.jpg\t1\t2\t3\t4\t5\t6\t7\t8\t9\tten\n")
    with pytest.raises(ValueError, match="marks.txt:1"):
        read_landmarks(path)


GOOD_POINTS = "107 107 147 111 124 143 103 157 139 161"


@pytest.mark.parametrize(
    ("values", "frame", "what"),
    [
        ("nan 107 147 111 124 143 103 157 139 161", None, "left eye's x = nan"),
        ("107 107 147 111 124 inf 103 157 139 161", 250, "nose's y = inf"),
        ("107 107 147 111 124 143 103 157 139 1e40", None, "right mouth corner's y = 1e\\+40"),
        ("107 107 147 111 124 143 -1e30 157 139 161", None, "left mouth corner's x = -1e"),
        ("107 107 147 -17 124 143 103 157 139 161", None, "right eye's y = -17 .* -16 … 65535"),
        ("107 107 65536 111 124 143 103 157 139 161", None, "right eye's x = 65536"),
        (
            "107 107 147 111 124 143 103 157 313 161",
            250,
            "right mouth corner's x = 313 .*250×250 frame .* 312.5",
        ),
        ("-63 107 147 111 124 143 103 157 139 161", 250, "left eye's x = -63 .* -62.5 … 312.5"),
        ("107 107 260 111 124 143 103 157 139 161", (200, 400), "x = 260 .*200×400 frame .* 250"),
    ],
)
def test_landmarks_no_image_can_have_are_refused_with_file_and_line(tmp_path, values, frame, what):
    path = tmp_path / "marks.txt"
    path.write_text(f"a/ok.jpg {GOOD_POINTS}\na/bad.jpg {values}\n")
    with pytest.raises(ValueError, match=rf"marks.txt:2: the .*{what}"):
        read_landmarks(path, frame)


def test_landmarks_at_the_edges_of_the_rule_are_accepted(tmp_path):
    path = tmp_path / "marks.txt"
    path.write_text("a/b.jpg -16 0 65535 111 124 143 103 157 139 161\n")
    assert read_landmarks(path)["a/b.jpg"][0].tolist() == [-16, 0]
    path.write_text("a/b.jpg -62.5 312.5 147 111 124 143 103 157 139 161\n")
    assert read_landmarks(path, 250)["a/b.jpg"][0].tolist() == [-62.5, 312.5]
    with pytest.raises(ValueError, match="marks.txt:1: the left eye's x = -62.5"):
        read_landmarks(path)  # without the frame, only 16 px below 0


def test_lfw_landmarks_fit_their_250_frame_not_the_150_images(lfw_root):
    """The file is in the 250×250 frame of the original images (SOURCES.md): read with that
    frame every line passes; taken for the 150×150 copy's own pixels, some points lie beyond
    150 · 1.25 = 187.5, which the check names."""
    assert len(read_landmarks(lfw_root / "lfw_landmark.txt", 250)) == 13233
    with pytest.raises(ValueError, match=r"lfw_landmark.txt:\d+: .* 150×150 frame"):
        read_landmarks(lfw_root / "lfw_landmark.txt", 150)


def test_degenerate_landmarks_are_rejected():
    with pytest.raises(ValueError, match="degenerate"):
        similarity_transform(np.full((5, 2), 10.0))
    with pytest.raises(ValueError, match="matching point sets"):
        similarity_transform(np.zeros((4, 2)))


def _column_ramp(height: int, width: int) -> np.ndarray:
    """An image whose value is twice its column index (a known column at every crop pixel)."""
    ramp = np.tile((2 * np.arange(width)).astype(np.uint8), (height, 1))
    return np.repeat(ramp[..., None], 3, axis=2)


def test_whole_crop_keeps_every_column_of_a_face_that_fills_the_frame():
    image = _column_ramp(112, 92)  # an ORL face: 92 wide, 112 high
    whole = center_crop_face(image, "whole")
    # The window is the full width (92 < 112·96/112): crop columns 0…95 span image columns
    # 0…91, so the first and last crop columns read the image's first and last.
    assert whole.shape == (CROP_HEIGHT, CROP_WIDTH, 3)
    assert whole[56, 0, 0] <= 2 and whole[56, -1, 0] >= 2 * 91 - 2
    # LFW's window is 0.446·92 ≈ 41 px wide around the centre: it starts near column 25.
    window = center_crop_face(image, "window")
    assert abs(int(window[56, 0, 0]) - 2 * round(46 - 0.446 * 92 / 2)) <= 3


def test_whole_crop_of_an_image_at_the_crop_aspect_is_a_plain_resize():
    # Independent truth: cv2.resize of a 224×192 image (exactly 2 × the crop) to 112×96.
    rows = np.linspace(0, 200, 224)[:, None]
    image = np.repeat((rows + np.linspace(0, 50, 192)[None, :]).astype(np.uint8)[..., None], 3, 2)
    resized = cv2.resize(image, (CROP_WIDTH, CROP_HEIGHT), interpolation=cv2.INTER_AREA)
    difference = np.abs(center_crop_face(image, "whole").astype(int) - resized.astype(int))
    assert difference.max() <= 2  # half a source pixel of the gentle ramp


def test_an_unknown_crop_is_refused_by_name():
    with pytest.raises(ValueError, match="crop"):
        center_crop_matrix((112, 92), "tight")


def test_whole_crop_of_a_crop_already_112_by_96_is_the_identity():
    # A face aligned elsewhere to SphereFace's 112×96 comes through unchanged, pixel for pixel.
    image = np.random.default_rng(0).integers(0, 256, (CROP_HEIGHT, CROP_WIDTH, 3), np.uint8)
    np.testing.assert_array_equal(center_crop_face(image, "whole"), image)
