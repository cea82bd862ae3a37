"""How runs are shown to people: a run's label, what the live display plans for it, and the text
summary of a command's runs."""
from __future__ import annotations

from typing import Any

import torch

from subnetbench.benchmark.config import RunConfig
from subnetbench.describe import chance_cause, configuration_label
from subnetbench.progress import PlannedRun


def run_label(config: RunConfig) -> str:
    """'digits-conv2 aslp SR seed 0': a run as people tell it apart (its variant in the paper's
    words and its other non-default options), for the live display and the line of a finished run."""
    label = configuration_label(config.method, config.variant(), config.non_default_options())
    return f"{config.protocol} {label} seed {config.seed}"


def planned_run(config: RunConfig) -> PlannedRun:
    """What the live display costs the time left from, before the run starts: its epoch budget (the
    most it trains: early stopping may end it sooner) and its training passes a batch."""
    traits = config.traits
    group = f"{config.protocol}.{config.method}"
    return PlannedRun(config.run_id, run_label(config), f"{group}.{config.config_hash}", group,
                      config.recipe.epochs * traits.rounds, traits.update_pass_count)


def _mean_std(runs: list[dict[str, Any]], key: str) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one run) of a metric over runs."""
    values = torch.tensor([float(r["metrics"][key]) for r in runs], dtype=torch.float64)
    return float(values.mean()), (float(values.std()) if len(runs) > 1 else 0.0)


def _mean_pm_std(mean_std: tuple[float, float], n: int) -> str:
    """A percentage's mean ± std over n runs, 14 characters wide; one run has no spread to show."""
    mean, std = mean_std
    return f"{100 * mean:>7.2f} ± {100 * std:<4.2f}" if n > 1 else f"{100 * mean:>7.2f}{'':7}"


def summarise(results: list[dict[str, Any]]) -> str:
    """A plain-text table, one row per configuration named by its method and variant (``aslp SR``,
    ``supermask DWR``, other non-default options in brackets): mean and std over its runs of the
    test accuracy (stochastic methods: sampled masks; a single run shows no std), the extracted
    subnetwork's accuracy, the kept fraction and the epochs to the best validation accuracy; then
    the runs that ended at chance level, each with its likely cause."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for result in results:
        key = (result["protocol"], result["method"], result["config_hash"])
        groups.setdefault(key, []).append(result)
    labels = {key: configuration_label(runs[0]["method"], runs[0]["variant"],
                                       runs[0]["non_default_options"]) for key, runs in groups.items()}
    width = max([len("configuration")] + [len(label) for label in labels.values()])
    lines = [f"{'protocol':<16} {'configuration':<{width}} {'n':>2} {'test acc %':>14} "
             f"{'extracted %':>14} {'kept %':>7} {'epochs':>6}  config"]
    at_chance: list[str] = []
    for key, runs in sorted(groups.items(), key=lambda item: (item[0][0], labels[item[0]])):
        protocol, _, config_hash = key
        done = [r for r in runs if r.get("status") == "completed"]
        if not done:
            lines.append(f"{protocol:<16} {labels[key]:<{width}} {0:>2}  (no completed run)")
            continue
        test, final, kept, epochs = (_mean_std(done, k) for k in
                                     ("test_acc", "final_test_acc", "kept_fraction", "epochs_to_best"))
        lines.append(f"{protocol:<16} {labels[key]:<{width}} {len(done):>2} "
                     f"{_mean_pm_std(test, len(done))} "
                     f"{_mean_pm_std(final, len(done))} {100 * kept[0]:>7.1f} "
                     f"{epochs[0]:>6.1f}  {config_hash}")
        for r in done:
            cause = chance_cause(r["dataset"], r["metrics"]["final_test_acc"], r["options"],
                                 r["curves"]["val_acc"], r["metrics"]["epochs_run"])
            if cause:
                at_chance.append(f"  {r['run_id']} ({labels[key]}): extracted "
                                 f"{100 * r['metrics']['final_test_acc']:.1f}%: {cause}")
    if at_chance:
        lines += ["", f"NEAR CHANCE LEVEL: {len(at_chance)} run(s), and the likely cause:"] + at_chance
    return "\n".join(lines)
