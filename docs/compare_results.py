"""Are two results folders the same runs to the last bit? The check behind "behaviour and numbers
do not move": rerun the committed grid on the same software stack, then compare.

    subnetbench run --grid digits --seeds 0,1,2 --jobs 2 --results /tmp/digits
    python docs/compare_results.py docs/results/digits /tmp/digits

Every run of the first folder must be in the second with the same status, metrics, per-layer kept
fractions, keep-probability histograms and per-epoch curves. Timings and provenance (when, where,
which commit) are not compared: they differ from one run to the next by nature. Exit code 0 when
every run is identical, 1 otherwise, with each difference named.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

COMPARED = ("status", "config_hash", "metrics", "layer_kept_fraction", "keep_probabilities", "curves")


def differences(expected: Path, actual: Path) -> list[str]:
    """What differs between the runs of ``expected`` and those of ``actual`` (empty: identical)."""
    found = []
    paths = sorted((expected / "runs").glob("*.json"))
    if not paths:
        return [f"{expected}/runs holds no result file"]
    for path in paths:
        other = actual / "runs" / path.name
        if not other.is_file():
            found.append(f"{path.name}: missing from {actual}/runs")
            continue
        a, b = json.loads(path.read_text()), json.loads(other.read_text())
        found += [f"{path.name}: {key} differs" for key in COMPARED if a.get(key) != b.get(key)]
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    expected, actual = map(Path, argv)
    found = differences(expected, actual)
    runs = len(list((expected / "runs").glob("*.json")))
    print("\n".join(found) if found else f"identical: {runs} runs of {expected} in {actual}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
