"""Data sets as uint8 tensors on the training device, with augmentation in batch on the device.

- CIFAR-10/100 come through torchvision into a cache directory (``--data DIR``, else the
  environment variable ``SUBNETBENCH_DATA``, else ``~/.cache/subnetbench``). torchvision checks the
  archive's MD5 against the official one before it reads the batches (which are pickles), so only
  the official files are ever unpickled.
- Digits come from scikit-learn (shipped with it: offline). Its 8x8 images (values 0..16) are
  scaled to uint8 0..255; a fixed 20% test split (the same for every seed) stands in for a test set.

The validation split is drawn from the run's "split" stream; the training order and augmentation
from their own streams. Augmentation (random crop with zero padding, horizontal flip) and
normalisation run in batch on the device: no worker processes, no host copies inside an epoch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional as F

from subnetbench.errors import OptionError, SubnetbenchError

# The ASLP code's CIFAR-10 statistics (its std is the widespread 0.20 figure; the hidden-networks
# code uses 0.247, 0.243, 0.262): kept as the released code has them.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
# CIFAR-100's own per-channel statistics of its training images (the released code has CIFAR-10
# only).
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 20220225  # fixed: every seed is tested on the same digits
DIGITS_IMAGES = 1797  # scikit-learn's digits (a test checks it)
# Images the validation split is drawn from: CIFAR's training set, the digits not in the test split.
POOL_SIZES = {"cifar10": 50_000, "cifar100": 50_000,
              "digits": DIGITS_IMAGES - round(DIGITS_TEST_FRACTION * DIGITS_IMAGES)}


class DataUnavailableError(SubnetbenchError, RuntimeError):
    """The data set is not on disk and cannot be downloaded."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    in_channels: int
    image_size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int  # random-crop padding of the augmentation


DATASET_INFO = {
    "cifar10": DatasetInfo("cifar10", 3, 32, 10, CIFAR10_MEAN, CIFAR10_STD, 4),
    "cifar100": DatasetInfo("cifar100", 3, 32, 100, CIFAR100_MEAN, CIFAR100_STD, 4),
    # digits statistics of the 0..1-scaled images; padding 1 on 8x8 is 4 on 32x32 in proportion.
    "digits": DatasetInfo("digits", 1, 8, 10, (0.3053,), (0.3759,), 1),
}


@dataclass
class Split:
    images: Tensor  # uint8, N x C x H x W, on the device
    labels: Tensor  # int64, N, on the device

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass
class DeviceData:
    info: DatasetInfo
    train: Split
    val: Split
    test: Split


def default_data_dir() -> Path:
    return Path(os.environ.get("SUBNETBENCH_DATA") or Path.home() / ".cache" / "subnetbench")


def load_raw(dataset: str, data_dir: str | Path | None = None,
             download: bool = True) -> tuple[Split, Split]:
    """(train+validation pool, test) on the CPU, uint8 NCHW."""
    if dataset == "digits":
        return _load_digits()
    if dataset in ("cifar10", "cifar100"):
        return _load_cifar(dataset, Path(data_dir) if data_dir else default_data_dir(), download)
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(DATASET_INFO)}")


def _load_digits() -> tuple[Split, Split]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).mul(255.0 / 16.0).round().clamp(0, 255)
    images = images.to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target).long()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(DIGITS_SPLIT_SEED))
    n_test = round(DIGITS_TEST_FRACTION * len(labels))
    test, pool = order[:n_test], order[n_test:]
    return Split(images[pool], labels[pool]), Split(images[test], labels[test])


def _load_cifar(dataset: str, root: Path, download: bool) -> tuple[Split, Split]:
    import torchvision

    cls = torchvision.datasets.CIFAR10 if dataset == "cifar10" else torchvision.datasets.CIFAR100
    splits = []
    for train in (True, False):
        try:
            data = cls(root=str(root), train=train, download=False)
        except RuntimeError:  # torchvision: "Dataset not found or corrupted"
            if not download:
                raise _unavailable(dataset, root, cls, "downloading is turned off") from None
            try:  # torchvision downloads (or re-extracts its intact archive) over damaged files
                data = cls(root=str(root), train=train, download=True)
            except Exception as error:  # no network, a proxy, a full disk...
                raise _unavailable(dataset, root, cls, f"the download failed ({error})") from None
        images = torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous()
        splits.append(Split(images, torch.tensor(data.targets, dtype=torch.long)))
    return splits[0], splits[1]


def _damaged_files(root: Path, cls: type) -> list[str]:
    """The files of the data set that are there but fail torchvision's MD5 check (a truncated
    download, a bad copy), as torchvision refuses them: the same words "not found or corrupted"
    for both, which the user needs told apart."""
    from torchvision.datasets.utils import check_integrity

    folder = root / cls.base_folder
    files = cls.train_list + cls.test_list + [[cls.meta["filename"], cls.meta["md5"]]]
    return [name for name, md5 in files
            if (folder / name).is_file() and not check_integrity(str(folder / name), md5)]


