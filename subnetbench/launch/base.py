"""The executor interface. An executor trains a command's units (a run, or with ``--seed-batch K`` a
seed batch of K seeds trained together) and gives each run's
:class:`~subnetbench.launch.outcome.RunOutcome` as it ends. Whatever launches a run, it trains under
its lock (:mod:`subnetbench.locks`): a run another process is training is left to it."""
from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from subnetbench.benchmark.callbacks import ProgressSink
from subnetbench.launch.options import RunSettings
from subnetbench.launch.outcome import RunOutcome


@dataclass
class Execution:
    """What an executor gives back: the outcomes as they come, and whether this command waits for
    them (``--no-wait``, or stopped waiting: the runs go on elsewhere, with ``code``)."""

    outcomes: Iterable[RunOutcome]
    waited: bool = True
    code: int = 0


class Executor(abc.ABC):
    """Trains units of runs. ``name`` is recorded in the plan; ``device`` is every run's device
    option; ``slots`` how many units train at once; ``local`` whether this process shows their
    progress (submitit jobs write their own logs)."""

    name = "inline"
    local = True

    def __init__(self, device: str, slots: int = 1) -> None:
        self.device = device
        self.slots = slots

    @abc.abstractmethod
    def execute(self, units: list[list], results_dir: str, settings: RunSettings,
                display: ProgressSink, plan_entry: dict[str, Any]) -> Execution:
        """Train ``units``; their runs' progress events go to ``display``. ``plan_entry`` is this
        command's entry of the results directory's plan (:mod:`subnetbench.plans`), which an
        executor completes with what it knows (job ids)."""
