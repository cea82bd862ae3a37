"""What ``torch.compile`` did, read from dynamo's own counters: frames it compiled, frames that fell
back to eager, graph breaks, and hits of its recompile limit (after which a compiled forward
silently runs eager). The self-test and the tests check that compile really compiles."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from torch._dynamo.utils import counters

LIMIT_HIT = "recompile limit"  # in the name of the counter of a frame refused at the limit


@dataclass
class CompileCounts:
    frames: int = 0  # frames dynamo converted, every compile and recompile
    compiled: int = 0  # of which it compiled without error
    graph_breaks: int = 0
    limit_hits: int = 0

    @property
    def fell_back(self) -> int:
        """Frames that ran eager because dynamo could not convert them."""
        return self.frames - self.compiled

    def problem(self) -> str | None:
        """Why compile did not (only) compile, or None."""
        if self.limit_hits:
            return f"the recompile limit was hit {self.limit_hits} times: the forward then runs eager"
        if self.fell_back:
            return f"{self.fell_back} of {self.frames} frames fell back to eager"
        if not self.frames:
            return "nothing was compiled"
        return None

    def __str__(self) -> str:
        return (f"{self.compiled} frames compiled, {self.graph_breaks} graph breaks, "
                f"{self.fell_back} fell back to eager, {self.limit_hits} recompile-limit hits")


def _now() -> CompileCounts:
    return CompileCounts(
        frames=counters["frames"]["total"], compiled=counters["frames"]["ok"],
        graph_breaks=sum(counters["graph_break"].values()),
        limit_hits=sum(n for reason, n in counters["unimplemented"].items() if LIMIT_HIT in reason))


@contextlib.contextmanager
def counted_compiles() -> Iterator[CompileCounts]:
    """The counts of what is compiled inside the block (filled in when it ends)."""
    before = _now()
    counts = CompileCounts()
    try:
        yield counts
    finally:
        after = _now()
        for name in ("frames", "compiled", "graph_breaks", "limit_hits"):
            setattr(counts, name, getattr(after, name) - getattr(before, name))
