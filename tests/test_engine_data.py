"""Data: the digits splits, on-device augmentation against reference implementations, and CIFAR
loading through torchvision from small generated files in the official pickle format."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
import torchvision

from subnetbench.benchmark.data import (
    DATASET_INFO,
    DataUnavailableError,
    Preprocess,
    Split,
    load,
    load_raw,
    random_crop,
    random_flip,
    split_validation,
)
from subnetbench.benchmark.seeding import make_generator
from tests.helpers import fake_cifar, single_torch_thread  # noqa: F401  (autouse fixture)


def _rows(split: Split) -> Counter:
    """The samples of a split as a multiset of (image bytes, label)."""
    return Counter(zip((bytes(img.numpy().tobytes()) for img in split.images),
                       split.labels.tolist()))


@pytest.fixture(scope="module")
def digits():
    return load_raw("digits")


# -- digits ----------------------------------------------------------------------------------------

def test_digits_are_uint8_nchw_and_complete(digits):
    from sklearn.datasets import load_digits

    pool, test = digits
    for split in (pool, test):
        assert split.images.dtype == torch.uint8 and split.labels.dtype == torch.int64
        assert split.images.shape[1:] == (1, 8, 8)
    assert len(test) == round(0.2 * 1797) and len(pool) + len(test) == 1797
    # pool and test together are exactly scikit-learn's digits, scaled 0..16 -> 0..255
    bunch = load_digits()
    everything = Split(torch.from_numpy(np.rint(bunch.images * 255 / 16)).to(torch.uint8).unsqueeze(1),
                       torch.from_numpy(bunch.target).long())
    assert _rows(pool) + _rows(test) == _rows(everything)
    assert int(pool.images.max()) == 255


def test_digits_test_split_is_the_same_for_every_seed_and_validation_depends_on_it(digits):
    pool, _ = digits
    loaded = [load("digits", 0.1, make_generator(seed, "split"), "cpu") for seed in (0, 1)]
    for data in loaded:
        assert torch.equal(data.test.images, loaded[0].test.images)
        assert torch.equal(data.test.labels, loaded[0].test.labels)
        assert data.train.images.dtype == torch.uint8 and data.val.images.dtype == torch.uint8
        assert len(data.val) == round(0.1 * len(pool))
        # train and validation partition the pool (as multisets: digits has duplicate images)
        assert _rows(data.train) + _rows(data.val) == _rows(pool)
    assert _rows(loaded[0].val) != _rows(loaded[1].val)
    # the same seed gives the same split
    again = load("digits", 0.1, make_generator(0, "split"), "cpu")
    assert torch.equal(again.val.images, loaded[0].val.images)
    assert torch.equal(again.train.labels, loaded[0].train.labels)


def test_split_validation_is_disjoint_from_train_by_index():
    n = 101
    pool = Split(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.arange(n))
    train, val = split_validation(pool, 0.2, torch.Generator().manual_seed(0))
    train_ids, val_ids = set(train.labels.tolist()), set(val.labels.tolist())
    assert len(val_ids) == len(val) == 20 and len(train_ids) == len(train) == 81
    assert train_ids.isdisjoint(val_ids) and train_ids | val_ids == set(range(n))
    other, _ = split_validation(pool, 0.2, torch.Generator().manual_seed(1))
    assert set(other.labels.tolist()) != train_ids


# -- augmentation ----------------------------------------------------------------------------------

def _images(n=12, c=3, h=6, w=5, seed=0):
    return torch.randint(1, 256, (n, c, h, w), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("padding", [1, 2, 4])
def test_random_crop_equals_pad_then_slice_per_image(padding):
    images = _images()
    n, c, h, w = images.shape
    out = random_crop(images, padding, torch.Generator().manual_seed(7))
    # the offsets drawn from the same stream, then a plain per-image reference
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=torch.Generator().manual_seed(7))
    assert len(set(offsets[0].tolist())) > 1 and len(set(offsets[1].tolist())) > 1
    expected = torch.empty_like(images)
    for i in range(n):
        padded = torch.zeros(c, h + 2 * padding, w + 2 * padding, dtype=images.dtype)
        padded[:, padding:padding + h, padding:padding + w] = images[i]
        top, left = int(offsets[0, i]), int(offsets[1, i])
        expected[i] = padded[:, top:top + h, left:left + w]
    assert out.dtype == torch.uint8 and out.shape == images.shape
    assert torch.equal(out, expected)
    # crops moved some pixels out of the frame and zero padding in: not the identity
    assert not torch.equal(out, images)
    assert (out == 0).any()


def test_random_crop_with_padding_0_is_the_identity():
    images = _images()
    assert torch.equal(random_crop(images, 0, torch.Generator().manual_seed(3)), images)


def test_random_flip_flips_exactly_the_chosen_images():
    images = _images(n=40)
    out = random_flip(images, torch.Generator().manual_seed(11))
    chosen = torch.rand(40, generator=torch.Generator().manual_seed(11)) < 0.5
    assert 0 < int(chosen.sum()) < 40
    for i in range(40):
        expected = images[i].flip(-1) if chosen[i] else images[i]  # horizontal: the width axis
        assert torch.equal(out[i], expected)


def test_preprocess_scales_and_normalises_with_the_dataset_statistics():
    info = DATASET_INFO["cifar10"]
    images = _images(n=4, c=3, h=4, w=4)
    plain = Preprocess(info, normalise=False, device="cpu")(images)
    assert plain.dtype == torch.float32
    assert torch.equal(plain, images.float() / 255)
    normalised = Preprocess(info, normalise=True, device="cpu")(images)
    for channel in range(3):
        expected = (images[:, channel].float() / 255 - info.mean[channel]) / info.std[channel]
        assert torch.allclose(normalised[:, channel], expected, atol=1e-6)
    assert images.dtype == torch.uint8  # the stored batch is not modified


def test_digits_statistics_are_those_of_the_data(digits):
    pool, test = digits
    pixels = torch.cat([pool.images, test.images]).double() / 255
    info = DATASET_INFO["digits"]
    assert abs(pixels.mean().item() - info.mean[0]) < 1e-4
    assert abs(pixels.std().item() - info.std[0]) < 1e-4


def test_preprocess_augments_with_crop_then_flip():
    info = DATASET_INFO["digits"]
    images = _images(n=16, c=1, h=8, w=8)
    out = Preprocess(info, normalise=False, device="cpu")(images, augment=True,
                                                          generator=torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)
    expected = random_flip(random_crop(images, info.crop_padding, generator), generator)
    assert torch.equal(out, expected.float() / 255)


# -- CIFAR through torchvision, from generated files ------------------------------------------------

@pytest.mark.parametrize("dataset, sizes", [("cifar10", (3, 2, 4, 1, 2, 5)), ("cifar100", (7, 4))])
def test_cifar_loads_through_torchvision_as_uint8_nchw(tmp_path, trusted_cifar_files, dataset, sizes):
    train_data, train_labels, test_data, test_labels = fake_cifar(tmp_path, dataset, sizes)
    pool, test = load_raw(dataset, tmp_path, download=False)
    for split, data, labels in ((pool, train_data, train_labels), (test, test_data, test_labels)):
        assert split.images.dtype == torch.uint8 and split.labels.dtype == torch.int64
        assert split.images.shape == (len(data), 3, 32, 32)
        assert split.images.is_contiguous()
        # a row of the official format is 1024 red, then 1024 green, then 1024 blue values (row major)
        assert torch.equal(split.images, torch.from_numpy(data).view(-1, 3, 32, 32))
        assert split.labels.tolist() == list(labels)
    assert len(pool) == sum(sizes[:-1])
    # the channels are not confused: pixel (row 1, col 2) of channel 2 of image 0
    assert int(pool.images[0, 2, 1, 2]) == int(train_data[0, 2 * 1024 + 1 * 32 + 2])


def test_cifar_through_load_splits_validation_and_keeps_test(tmp_path, trusted_cifar_files):
    _, _, test_data, _ = fake_cifar(tmp_path, "cifar10", (10, 10, 10, 10, 10, 6))
    data = load("cifar10", 0.2, make_generator(0, "split"), "cpu", tmp_path, download=False)
    assert (len(data.train), len(data.val), len(data.test)) == (40, 10, 6)
    assert data.info.num_classes == 10 and data.info.in_channels == 3
    assert torch.equal(data.test.images, torch.from_numpy(test_data).view(-1, 3, 32, 32))


def test_the_data_directory_comes_from_the_environment(tmp_path, trusted_cifar_files, monkeypatch):
    fake_cifar(tmp_path, "cifar100", (5, 3))
    monkeypatch.setenv("SUBNETBENCH_DATA", str(tmp_path))
    pool, test = load_raw("cifar100", None, download=False)
    assert (len(pool), len(test)) == (5, 3)


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_missing_data_without_download_says_where_and_how(tmp_path, dataset, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("download=False must not download")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", no_network)
    empty = tmp_path / "nothing here"
    with pytest.raises(DataUnavailableError) as info:
        load_raw(dataset, empty, download=False)
    message = str(info.value)
    assert str(empty) in message
    assert "SUBNETBENCH_DATA" in message and "--data" in message
    assert "downloading is turned off" in message


def test_failed_download_is_data_unavailable(tmp_path, monkeypatch):
    calls = []

    def unreachable(url, *args, **kwargs):
        calls.append(url)
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", unreachable)
    with pytest.raises(DataUnavailableError) as info:
        load_raw("cifar10", tmp_path, download=True)
    message = str(info.value)
    assert calls and calls[0] == torchvision.datasets.CIFAR10.url
    assert str(tmp_path) in message and "Network is unreachable" in message
    assert "SUBNETBENCH_DATA" in message and "--data" in message


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load_raw("mnist")

