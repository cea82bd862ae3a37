"""Fixtures shared by the test modules."""
from __future__ import annotations

import os

import pytest
import torchvision


@pytest.fixture
def trusted_cifar_files(monkeypatch):
    """The generated files are trusted: their MD5 cannot match the official ones."""
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity",
                        lambda self: all(os.path.isfile(os.path.join(self.root, self.base_folder, f))
                                         for f, _ in self.train_list + self.test_list))
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity",
                        lambda fpath, md5=None: os.path.isfile(fpath))
