"""One root seed derives every random stream of a run, by stable names.

A stream's seed is a hash of the root seed and its name (``"init"``, ``"split"``, ``"order"``,
``"augmentation"``, ``"mask-sampling"``...), so adding a stream never shifts the others, and a
component's randomness does not depend on how much randomness another one consumed.
"""
from __future__ import annotations

import hashlib

import torch

STREAMS = ("init", "method-init", "split", "order", "augmentation", "mask-sampling",
           "validation-sampling", "test-sampling", "rescaling-overhead")


def derive_seed(root_seed: int, *names: str) -> int:
    """A 63-bit seed from the root seed and a path of names."""
    text = "/".join([str(int(root_seed)), *names])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & (2**63 - 1)


def make_generator(root_seed: int, *names: str, device: str | torch.device = "cpu") -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(root_seed, *names))
    return generator
