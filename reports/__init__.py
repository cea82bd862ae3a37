"""subnetbench reports: a self-contained, paper-style HTML comparison report from result files.

>>> from subnetbench import reports
>>> html_path = reports.build_report("results", "report")          # doctest: +SKIP

The report reads only the result files (docs/results-format.md) and the published values
(reference_results/published.json). It writes, into the output directory:

- ``report.html``: one self-contained file (figures embedded as base64 PNG, no external resources);
- ``figures/*.png`` and ``figures/*.svg``;
- ``tables/*.csv`` and ``tables/*.tex`` (booktabs).

Command line (wired into ``subnetbench report``): :func:`add_arguments` and :func:`main_from_args`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from subnetbench.errors import SubnetbenchError
from subnetbench.reports.build import build, build_report

__all__ = ["add_arguments", "build_report", "main", "main_from_args"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``subnetbench report``."""
    parser.add_argument("--results", required=True, metavar="DIR",
                        help="results directory of the engine (result files under DIR/runs)")
    parser.add_argument("--out", default="report", metavar="DIR",
                        help="output directory for report.html, figures/ and tables/ (default: report)")
    parser.add_argument("--title", default=None, help="title of the report")
    parser.add_argument("--reference", default=None, metavar="FILE",
                        help="published values (default: reference_results/published.json of the "
                             "repository)")


def main_from_args(args: argparse.Namespace) -> int:
    """Build the report from parsed arguments; 0 on success, 2 when a path cannot be used (the
    results directory is missing, the output directory cannot be written, the --reference file is
    missing or unreadable) or when every result file of the directory is unusable (the report is
    still written: it lists each file and why), with one paragraph on stderr. A directory without
    any result file gives an empty report, exit 0, and a note on stderr."""
    try:
        path, results = build(args.results, args.out, title=getattr(args, "title", None),
                              reference=getattr(args, "reference", None),
                              log=lambda line: print(line, file=sys.stderr, flush=True))
    except (SubnetbenchError, OSError) as error:
        print(f"subnetbench report: error: {error}", file=sys.stderr)
        return 2
    print(f"report written to {Path(path)}")
    if not results.all_runs and results.skipped:
        # A report of nothing, from a directory full of result files, must not look like success.
        shown = "; ".join(f"{s.file}: {' '.join(s.reason.split())[:160]}" for s in results.skipped[:3])
        more = f"; and {len(results.skipped) - 3} more" if len(results.skipped) > 3 else ""
        print(f"subnetbench report: error: none of the {len(results.skipped)} result files in "
              f"{results.runs_dir} can be used ({shown}{more}), so the report at {path} shows no "
              "run; it lists every file and why. Run the subnetbench run command that made them "
              "again (damaged files are moved aside and their runs computed again), or give the "
              "right --results directory", file=sys.stderr)
        return 2
    if not results.all_runs:
        print(f"subnetbench report: note: there are no result files in {results.runs_dir}; the "
              "report is empty. Is --results the directory given to subnetbench run?",
              file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m reports --results DIR --out DIR``."""
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return main_from_args(parser.parse_args(argv))
