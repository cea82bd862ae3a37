"""Regenerate the README's digits numbers, and its screenshot, from the committed results.

    python docs/update_readme.py                      # the README's table from docs/results/digits
    python docs/update_readme.py --from results/digits --screenshot
        # first copy the result files of the README's first command into docs/results/digits,
        # then write the table and docs/report.png (headless Chromium, as the browser test)

The README's first command (``subnetbench run --grid digits --seeds 0,1,2 ...``) writes the result
files; ``docs/results/digits/runs/`` keeps them (the JSON only, not the saved subnetworks), so the
numbers in the README are always those of real runs, with the software they came from (torch
version, Python, CPU model, from the files' provenance). tests/test_readme.py checks that the README
says what this script makes of the committed files.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "results" / "digits"
README = ROOT / "README.md"
BEGIN, END = "<!-- digits-results:begin -->", "<!-- digits-results:end -->"
METHODS = ("aslp", "supermask", "edge_popup", "random_pruning", "magnitude_pruning", "dense")
COLUMNS = (("none", "plain"), ("SR", "SR (supermask: DWR)"), ("SC", "SC"))


def _cell(runs) -> str:
    accuracies = [100 * r.metric("final_test_acc") for r in runs]
    kept = statistics.mean(r.metric("kept_fraction") for r in runs)
    spread = f" ± {statistics.stdev(accuracies):.2f}" if len(accuracies) > 1 else ""
    return f"{statistics.mean(accuracies):.2f}{spread} (kept {100 * kept:.1f} %)"


def render(results_dir: Path = COMMITTED) -> str:
    """The README's block: the table of the extracted subnetworks' accuracy, and the stack."""
    from subnetbench.describe import axes_label
    from subnetbench.reports.loading import load_results

    runs = load_results(results_dir).completed
    if not runs:
        raise SystemExit(f"no completed result file in {results_dir}")
    by_cell: dict[tuple[str, str], list] = {}
    for run in runs:
        # the paper's column (axes_label): supermask's DWR is its SR column, as the title says
        by_cell.setdefault((run.method, axes_label(run.variant)), []).append(run)
    seeds = sorted({run.seed for run in runs})
    first = runs[0].provenance
    versions = first.versions or {}
    stack = (f"torch {versions.get('torch')}, torchvision {versions.get('torchvision')}, "
             f"Python {first.python}, {first.device_name} ({first.platform})")
    lines = [f"Test accuracy of the extracted subnetwork, mean ± std over seeds "
             f"{', '.join(map(str, seeds))}, digits-conv2, with the kept fraction of prunable weights "
             f"({len(runs)} runs of `docs/results/digits`, made with {stack}):", "",
             "| method | " + " | ".join(title for _, title in COLUMNS) + " |",
             "| --- | " + " | ".join("---" for _ in COLUMNS) + " |"]
    for method in METHODS:
        family = "masks only" if runs and any(r.method == method and r.family == "mask-only"
                                              for r in runs) else "trains weights"
        cells = [_cell(by_cell[(method, key)]) if (method, key) in by_cell else "" for key, _ in COLUMNS]
        lines.append(f"| `{method}` ({family}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_readme(block: str) -> None:
    text = README.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/update_readme.py", description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", metavar="RESULTS",
                        help="copy the result files (runs/*.json) of this results directory into "
                             "docs/results/digits first")
    parser.add_argument("--screenshot", action="store_true",
                        help="also write docs/report.png from the committed results")
    args = parser.parse_args(argv)
    if args.source:
        target = COMMITTED / "runs"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for path in sorted(Path(args.source, "runs").glob("*.json")):
            shutil.copy(path, target / path.name)
    write_readme(render())
    print(f"README.md: the digits table from {COMMITTED}")
    if args.screenshot:
        sys.path.insert(0, str(ROOT))
        from tests.test_report_browser import main as screenshot

        return screenshot([str(COMMITTED), "--out", str(ROOT / "docs" / "report.png"),
                           "--title", "subnetbench report: the digits grid"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
