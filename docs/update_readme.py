"""Regenerate the README's digits numbers, and its screenshot, from the committed results.

    python docs/update_readme.py                      # the README's blocks from docs/results/
    python docs/update_readme.py --from results/digits --screenshot
        # first copy the result files of the README's first command into docs/results/digits,
        # then write the blocks and docs/report.png (headless Chromium, as the browser test)
    python docs/update_readme.py --dwr-from results/dwr
        # the supermask DWR runs of DWR_COMMAND (both gradients of the factor) into
        # docs/results/dwr-gradient, then the blocks

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
DWR_COMMITTED = ROOT / "docs" / "results" / "dwr-gradient"
# What made docs/results/dwr-gradient: supermask with DWR, both gradients of its factor, 5 seeds.
DWR_COMMAND = ("subnetbench run digits-conv2 --method supermask --seeds 0,1,2,3,4 "
               "--set supermask.dynamic_weight_rescale=true [--set supermask.dwr_gradient=detached] "
               "--results results/dwr")
METHODS = ("aslp", "supermask", "edge_popup", "random_pruning", "magnitude_pruning", "dense")
COLUMNS = (("none", "plain"), ("SR", "SR (supermask: DWR)"), ("SC", "SC"))


def _cell(runs) -> str:
    accuracies = [100 * r.metric("final_test_acc") for r in runs]
    kept = statistics.mean(r.metric("kept_fraction") for r in runs)
    spread = f" ± {statistics.stdev(accuracies):.2f}" if len(accuracies) > 1 else ""
    return f"{statistics.mean(accuracies):.2f}{spread} (kept {100 * kept:.1f} %)"


def render(results_dir: Path = COMMITTED) -> str:
    """The README's block: the table of the extracted subnetworks' accuracy, and the stack."""
    from subnetbench.describe import axes_label  # the paper's columns: SR is supermask's DWR
    from subnetbench.reports.loading import load_results

    runs = load_results(results_dir).completed
    if not runs:
        raise SystemExit(f"no completed result file in {results_dir}")
    by_cell: dict[tuple[str, str], list] = {}
    for run in runs:
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


def _mean_std(values: list[float]) -> str:
    spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.2f}{spread}"


def render_dwr(results_dir: Path = DWR_COMMITTED) -> str:
    """The README's sentence on supermask's DWR collapse: the extracted accuracy per seed with the
    official codes' differentiable factor and with it detached (docs/results/dwr-gradient)."""
    from subnetbench.reports.loading import load_results

    runs = load_results(results_dir).completed
    by_gradient: dict[str, list] = {}
    for run in sorted(runs, key=lambda r: r.seed):
        by_gradient.setdefault(run.options["method"]["dwr_gradient"], []).append(run)
    parts = []
    for gradient, words in (("straight_through", "the official codes' differentiable factor (the "
                                                  "default, `supermask.dwr_gradient=straight_through`)"),
                            ("detached", "the factor detached from the backward pass "
                                         "(`dwr_gradient=detached`, this project's earlier behaviour)")):
        accuracies = [100 * r.metric("final_test_acc") for r in by_gradient.get(gradient, [])]
        if not accuracies:
            raise SystemExit(f"no completed {gradient} run in {results_dir}")
        seeds = ", ".join(f"{a:.1f}" for a in accuracies)
        parts.append(f"with {words}: {_mean_std(accuracies)} % (seeds {min(r.seed for r in runs)} to "
                     f"{max(r.seed for r in runs)}: {seeds})")
    return (f"- supermask with dynamic weight rescaling (DWR) on digits-conv2, extracted accuracy, "
            f"{parts[0]}; {parts[1]} (`{DWR_COMMAND}`, `docs/results/dwr-gradient`);")


def render_overhead(results_dir: Path = COMMITTED) -> str:
    """The README's sentence on claim 4: the committed timing study of the digits results
    (``subnetbench timing digits-conv2``), its medians and verdicts (reports/timing.py)."""
    from subnetbench.reports.claims import OVERHEAD_MARGIN_PP
    from subnetbench.reports.timing import load_studies

    studies, _ = load_studies(results_dir, OVERHEAD_MARGIN_PP)
    if not studies:
        raise SystemExit(f"no timing study in {results_dir / 'timing'}: run subnetbench timing "
                         f"digits-conv2 --results {results_dir}")
    study = studies[0]
    sr, joint, dwr = study.overheads

    def pct(estimate) -> str:
        ci = (f" [{estimate.ci[0]:+.0f}, {estimate.ci[1]:+.0f}]" if estimate.ci else "")
        return f"{estimate.median:+.0f} %{ci}"

    return (f"- what a rescaling costs per epoch (claim 4), from `subnetbench timing {study.protocol}` "
            f"({study.repeats} repeats, every arm timed in turn in one process; medians with their "
            f"95 % CI; the machine's load was not controlled): smart rescale as the released code "
            f"steps it, two passes a batch, {pct(sr)} over aslp without it; {pct(joint)} with "
            f"`method.smart_rescale_update=joint` (one pass); supermask's DWR {pct(dwr)}. Verdict on "
            f"\"SR is cheaper than DWR\": {study.verdict.label} with two passes, "
            f"{study.joint_verdict.label} in one pass. With two passes most of SR's cost is the "
            f"second pass, which the paper's 0.13 (SR) against 0.2 (DWR) cannot include.")


# The README's generated blocks: marker name -> what renders it.
BLOCKS = {"digits-results": render, "dwr-gradient": render_dwr, "rescaling-cost": render_overhead}


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def block_of(text: str, name: str) -> str:
    begin, end = markers(name)
    return text.split(begin, 1)[1].split(end, 1)[0].strip()


def write_readme() -> None:
    text = README.read_text()
    for name, renderer in BLOCKS.items():
        begin, end = markers(name)
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{renderer()}\n{end}{tail}"
    README.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/update_readme.py", description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", metavar="RESULTS",
                        help="copy the result files (runs/*.json) of this results directory into "
                             "docs/results/digits first")
    parser.add_argument("--screenshot", action="store_true",
                        help="also write docs/report.png from the committed results")
    parser.add_argument("--dwr-from", metavar="RESULTS",
                        help="copy the result files of DWR_COMMAND into docs/results/dwr-gradient first")
    args = parser.parse_args(argv)
    for source, committed in ((args.source, COMMITTED), (args.dwr_from, DWR_COMMITTED)):
        if source:
            target = committed / "runs"
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            for path in sorted(Path(source, "runs").glob("*.json")):
                shutil.copy(path, target / path.name)
    write_readme()
    print(f"README.md: the blocks {', '.join(BLOCKS)} from {COMMITTED.parent}")
    if args.screenshot:
        sys.path.insert(0, str(ROOT))
        from tests.test_report_browser import main as screenshot

        return screenshot([str(COMMITTED), "--out", str(ROOT / "docs" / "report.png")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
