"""A re-creation of the official ASLP training pipeline (N0ciple/ASLP, PyTorch Lightning), for speed
comparisons only (``subnetbench speed``). It never produces results.

What the official code does per training epoch, and what is kept here:

- data: a torchvision dataset of PIL images (``CIFAR10``: uint8 H x W x C arrays, ``Image.fromarray``
  per item) with the transforms ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip()``,
  ``ToTensor()``, ``Normalize(CIFAR mean, std)`` (validation: ``ToTensor`` and ``Normalize``), through
  a ``DataLoader`` with worker processes, batch 256, shuffled; each batch is copied to the device.
  Here the images are generated (CIFAR's shape, 10 classes). The official loader asks for
  ``min(len(os.sched_getaffinity(0) * 6), 16)`` workers, an expression that raises (a set times an
  int) and falls back to 10 workers, and they are not persistent (Lightning's default). Here the
  number is a parameter (the speed benchmark uses 10, at most the CPU count) and the workers persist
  across epochs (no restart per epoch): a choice that favours the reference, never ours.
- ASLP's masked layers draw ``F.gumbel_softmax(torch.stack((m, zeros)), tau=1, hard=True, dim=0)[0]``
  in every forward pass, training and evaluation alike (the official layer forward ignores the
  train/eval mode): two Gumbel draws per weight, from the global random stream. The other methods
  use the suite's own model and method (the official strategies are no faster).
- Lightning's per-step work: ``training_step`` computes the batch accuracy and logs it with the loss
  to the progress bar, which reads both on the host every step (one synchronisation per step).
  With two optimisers (ASLP with smart rescale: masks and scales) Lightning 1.x calls
  ``training_step`` once per optimiser for every batch (forward and backward twice); that is kept.
  Lightning's other overheads (hooks, loggers, checkpoint files) are left out: they only make the
  official pipeline slower.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from subnetbench.benchmark.data import DatasetInfo
from subnetbench.benchmark.networks import build_network
from subnetbench.methods import masked_layers, set_mask_sampling
from subnetbench.methods.aslp import ASLP
from subnetbench.methods.base import Method
from subnetbench.methods.initialisation import initialise
from subnetbench.methods.layers import MaskedLayer
from subnetbench.methods.registry import get as get_method


class GeneratedImages(Dataset):
    """A torchvision-style image data set (like ``torchvision.datasets.CIFAR10``) of random images."""

    def __init__(self, n: int, info: DatasetInfo, seed: int = 0, transform=None) -> None:
        rng = np.random.default_rng(seed)
        size, channels = info.image_size, info.in_channels
        self.data = rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)  # N x H x W x C
        self.targets = rng.integers(0, info.num_classes, n).tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image, target = self.data[index], self.targets[index]
        image = Image.fromarray(image if image.shape[2] > 1 else image[:, :, 0])
        if self.transform is not None:
            image = self.transform(image)
        return image, target


def official_transforms(info: DatasetInfo, train: bool = True):
    """The official code's transforms with data augmentation (train) or for evaluation."""
    from torchvision import transforms

    tail = [transforms.ToTensor(), transforms.Normalize(info.mean, info.std)]
    if not train:
        return transforms.Compose(tail)
    return transforms.Compose([transforms.RandomCrop(info.image_size, padding=info.crop_padding),
                               transforms.RandomHorizontalFlip(), *tail])


def make_loader(dataset: Dataset, batch_size: int, workers: int, shuffle: bool = True,
                seed: int = 0) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                      persistent_workers=workers > 0,
                      generator=torch.Generator().manual_seed(seed) if shuffle else None)


class OfficialASLP(ASLP):
    """ASLP whose masks are drawn as the official layers draw them: ``F.gumbel_softmax`` on the
    stacked logits (m, 0), two Gumbel draws per weight from the global stream, in every forward."""

    name = ""  # never registered (and not in the methods package)

    def sampled_weight(self, layer: MaskedLayer) -> Tensor:
        scores = layer.scores
        stacked = torch.stack((scores, torch.zeros_like(scores)))
        keep = F.gumbel_softmax(stacked, tau=self.options.temperature, hard=self.options.hard,
                                dim=0)[0]
        return self.rescaled(layer, layer.weight * keep)


class ReferenceRun:
    """One network trained as the official pipeline trains it, on batches from a DataLoader."""

    def __init__(self, network: str, method: str, info: DatasetInfo, device: torch.device | str,
                 seed: int = 0, method_options: dict | None = None) -> None:
        self.device = torch.device(device)
        torch.manual_seed(seed)  # the global stream: initialisation and Gumbel draws
        model = build_network(network, info.in_channels, info.image_size, info.num_classes)
        initialise(model, "kaiming_normal")
        cls = OfficialASLP if method == "aslp" else get_method(method)
        self.method: Method = cls(**(method_options or {}))
        self.method.prepare(model)
        self.model = model.to(self.device)
        if method == "aslp":  # the official layers sample in evaluation too
            set_mask_sampling(self.model, True)
        self.optimizers = [spec.build() for spec in self.method.optimizer_specs(self.model)]
        self.masked = [layer for _, layer in masked_layers(self.model)]

    def _step(self, images: Tensor, labels: Tensor, optimizer: torch.optim.Optimizer) -> None:
        logits = self.model(images)
        accuracy = (logits.argmax(1) == labels).float().mean()  # torchmetrics Accuracy of the step
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        # Lightning's progress bar reads the logged loss and accuracy on the host every step.
        self.last_loss, self.last_accuracy = loss.detach().item(), accuracy.item()

    def train_epoch(self, loader: DataLoader) -> None:
        self.model.train()
        several = len(self.optimizers) > 1
        for images, labels in loader:
            images, labels = images.to(self.device), labels.to(self.device)
            for optimizer in self.optimizers:  # Lightning 1.x: one training_step per optimiser
                if several:
                    self._toggle(optimizer)
                self._step(images, labels, optimizer)
            if several:
                self._toggle(None)

    def _toggle(self, optimizer: torch.optim.Optimizer | None) -> None:
        """Lightning's toggle_optimizer: only the stepped optimiser's tensors require gradients."""
        chosen = None if optimizer is None else {id(p) for g in optimizer.param_groups
                                                 for p in g["params"]}
        for other in self.optimizers:
            for group in other.param_groups:
                for p in group["params"]:
                    p.requires_grad_(chosen is None or id(p) in chosen)

    @torch.no_grad()
    def evaluate(self, loader: DataLoader) -> float:
        self.model.eval()
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        total = 0
        for images, labels in loader:
            images, labels = images.to(self.device), labels.to(self.device)
            correct += (self.model(images).argmax(1) == labels).sum()
            total += labels.shape[0]
        return correct.item() / max(total, 1)