def _unavailable(dataset: str, root: Path, cls: type, why: str) -> DataUnavailableError:
    damaged = _damaged_files(root, cls)
    if damaged:
        folder = root / cls.base_folder
        return DataUnavailableError(
            f"{dataset} in {folder} is damaged: {len(damaged)} of its files fail torchvision's MD5 "
            f"check ({', '.join(damaged)}), and {why}. Download it again, where there is internet "
            "access: run the command without --no-download, or python -c \"import torchvision; "
            f"torchvision.datasets.{cls.__name__}('{root}', download=True)\" (torchvision extracts "
            "its archive again over the damaged files, fetching the archive first if it is missing or "
            "damaged too); or choose another directory "
            "with --data DIR or the environment variable SUBNETBENCH_DATA.")
    return _missing(dataset, root, cls, why)


def _missing(dataset: str, root: Path, cls: type, why: str) -> DataUnavailableError:
    return DataUnavailableError(
        f"{dataset} was not found in {root} (torchvision looks for {root / cls.base_folder}) and "
        f"{why}. Provide it by downloading once on a machine with internet access "
        f"(python -c \"import torchvision; torchvision.datasets.{cls.__name__}('{root}', "
        f"download=True)\"), or by copying {cls.filename} or the extracted {cls.base_folder}/ into "
        f"{root}; choose another directory with --data DIR or the environment variable "
        f"SUBNETBENCH_DATA.")


def split_sizes(pool_size: int, fraction: float) -> tuple[int, int]:
    """(training images, validation images) of a pool of ``pool_size`` split at ``fraction``."""
    n_val = round(fraction * pool_size)
    return pool_size - n_val, n_val


def check_split(dataset: str, fraction: float) -> None:
    """Refuse (OptionError) a validation fraction that leaves no validation image or no training
    image of ``dataset``: early stopping and the best-validation checkpoint would be meaningless."""
    pool = POOL_SIZES[dataset]
    n_train, n_val = split_sizes(pool, fraction)
    if n_val < 1 or n_train < 1:
        smallest = 0.5 / pool
        raise OptionError(f"option validation_fraction={fraction!r} is not allowed for {dataset}: "
                          f"of its {pool} training images it leaves {n_val} for validation and "
                          f"{n_train} for training; expected a number in ({smallest:.2g}, 0.5] "
                          "(at least one image each)")


def split_validation(pool: Split, fraction: float, generator: torch.Generator) -> tuple[Split, Split]:
    """(train, validation), the validation part a seeded random ``fraction`` of the pool."""
    order = torch.randperm(len(pool), generator=generator)
    _, n_val = split_sizes(len(pool), fraction)
    val, train = order[:n_val], order[n_val:]
    return Split(pool.images[train], pool.labels[train]), Split(pool.images[val], pool.labels[val])


def load(dataset: str, validation_fraction: float, split_generator: torch.Generator,
         device: torch.device | str, data_dir: str | Path | None = None,
         download: bool = True, raw: tuple[Split, Split] | None = None) -> DeviceData:
    """The seeded split of ``dataset`` on ``device``; ``raw`` is the data set as :func:`load_raw`
    returns it, when the caller has loaded it already."""
    pool, test = raw if raw is not None else load_raw(dataset, data_dir, download)
    train, val = split_validation(pool, validation_fraction, split_generator)
    return DeviceData(DATASET_INFO[dataset], train.to(device), val.to(device), test.to(device))


class Preprocess:
    """uint8 batch -> float batch: optional augmentation, then [0, 1] scaling, optional normalisation."""

    def __init__(self, info: DatasetInfo, normalise: bool, device: torch.device | str) -> None:
        self.padding = info.crop_padding
        self.normalise = normalise
        self.mean = torch.tensor(info.mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(info.std, device=device).view(1, -1, 1, 1)

    def __call__(self, images: Tensor, augment: bool = False,
                 generator: torch.Generator | None = None) -> Tensor:
        x = images
        if augment:
            x = random_crop(x, self.padding, generator)
            x = random_flip(x, generator)
        x = x.float().div_(255.0)
        if self.normalise:
            x = (x - self.mean) / self.std
        return x


def random_crop(images: Tensor, padding: int, generator: torch.Generator | None) -> Tensor:
    """Per-image random crop of the original size from the zero-padded images (torchvision's
    RandomCrop(size, padding) on each image), in one gather."""
    n, _, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=images.device)
    rows = (offsets[0].view(n, 1) + torch.arange(h, device=images.device)).view(n, 1, h, 1)
    cols = (offsets[1].view(n, 1) + torch.arange(w, device=images.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=images.device).view(n, 1, 1, 1)
    channels = torch.arange(images.shape[1], device=images.device).view(1, -1, 1, 1)
    return padded[batch, channels, rows, cols]


def random_flip(images: Tensor, generator: torch.Generator | None) -> Tensor:
    flip = torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)
