"""The training-time batch pipeline: normalisation, layout, shuffling, flips, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sphereviz.data.tensors import BatchIterator, PixelNormalisation, to_training_tensors

CUDA = torch.cuda.is_available()


def faces(count=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, 112, 96, 3), dtype=np.uint8)


def test_face_batches_are_nchw_and_normalised_as_sphereface():
    images, labels = faces(), np.arange(10)
    batches = list(BatchIterator(images, labels, batch_size=4, shuffle=False))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.shape == (4, 3, 112, 96) and x.dtype == torch.float32 and y.dtype == torch.int64
    expected = (images[:4].astype(np.float64) - 127.5) / 128
    np.testing.assert_allclose(x.numpy(), expected.transpose(0, 3, 1, 2), atol=1e-6)
    assert x.min() >= -127.5 / 128 and x.max() <= 127.5 / 128


def test_digit_batches_gain_a_channel_and_use_mnist_statistics():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    x, _ = next(iter(BatchIterator(images, np.zeros(6), batch_size=6, shuffle=False)))
    assert x.shape == (6, 1, 28, 28)
    expected = (images / 255.0 - 0.1307) / 0.3081
    np.testing.assert_allclose(x[:, 0].numpy(), expected, atol=1e-5)
    own = PixelNormalisation.from_images(images)
    x, _ = next(iter(BatchIterator(images, np.zeros(6), 6, shuffle=False, normalisation=own)))
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std(unbiased=False)) - 1) < 1e-4


def test_shuffle_is_a_seeded_permutation_each_epoch():
    images = np.repeat(np.arange(50, dtype=np.uint8)[:, None, None], 28, 1).repeat(28, 2)
    labels = np.arange(50)
    iterator = BatchIterator(images, labels, batch_size=8, generator=123)
    first = torch.cat([y for _, y in iterator])
    second = torch.cat([y for _, y in iterator])
    assert sorted(first.tolist()) == list(range(50)) == sorted(second.tolist())
    assert first.tolist() != second.tolist()  # a new order each epoch
    # Labels travel with their images: pixel value v was given label v.
    for x, y in BatchIterator(images, labels, batch_size=8, generator=5):
        np.testing.assert_allclose(
            x[:, 0, 0, 0].numpy(), (y.numpy() / 255 - 0.1307) / 0.3081, atol=1e-5
        )
    again = torch.cat([y for _, y in BatchIterator(images, labels, batch_size=8, generator=123)])
    assert again.tolist() == first.tolist()  # same seed, same order


def test_flip_mirrors_about_half_the_images_horizontally():
    images = faces(400, seed=2)
    iterator = BatchIterator(
        images, np.arange(400), batch_size=64, shuffle=False, flip=True, generator=0
    )
    plain = torch.from_numpy((images.astype(np.float32) - 127.5) / 128).permute(0, 3, 1, 2)
    flipped = 0
    for x, y in iterator:
        original = plain[y]
        mirrored = original.flip(3)  # W is the last axis of NCHW
        same = (x - original).abs().amax((1, 2, 3)) < 1e-6
        mirror = (x - mirrored).abs().amax((1, 2, 3)) < 1e-6
        assert torch.all(same ^ mirror)
        flipped += int(mirror.sum())
    assert 140 < flipped < 260  # Binomial(400, 1/2): mean 200, sd 10


def test_len_drop_last_and_channels_last():
    iterator = BatchIterator(
        faces(10), np.arange(10), batch_size=4, drop_last=True, channels_last=True
    )
    assert len(iterator) == 2 and [len(y) for _, y in iterator] == [4, 4]
    x, _ = next(iter(iterator))
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_memory_mapped_cache_is_gathered_per_batch(tmp_path):
    images = faces(12)
    np.save(tmp_path / "images.npy", images)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    iterator = BatchIterator(mapped, np.arange(12), batch_size=5, generator=7)
    assert not isinstance(iterator.images, torch.Tensor)  # not copied into memory on the CPU
    reference = BatchIterator(images, np.arange(12), batch_size=5, generator=7)
    for (x, y), (x_ref, y_ref) in zip(iterator, reference, strict=True):
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)


def test_invalid_inputs_are_explained():
    with pytest.raises(ValueError, match="uint8"):
        BatchIterator(np.zeros((2, 28, 28)), np.zeros(2), 1)
    with pytest.raises(ValueError, match="batch_size"):
        BatchIterator(faces(2), np.zeros(2), 0)
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        BatchIterator(faces(2), np.zeros(3), 1)
    with pytest.raises(ValueError, match="positive scale"):
        PixelNormalisation(0.0, 0.0)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_cuda_batches_are_resident_and_equal_to_cpu_batches():
    images, labels = faces(300, seed=3), np.arange(300) % 7
    gpu = BatchIterator(images, labels, 64, flip=True, generator=11, device="cuda")
    cpu = BatchIterator(images, labels, 64, flip=True, generator=11, device="cpu")
    assert gpu.resident_on_device and gpu.images.device.type == "cuda"
    for (x, y), (x_cpu, y_cpu) in zip(gpu, cpu, strict=True):
        assert x.device.type == "cuda" and y.device.type == "cuda"
        torch.testing.assert_close(x.cpu(), x_cpu, rtol=0, atol=1e-6)
        assert torch.equal(y.cpu(), y_cpu)
    resident, resident_labels = to_training_tensors(images, labels, "cuda")
    assert torch.equal(resident.cpu(), torch.from_numpy(images))
    assert resident_labels.device.type == "cuda"
