"""What happened to one run, whatever launched it: a typed value, and the line ``run`` prints of it.
The runner gives a result file's JSON object with marker keys (``skipped``, ``running_elsewhere``);
:meth:`RunOutcome.from_runner` is the one place that reads them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from subnetbench import locks

MARKERS = ("skipped", "running_elsewhere")


@dataclass(frozen=True)
class RunOutcome:
    """One run's outcome: its result (the result file's JSON object, or its identity and status
    when there is none), whether a finished result was reused, the lock holder of a run another
    process trains, and the error of a worker or job that raised."""

    config: Any  # RunConfig
    result: dict[str, Any]
    reused: bool = False
    holder: dict[str, Any] | None = None
    error: BaseException | None = field(default=None, compare=False)

    @classmethod
    def from_runner(cls, config: Any, result: dict[str, Any]) -> RunOutcome:
        plain = {key: value for key, value in result.items() if key not in MARKERS}
        return cls(config, plain, reused=bool(result.get("skipped")),
                   holder=result.get("running_elsewhere"))

    @classmethod
    def raised(cls, config: Any, identity: dict[str, Any], error: BaseException) -> RunOutcome:
        """A run of a unit whose worker raised ``error``: failed, with the error's text."""
        text = f"{type(error).__name__}: {' '.join(str(error).split())}"
        return cls(config, {**identity, "status": "failed", "error": text}, error=error)

    @property
    def run_id(self) -> str:
        return self.config.run_id

    @property
    def status(self) -> str | None:
        return self.result.get("status")

    def text(self) -> str:
        """What happened to the run, for the line ``run`` prints of it."""
        if self.status == "completed":
            metrics = self.result["metrics"]
            state = "skipped (done)" if self.reused else "done"
            return (f"{state}, extracted test acc {100 * metrics['final_test_acc']:.2f}%, kept "
                    f"{100 * metrics['kept_fraction']:.1f}%")
        if self.holder is not None:
            return f"running elsewhere ({locks.holder_text(self.holder)}), left to it"
        if self.status == "failed":
            return f"failed: {' '.join(str(self.result.get('error')).split())[:300]}"
        if self.status == "running":
            return "not finished (interrupted; the same command resumes it)"
        return "no result (its job did not finish it)"


def closing_note(outcomes: list[RunOutcome], results_dir: str) -> str | None:
    """A line after the summary when some runs were left to other processes."""
    elsewhere = sum(outcome.holder is not None for outcome in outcomes)
    if not elsewhere:
        return None
    return (f"{elsewhere} run(s) are being trained by another process and were left to it; "
            f"subnetbench status {results_dir} shows them, and this command run again later "
            "reports their results")


def worker_failures(raised: list[RunOutcome], total: int) -> str:
    """One paragraph on the runs whose worker raised (each has its failed line above)."""
    names = ", ".join(o.run_id for o in raised[:5]) + (", ..." if len(raised) > 5 else "")
    return (f"{len(raised)} of {total} runs failed ({names}); their lines above say why; fix the "
            "cause and run the same command again: the finished runs are reused")
