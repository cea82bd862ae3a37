"""A trained run's test evaluation and extraction, which complete its result record."""
from __future__ import annotations

import time

import torch

from subnetbench import methods
from subnetbench.benchmark.config import RunConfig
from subnetbench.benchmark.seeding import make_generator
from subnetbench.benchmark.training import Trainer, accuracy, sampled_accuracy
from subnetbench.records import Curves, Histogram, Metrics, RunRecord, Timings

KEEP_PROBABILITY_BINS = 20


def evaluate_run(config: RunConfig, record: RunRecord, trainer: Trainer, started: float,
                 resumed_s: float) -> torch.nn.Module:
    """Test evaluation and extraction of a trained run: completes ``record`` and returns the
    extracted network.

    ``started`` is the ``time.perf_counter()`` at which this session's training began, and
    ``resumed_s`` the training time of earlier sessions of the run.
    """
    model, method, data, state = trainer.model, trainer.method, trainer.data, trainer.state
    recipe = config.recipe
    device = data.test.labels.device
    model.eval()
    batch = recipe.eval_batch_size
    if method.traits().stochastic:
        test_acc = sampled_accuracy(model, method, data.test, trainer.preprocess, batch,
                                    method.traits().evaluation_samples,
                                    make_generator(config.seed, "test-sampling", device=device))
    else:
        test_acc = accuracy(model, data.test, trainer.preprocess, batch)
    deterministic_test_acc = accuracy(model, data.test, trainer.preprocess, batch)
    extracted, stats = method.extract(model)
    final_test_acc = accuracy(extracted, data.test, trainer.preprocess, batch)
    nonzero, total = methods.count_nonzero_weights(extracted)
    if (nonzero, total) != (stats.kept, stats.total):
        raise AssertionError(f"extraction reports {stats.kept}/{stats.total} kept weights but the "
                             f"extracted network has {nonzero}/{total} nonzero")
    history = state.history
    record.status = "completed"
    record.metrics = Metrics(
        test_acc=test_acc, final_test_acc=final_test_acc,
        deterministic_test_acc=deterministic_test_acc, kept_fraction=stats.kept_fraction,
        epochs_to_best=state.best_epoch, best_val_acc=state.best_val_acc, epochs_run=len(history))
    record.layer_kept_fraction = stats.layer_kept_fraction
    record.keep_probabilities = _keep_probability_histogram(method, model)
    record.curves = Curves(**{key: [h[key] for h in history]
                              for key in ("epoch", "round", "train_loss", "train_acc", "val_acc")})
    record.timings = Timings(total_s=resumed_s + time.perf_counter() - started,
                             epoch_s=[h["seconds"] for h in history], device=device.type)
    return extracted


def _keep_probability_histogram(method: methods.Method, model: torch.nn.Module) -> Histogram | None:
    probabilities = [method.keep_probability(layer) for _, layer in methods.masked_layers(model)]
    if not probabilities or any(p is None for p in probabilities):
        return None
    values = torch.cat([p.detach().flatten().float().cpu() for p in probabilities])
    counts = torch.histc(values, bins=KEEP_PROBABILITY_BINS, min=0.0, max=1.0)
    edges = torch.linspace(0, 1, KEEP_PROBABILITY_BINS + 1)
    return Histogram([round(float(e), 6) for e in edges], [int(c) for c in counts])
