"""Assemble the report: load, analyse, draw, export, render the HTML (autoescaped Jinja2)."""
from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2

from subnetbench.errors import SubnetbenchError
from subnetbench.files import atomic_write_text, check_writable_directory, folder_written_whole
from subnetbench.reports import stats
from subnetbench.reports.claims import MIN_PAIRS, OVERHEAD_MARGIN_PP, evaluate_claims, observations
from subnetbench.reports.exports import write_tables
from subnetbench.reports.figures import render_figures
from subnetbench.reports.loading import ResultSet, load_reference, load_results
from subnetbench.reports.provenance import (
    commit_text,
    created_text,
    device_text,
    find_holes,
    protocol_groups,
    split_provenance,
    unidentified_runs,
    versions_text,
)
from subnetbench.reports.reproduction import missing_rows, reproduction, view
from subnetbench.reports.scope import paper_test
from subnetbench.reports.tables import Config, build_tables, dataset_sort_key, group_configs, natural_key
from subnetbench.reports.timing import load_studies

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


class ReferenceUnusable(SubnetbenchError):
    """The published-values file named with ``--reference`` is missing or unreadable."""


# How each claim is judged (reports/claims.py): claim 5 pairs the extracted and the stochastic
# accuracy within each run, with stats.equivalence_verdict; every other claim pairs configurations
# by seed, with stats.directional_verdict. Section 6 of the report states the rules from this (a
# test checks it against the claims' comparisons).
EQUIVALENCE_CLAIMS = (5,)
TIMING_CLAIMS = (4,)  # judged on a timing study (reports/timing.py), not on paired runs

REPORT_NAME = "report.html"
REPORT_ENTRIES = frozenset({REPORT_NAME, "figures", "tables"})  # what a report folder holds
MINUS = "\u2212"


def shown_path(path: str | Path | None) -> str:
    """A path as the report may show it: as given when relative, its last part when absolute (a
    report carries no absolute path of the machine that made it)."""
    if path is None:
        return "none"
    path = Path(path)
    return path.name if path.is_absolute() else str(path)


def default_title(configs: list[Config]) -> str:
    """What was run: data sets and networks, methods, seeds and the number of runs."""
    if not configs:
        return "subnetbench report: no completed runs"
    where = sorted({(c.dataset, c.network) for c in configs},
                   key=lambda dn: (dataset_sort_key(dn[0]), natural_key(dn[1])))
    by_dataset: dict[str, list[str]] = {}
    for dataset, network in where:
        by_dataset.setdefault(dataset, []).append(network)
    data = "; ".join(f"{d} {', '.join(n)}" for d, n in by_dataset.items())
    methods = list(dict.fromkeys(c.method for c in configs))
    seeds = sorted({s for c in configs for s in c.seeds})
    runs = sum(len(c.runs) for c in configs)
    consecutive = len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1))
    seed_text = (f"seeds {seeds[0]}\u2013{seeds[-1]}" if consecutive
                 else "seed" + ("s " if len(seeds) != 1 else " ") + ", ".join(map(str, seeds)))
    return (f"{data}: {', '.join(methods)} ({len(configs)} configurations, {seed_text}, "
            f"{runs} runs)")


# -- formatting filters (return plain text; the template autoescapes it) ------------------------------
def fmt_num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "\u2013"
    return f"{value:.{digits}f}".replace("-", MINUS)


def fmt_signed(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "\u2013"
    if round(value, digits) == 0:
        return f"{0:.{digits}f}"  # no "-0.0" or "+0.0"
    return f"{value:+.{digits}f}".replace("-", MINUS)


def fmt_pct(value: float | None, digits: int = 1) -> str:
    return "\u2013" if value is None else f"{100 * value:.{digits}f}%"


def fmt_ci(summary: stats.Summary, digits: int = 1) -> str:
    if summary.ci is None:
        return f"n={summary.n}"
    return f"[{fmt_num(summary.ci[0], digits)}, {fmt_num(summary.ci[1], digits)}]"


def fmt_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,  # every value is HTML-escaped unless explicitly marked safe (never done)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=fmt_num, signed=fmt_signed, pct=fmt_pct, ci=fmt_ci, value=fmt_value,
                       css=lambda label: str(label).replace(" ", "-").replace(":", ""))
    env.globals.update(versions_text=versions_text, device_text=device_text, commit_text=commit_text,
                       created_text=created_text)
    return env


def rules(claims: list) -> dict[str, Any]:
    """The constants and claim numbers section 6 of the report states its rules with."""
    return {
        "tolerance": stats.REPRODUCTION_TOLERANCE_PP,
        "accuracy_margin": stats.ACCURACY_MARGIN_PP,
        "epochs_margin_relative": stats.EPOCHS_MARGIN_RELATIVE,
        "epochs_margin_min": stats.EPOCHS_MARGIN_MIN,
        "substantial": stats.SUBSTANTIAL_KEPT_FRACTION,
        "confidence": stats.CONFIDENCE,
        "min_pairs": MIN_PAIRS,
        "max_seeds": stats.MAX_SEEDS,
        "overhead_margin": OVERHEAD_MARGIN_PP,
        "directional": [c.number for c in claims
                        if c.number not in EQUIVALENCE_CLAIMS + TIMING_CLAIMS],
        "equivalence": [c.number for c in claims if c.number in EQUIVALENCE_CLAIMS],
        "timing": list(TIMING_CLAIMS),
        "multipart": [c for c in claims if len(c.parts) > 1],
    }


