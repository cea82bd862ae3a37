"""Small shared helpers of the test suite: statistical tolerances, tiny networks, plugin sandboxes."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from subnetbench import methods
from subnetbench.benchmark.networks import ConvNet
from subnetbench.methods.layers import masked_layers

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    """Run a test module on one intra-op thread (imported by each module, so it is autouse there).

    The tensors are small; two OpenMP threads on a 2-core machine that other jobs share spin against
    each other (the suite measured 4x slower under load)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

# ---------------------------------------------------------------------------------------------------
# statistics (numpy and math only: scipy is not a dependency of the project)


def binomial_tolerance(p: float, n: int, sigmas: float = 5.0, slack: float = 1e-3) -> float:
    """Allowed |frequency - p| of n Bernoulli(p) draws: `sigmas` standard errors plus a small slack."""
    return sigmas * math.sqrt(p * (1 - p) / n) + slack


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def chi_square_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X ~ chi-square(dof), by the Wilson-Hilferty cube-root normal approximation
    (relative error well below what a 1e-4 threshold needs for dof >= 3)."""
    k = float(dof)
    z = ((statistic / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return normal_sf(z)


def ks_critical(n1: int, n2: int | None = None, alpha: float = 1e-4) -> float:
    """Asymptotic Kolmogorov-Smirnov critical distance at level alpha (one sample if n2 is None)."""
    c = math.sqrt(-math.log(alpha / 2) / 2)
    if n2 is None:
        return c / math.sqrt(n1)
    return c * math.sqrt((n1 + n2) / (n1 * n2))


def ks_two_sample(a: torch.Tensor, b: torch.Tensor) -> float:
    """The two-sample Kolmogorov-Smirnov distance sup |F_a - F_b|."""
    a, _ = torch.sort(a.flatten().double())
    b, _ = torch.sort(b.flatten().double())
    grid = torch.cat([a, b])
    fa = torch.searchsorted(a, grid, right=True).double() / a.numel()
    fb = torch.searchsorted(b, grid, right=True).double() / b.numel()
    return float((fa - fb).abs().max())


# ---------------------------------------------------------------------------------------------------
# networks

EXAMPLES = REPO / "docs" / "examples"


def load_example(stem: str):
    """A file of docs/examples as a module (in sys.modules, which its dataclasses need), not
    registered as a plugin."""
    name = f"docs_example_{stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{stem}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def example_methods() -> list[type[methods.Method]]:
    """The method classes of the plugin guide's examples (docs/examples)."""
    return [load_example("example_plugin").ThresholdMask,
            load_example("fixed_mask_plugin").FixedRandomMask]


def digits_net(seed: int = 0, architecture: str = "conv2") -> ConvNet:
    """The Conv-k network of the 1x8x8 digits data, initialised from a fixed seed."""
    torch.manual_seed(seed)
    return ConvNet(architecture, in_channels=1, image_size=8, num_classes=10)


