"""``autocast=bf16`` on the CPU (the same code path as on CUDA: ``torch.autocast`` of the run's
device type) keeps the accuracy of float32 runs on digits, within a stated tolerance.

Three seeds of ASLP on Conv2 for 6 epochs each way. Across seeds the extracted accuracy of these runs
varies by about one point; bfloat16 rounds the forward's activations to 8 bits of mantissa, which
moves individual runs, not the distribution: the means agree within 2 points and every run stays
within 4 points of its float32 twin (the same seed: same data order and initialisation).
"""
from __future__ import annotations

import statistics

from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.runner import execute
from tests.helpers import single_torch_thread  # noqa: F401  (autouse fixture)

SEEDS = (0, 1, 2)
BUDGET = {"epochs": "6", "patience": "0"}


def test_bf16_keeps_the_accuracy_of_float32_on_digits(tmp_path):
    accuracy: dict[str, list[float]] = {}
    for autocast in ("none", "bf16"):
        results = [execute(make_config("digits-conv2", "aslp", seed, {**BUDGET, "autocast": autocast}),
                           tmp_path / autocast, device="cpu", progress=False) for seed in SEEDS]
        assert all(r["status"] == "completed" for r in results)
        # the provenance says which float32 products ran in TF32: none, on a CPU
        assert all(r["provenance"]["tf32"] == {"matmul": False, "convolutions": False}
                   for r in results)
        accuracy[autocast] = [r["metrics"]["final_test_acc"] for r in results]
    assert accuracy["bf16"] != accuracy["none"]  # bf16 did compute in another precision
    assert abs(statistics.mean(accuracy["bf16"]) - statistics.mean(accuracy["none"])) <= 0.02
    assert all(abs(b - f) <= 0.04 for b, f in zip(accuracy["bf16"], accuracy["none"]))
    assert min(accuracy["bf16"]) > 0.8  # learned: far above the 10 % of chance