def build_report(results_dir: str | Path, out_dir: str | Path, title: str | None = None,
                 reference: str | Path | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Write the HTML report, its figures (PNG, SVG) and tables (CSV, LaTeX) to ``out_dir``.

    ``results_dir`` is the engine's results directory (result files under ``runs/``). ``reference``
    is the published-values file (default: the repository's ``reference_results/published.json``).
    Returns the path of the HTML file. Bad result files never raise: they are listed in the report.
    ``log`` receives a line at each step (the command line prints them: drawing takes a while).
    """
    return build(results_dir, out_dir, title, reference, log)[0]


def build(results_dir: str | Path, out_dir: str | Path, title: str | None = None,
          reference: str | Path | None = None,
          log: Callable[[str], None] | None = None) -> tuple[Path, ResultSet]:
    """:func:`build_report`, also returning the result files it read (what the command line says
    about a directory whose files are all unusable)."""
    say = log or (lambda line: None)
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    results: ResultSet = load_results(results_dir)
    ref = load_reference(reference)
    if reference is not None and not ref.readable:  # asked for by name: not to be dropped silently
        raise ReferenceUnusable(f"the published-values file given with --reference cannot be "
                                f"used: {ref.problem.split(': no published values')[0]}; give a "
                                "readable published.json, or leave --reference out to use the "
                                "repository's")
    check_writable_directory(out_dir, "report directory")
    # Built beside the folder and swapped in whole: a killed report leaves the old one or this one.
    shown_reference = ("the repository's reference_results/published.json" if reference is None
                       else shown_path(ref.path))
    with folder_written_whole(out_dir, REPORT_ENTRIES) as staging:
        _write(results, ref, shown_reference, results_dir, staging, title, say)
    return out_dir / REPORT_NAME, results


def _write(results: ResultSet, ref: Any, shown_reference: str, results_dir: Path, out_dir: Path,
           title: str | None, say: Callable[[str], None]) -> None:
    """The report's figures, tables and HTML, written under ``out_dir``."""
    configs = group_configs(results.completed)
    studies, bad_studies = load_studies(results_dir, OVERHEAD_MARGIN_PP)
    results.skipped.extend(bad_studies)
    old_timings = sum(1 for r in results.completed if r.timings and r.timings.rescaling_overhead)
    say(f"report: {len(results.completed)} completed runs of {results_dir} in {len(configs)} "
        "configurations; tables, claims (t intervals)")
    inconsistent = [(c, c.inconsistent_options) for c in configs if c.inconsistent_options]
    tables = build_tables(configs, ref)
    claims = evaluate_claims(configs, studies, shown_path(results_dir), old_timings)
    figures = render_figures(configs, out_dir, say)
    all_runs = sorted(results.completed, key=lambda r: r.run_id) + \
        sorted(results.failed + results.running, key=lambda r: r.run_id)
    rows = reproduction(ref, configs, tables)
    repro = view(rows, missing_rows(ref, configs))
    say("report: CSV and LaTeX tables")
    exports = write_tables(out_dir, tables, claims, all_runs, rows)

    context = _context(results, ref, results_dir, title, configs, tables, claims, figures, rows,
                       repro, exports, inconsistent)
    context.update(reference_shown=shown_reference, timing_studies=studies)
    html = environment().get_template("report.html.j2").render(**context)
    atomic_write_text(out_dir / REPORT_NAME, html)


def _context(results: ResultSet, ref: Any, results_dir: Path, title: str | None, configs: list,
             tables: list, claims: list, figures: list, rows: list, repro: Any, exports: list,
             inconsistent: list) -> dict[str, Any]:
    """What the HTML template shows."""
    holes, seed_universe = find_holes(results)
    shared, varying = split_provenance(results.completed)
    return {
        "title": title or default_title(configs),
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "results_dir": shown_path(results_dir),
        "runs_dir": f"{shown_path(results_dir)}/{results.runs_dir.name}",
        "paper_command": paper_test(),
        "reference": ref,
        "reproduction": rows,
        "repro": repro,
        "our_datasets": sorted({c.dataset for c in configs}, key=dataset_sort_key),
        # With a published value run, its verdict is the point and comes first; with none, the
        # list of values is what could be run next, and the user's own results come before it.
        "section_order": ("reproduction", "results") if repro.any_run or not configs
                         else ("results", "reproduction"),
        "configs": configs,
        "protocol_groups": protocol_groups(configs),
        "inconsistent": inconsistent,
        "tables": tables,
        "claims": claims,
        "observations": observations(configs),
        "figures": figures,
        "completed": sorted(results.completed, key=lambda r: r.run_id),
        "shared_provenance": shared,
        "varying_provenance": varying,
        "failed": sorted(results.failed, key=lambda r: r.run_id),
        "running": sorted(results.running, key=lambda r: r.run_id),
        "unidentified": unidentified_runs(results),
        "skipped": results.skipped,
        "warnings": results.warnings,
        "holes": holes,
        "seed_universe": seed_universe,
        "exports": exports,
        "rules": rules(claims),
    }

