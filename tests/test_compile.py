"""``compile=true`` really compiles, for every method and for several configurations in one process
(as a grid, a ``--devices`` worker or the speed study runs them), judged by dynamo's own counters:
no frame falls back to eager, the recompile limit is never hit, and the masked layers break no graph
(their mask noise is drawn ahead of the compiled forward, from the run's seeded streams).

The backend is ``aot_eager``: dynamo's tracing and AOT autograd, what decides graph breaks and
recompiles, without the C++ compiler's minutes; inductor runs in the self-test (tests/test_selftest.py).
"""
from __future__ import annotations

import functools
import tempfile

import pytest
import torch

from subnetbench import methods
from subnetbench.benchmark import training
from subnetbench.benchmark.compile_counts import counted_compiles
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.data import Split
from subnetbench.benchmark.runner import execute_runs
from tests.helpers import single_torch_thread  # noqa: F401  (autouse fixture)

# Every registered method at its defaults, then variants whose code paths differ (two update passes
# a batch, two Gumbel draws a weight, a rescaling differentiated through the sample, the percentile
# selection); 13 configurations, more than dynamo's recompile limit of 8.
CONFIGS = [(name, {}) for name in methods.names()] + [
    ("aslp", {"method.smart_rescale": "true"}),
    ("aslp", {"method.estimator": "gumbel_pair"}),
    ("aslp", {"method.temperature": "0.5"}),
    ("supermask", {"method.dynamic_weight_rescale": "true"}),
    ("supermask", {"method.dynamic_weight_rescale": "true", "method.smart_rescale": "true"}),
    ("edge_popup", {"method.selection": "percentile", "method.keep_fraction": "0.3"}),
    ("edge_popup", {"method.keep_fraction": "0.7"}),
]
# 3 batches of 24 training images (80 less the validation split), 1 epoch (2 rounds of magnitude
# pruning), a test set of 16 images.
BUDGET = {"epochs": "1", "patience": "0", "batch_size": "24", "eval_batch_size": "32"}


def _raw() -> tuple[Split, Split]:
    generator = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        return Split(torch.randint(0, 17, (n, 1, 8, 8), generator=generator, dtype=torch.uint8),
                     torch.randint(0, 10, (n,), generator=generator))

    return split(80), split(16)


@pytest.fixture(scope="module")
def compiled_grid():
    """(configuration, result, counts) of each configuration, all in this one process."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training.torch, "compile",
                      functools.partial(torch.compile, backend="aot_eager"))
        raw, outcomes = _raw(), []
        for name, options in CONFIGS:
            config = make_config("digits-conv2", name, 0, {**BUDGET, **options, "compile": "true"})
            with counted_compiles() as counts, tempfile.TemporaryDirectory() as folder:
                (result,) = execute_runs([config], folder, device="cpu", progress=False, raw=raw)
            outcomes.append((config, result, counts))
        yield outcomes


def test_every_configuration_trains_evaluates_and_extracts_compiled(compiled_grid):
    for config, result, _ in compiled_grid:
        assert result["status"] == "completed", (config.run_id, result.get("error"))
        assert 0 < result["metrics"]["kept_fraction"] <= 1
        assert 0 <= result["metrics"]["final_test_acc"] <= 1


def test_compile_compiles_every_frame_without_graph_breaks(compiled_grid):
    for config, _, counts in compiled_grid:
        assert counts.problem() is None, (config.run_id, str(counts))
        assert counts.limit_hits == 0 and counts.fell_back == 0, (config.run_id, str(counts))
        assert counts.graph_breaks == 0, (config.run_id, str(counts))
        # A graph for the training forward, recompiled only for what changes between steps (the
        # tensors each pass of alternating smart rescale freezes: 2 graphs); a run with a
        # rescaling also trains the networks of the claim-4 measurement beside it, each its own.
        assert 1 <= counts.compiled <= 12, (config.run_id, str(counts))


def test_compiled_training_draws_the_same_masks_as_eager(tmp_path):
    """The noise drawn ahead of the compiled forward comes from the run's own seeded stream, in the
    eager order: the first step's sampled masks, hence the logits, are those of an eager run."""
    raw = _raw()
    eager = make_config("digits-conv2", "aslp", 0, {**BUDGET, "epochs": "1"})
    compiled = make_config("digits-conv2", "aslp", 0, {**BUDGET, "epochs": "1", "compile": "true"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training.torch, "compile",
                      functools.partial(torch.compile, backend="aot_eager"))
        (a,) = execute_runs([eager], tmp_path / "eager", device="cpu", progress=False, raw=raw)
        (b,) = execute_runs([compiled], tmp_path / "compiled", device="cpu", progress=False, raw=raw)
    assert b["curves"]["train_acc"] == a["curves"]["train_acc"]
    assert b["curves"]["train_loss"] == pytest.approx(a["curves"]["train_loss"], rel=1e-5)