def digits_batch(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def prepared(name: str | type[methods.Method], options: dict | None = None, seed: int = 0,
             model: nn.Module | None = None) -> tuple[nn.Module, methods.Method]:
    """A digits network prepared by the method ``name`` (a registered name, or a method class)."""
    method_class = methods.get(name) if isinstance(name, str) else name
    method = method_class(**(options or {}))
    model = digits_net(seed) if model is None else model
    method.prepare(model, torch.Generator().manual_seed(seed + 1))
    method.set_sample_generator(torch.Generator().manual_seed(seed + 2))
    return model, method


@torch.no_grad()
def randomise_scores(model: nn.Module, seed: int = 0) -> None:
    """Give every learned score (and scale) a random value, so that masks are not trivial."""
    generator = torch.Generator().manual_seed(seed)
    for _, layer in masked_layers(model):
        if hasattr(layer, "scores"):
            layer.scores.copy_(torch.randn(layer.scores.shape, generator=generator))
        if isinstance(getattr(layer, "scale", None), torch.Tensor):
            layer.scale.copy_(0.5 + torch.rand((), generator=generator))


# ---------------------------------------------------------------------------------------------------
# external plugins: real distributions on disk, discovered by a fresh interpreter


def write_distribution(root: Path, dist_name: str, entry_points: dict[str, str],
                       modules: dict[str, str]) -> Path:
    """Write importable modules and a ``*.dist-info`` directory whose ``entry_points.txt`` declares
    ``entry_points`` (name -> "module:attribute") in the group ``subnetbench.methods``."""
    root.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        path = root / (module.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    dist_info = root / f"{dist_name.replace('-', '_')}-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.1.0\n")
    lines = [f"[{methods.ENTRY_POINT_GROUP}]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return dist_info


def source_tree_copy(root: Path) -> Path:
    """The package as a wheel lays it out (``root/subnetbench/methods``...), copied from the
    repository; a fresh interpreter with ``root`` first on its path imports it instead of the
    installed one, so a test can drop a module into ``root/subnetbench/methods``."""
    ignore = shutil.ignore_patterns("__pycache__", "suite")
    package = root / "subnetbench"
    shutil.copytree(REPO / "subnetbench", package, ignore=ignore)
    for folder in ("methods", "benchmark", "reports"):
        shutil.copytree(REPO / folder, package / folder, ignore=ignore)
    return package


def run_python(code: str, *path_entries: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with ``path_entries`` first on PYTHONPATH (the package
    itself comes from the environment's install)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in path_entries)
    env.setdefault("OMP_NUM_THREADS", "1")
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=path_entries[0]
                            if path_entries else REPO, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"subprocess failed ({result.returncode}):\n{result.stderr}")
    return result


def last_json_line(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------
# CIFAR in torchvision's on-disk format, generated (the real data cannot be downloaded here)


def _dump_pickle(path, payload):
    with open(path, "wb") as handle:
        pickle.dump(payload, handle, protocol=2)


def fake_cifar(root, dataset, sizes, seed=0):
    """Write a tiny data set in the official layout; return (train data, train labels, test ...)."""
    rng = np.random.default_rng(seed)
    classes = 10 if dataset == "cifar10" else 100
    # The official pickles come from Python 2, whose str keys torchvision reads back as str
    # (encoding="latin1"): the keys are "data" and "labels" / "fine_labels".
    label_key = "labels" if dataset == "cifar10" else "fine_labels"

    def batch(n):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, classes, n).tolist()
        payload = {"batch_label": "fake", "data": data, label_key: labels}
        if dataset == "cifar100":
            payload["coarse_labels"] = [label // 5 for label in labels]
        return payload

    cls = torchvision.datasets.CIFAR10 if dataset == "cifar10" else torchvision.datasets.CIFAR100
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    train_batches = [batch(n) for n in sizes[:-1]]
    test_batch = batch(sizes[-1])
    for (name, _), payload in zip(cls.train_list, train_batches):
        _dump_pickle(folder / name, payload)
    _dump_pickle(folder / cls.test_list[0][0], test_batch)
    names = [f"class{i}" for i in range(classes)]
    _dump_pickle(folder / cls.meta["filename"], {cls.meta["key"]: names, "coarse_label_names": names[:20]})
    train_data = np.concatenate([b["data"] for b in train_batches])
    train_labels = sum((b[label_key] for b in train_batches), [])
    return train_data, train_labels, test_batch["data"], test_batch[label_key]


# ---------------------------------------------------------------------------------------------------
# processes that hold a run's lock


def interruptible() -> None:
    """``preexec_fn`` of a child process a test interrupts with SIGINT: started from a shell's
    background job (``cmd &``, as some CI runners do) it inherits SIGINT ignored (POSIX), and a
    Python started so never raises KeyboardInterrupt; Ctrl-C's default is given back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def child_env() -> dict:
    """The environment of a child Python that imports this checkout, on one thread."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def hold_lock(results_dir, run_id: str, seconds: float) -> subprocess.Popen:
    """Another process that takes the run's lock, says so on stdout, and keeps it ``seconds``
    (returned once it holds it)."""
    code = textwrap.dedent(f"""
        import sys, time
        from subnetbench import locks
        lock = locks.acquire({str(results_dir)!r}, {run_id!r})
        print("held" if lock else "refused", flush=True)
        time.sleep({seconds})
    """)
    process = subprocess.Popen([sys.executable, "-c", code], env=child_env(),
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process
