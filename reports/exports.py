"""The report's tables as CSV (long format, every number) and LaTeX (booktabs, paper style)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from subnetbench.files import atomic_write_text
from subnetbench.records import Provenance
from subnetbench.reports.claims import Claim
from subnetbench.reports.loading import Run
from subnetbench.reports.output import csv_text, latex_escape, latex_table
from subnetbench.reports.reproduction import ReproductionRow, by_dataset
from subnetbench.reports.stats import REPRODUCTION_TOLERANCE_PP, Summary
from subnetbench.reports.tables import CellEntry, FamilyTable


def _r(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _math(value: float | None, digits: int = 1, signed: bool = False) -> str:
    """A number for LaTeX, in math mode so a minus sign is a minus; no "-0.0"."""
    if value is None:
        return "--"
    if round(value, digits) == 0:
        return f"${0:.{digits}f}$"
    return f"${value:+.{digits}f}$" if signed else f"${value:.{digits}f}$"


def _math_ci(summary: Summary, digits: int = 1) -> str:
    if summary.ci is None:
        return f"n={summary.n}"
    return f"$[{_math(summary.ci[0], digits)[1:-1]}, {_math(summary.ci[1], digits)[1:-1]}]$"


def _flag(value: bool) -> str:
    return "yes" if value else "no"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "other"


def published_text(entry: CellEntry) -> str:
    pub = entry.published.published
    if pub is None:
        return "no published value"
    return f"{pub.value:.1f} ({pub.kind}, {pub.metric})"


def results_csv(tables: list[FamilyTable]) -> str:
    header = ["family", "dataset", "network", "DA", "SC", "SR", "normalised", "method", "protocol",
              "config_hash", "n", "seeds", "final_test_acc_mean_pct", "final_test_acc_std_pct",
              "final_test_acc_ci95_low_pct", "final_test_acc_ci95_high_pct", "test_acc_mean_pct",
              "kept_fraction_mean", "kept_fraction_std", "published_pct", "verdicts"]
    rows = []
    for t in tables:
        for row in t.rows:
            for method in t.methods:
                for e in row.cells.get(method, []):
                    c, a = e.config, e.accuracy
                    rows.append([t.family, row.dataset, row.network, _flag(row.variant["data_augmentation"]),
                                 _flag(row.variant["signed_constant"]), _flag(row.variant["smart_rescale"]),
                                 c.normalisation, method, c.protocol, c.config_hash, a.n,
                                 " ".join(map(str, c.seeds)), _r(a.mean, 3), _r(a.std, 3),
                                 _r(a.ci[0] if a.ci else None, 3), _r(a.ci[1] if a.ci else None, 3),
                                 _r(e.stochastic.mean, 3), _r(e.kept.mean, 4), _r(e.kept.std, 4),
                                 published_text(e), e.published.verdict.label])
    return csv_text(header, rows)


def published_csv(tables: list[FamilyTable]) -> str:
    header = ["family", "dataset", "network", "variant", "method", "config_hash", "metric", "n",
              "ours_mean_pct", "ours_ci95_low_pct", "ours_ci95_high_pct", "extracted_mean_pct",
              "sampled_mean_pct", "published_pct", "published_kind", "published_id", "verified",
              "variant_fields_not_stated", "difference_pp", "verdict", "reason", "source"]
    rows = []
    for t in tables:
        for e in t.entries:
            c, p = e.config, e.published
            pub, a = p.published, p.ours
            rows.append([t.family, c.dataset, c.network, c.variant_label, c.method, c.config_hash, p.metric,
                         a.n, _r(a.mean, 3), _r(a.ci[0] if a.ci else None, 3),
                         _r(a.ci[1] if a.ci else None, 3), _r(e.accuracy.mean, 3), _r(e.stochastic.mean, 3),
                         "" if pub is None else f"{pub.value:.1f}", "" if pub is None else pub.kind,
                         "" if pub is None else pub.id, "" if pub is None else _flag(pub.verified),
                         "" if pub is None else " ".join(pub.unstated_axes),
                         _r(p.difference, 2), p.verdict.label, p.verdict.reason,
                         "" if pub is None else pub.source])
    return csv_text(header, rows)


def claims_csv(claims: list[Claim]) -> str:
    header = ["claim", "claim_verdict", "part", "part_verdict", "comparison", "a", "b", "strict_pairing",
              "differing_options", "n_pairs", "paired_seeds", "mean_difference", "ci95_low", "ci95_high",
              "unit", "verdict", "reason", "note", "detectable_difference", "seeds_to_decide", "scope",
              "off_paper"]
    rows = []
    for claim in claims:
        for part in claim.parts:
            if not part.comparisons:
                rows.append([claim.number, claim.verdict.label, part.title, part.verdict.label, "", "", "",
                             "", "", 0, "", "", "", "", claim.unit, part.verdict.label,
                             part.verdict.reason, "", "", "",
                             part.scope.text if part.scope else "", claim.off_paper or ""])
            for comp in part.comparisons:
                d = comp.difference
                rows.append([claim.number, claim.verdict.label, part.title, part.verdict.label, comp.label,
                             comp.a_name, comp.b_name, _flag(comp.strict), " ".join(comp.differing),
                             comp.n, " ".join(str(s) for s, _, _ in comp.pairs), _r(d.mean, 3),
                             _r(d.ci[0] if d.ci else None, 3), _r(d.ci[1] if d.ci else None, 3), claim.unit,
                             comp.verdict.label, comp.verdict.reason, comp.note or "",
                             _r(comp.sensitivity.resolution, 3), comp.sensitivity.seeds_needed or "",
                             comp.scope.text, claim.off_paper or ""])
    return csv_text(header, rows)


def runs_csv(runs: list[Run]) -> str:
    header = ["run_id", "status", "protocol", "method", "family", "config_hash", "seed", "dataset", "network",
              "final_test_acc", "test_acc", "kept_fraction", "epochs_to_best", "device", "device_name",
              "git_commit", "git_dirty", "subnetbench_version", "versions", "created", "file", "error"]
    rows = []
    for r in runs:
        p = r.provenance or Provenance()
        rows.append([r.run_id, r.status, r.protocol, r.method, r.family, r.config_hash, r.seed, r.dataset,
                     r.network, r.metric("final_test_acc"), r.metric("test_acc"), r.metric("kept_fraction"),
                     r.metric("epochs_to_best"), r.timings.device if r.timings else None, p.device_name,
                     p.git_commit, p.git_dirty, p.subnetbench_version,
                     json.dumps(p.versions, sort_keys=True) if p.versions else "",
                     p.created, r.source, r.error])
    return csv_text(header, rows)


# -- LaTeX ------------------------------------------------------------------------------------------
def _latex_cell(e: CellEntry) -> str:
    a: Summary = e.accuracy
    if a.mean is None:
        return "--"
    std = f" \\pm {a.std:.1f}" if a.std is not None else ""
    text = f"${a.mean:.1f}{std}$ ({a.n})"
    if e.distinguishing:
        text += " [" + latex_escape(", ".join(f"{k}={v}" for k, v in e.distinguishing.items())) + "]"
    return text


def results_latex(table: FamilyTable) -> str:
    header = ["Dataset", "Network", "DA", "SC", "SR"] + table.methods
    rows = []
    for row in table.rows:
        cells = [latex_escape(row.dataset), latex_escape(row.network)]
        cells += ["\\checkmark" if row.variant[a] else "" for a in ("data_augmentation", "signed_constant",
                                                                     "smart_rescale")]
        for method in table.methods:
            entries = row.cells.get(method, [])
            cells.append("; ".join(_latex_cell(e) for e in entries) if entries else "--")
        rows.append(cells)
    notes = ("Test accuracy (%) of the extracted subnetwork: mean and standard deviation over seeds, "
             "number of seeds in parentheses. DA: data augmentation; SC: signed constant weights; SR: "
             "smart rescale (supermask: its dynamic weight rescaling). A check mark means the axis is on "
             "(the check mark needs amssymb).")
    return latex_table(header, rows, caption=table.title, label=f"tab:results-{slug(table.family)}",
                       align="llccc" + "c" * len(table.methods), escape=False, notes=notes)


def _others_text(row: ReproductionRow) -> str:
    """Configurations of the value's variant that ran with other options: shown, never judged."""
    means = [e.published.ours.mean for e in row.others if e.published.ours.mean is not None]
    return "" if not means else ("ran with other options: " + ", ".join(f"{m:.1f}" for m in means)
                                 + " (no verdict)")


def published_values_csv(rows: list[ReproductionRow]) -> str:
    """Every published value, one line per configuration compared with it (one line when none was)."""
    header = ["published_id", "dataset", "network", "method", "variant", "metric", "published_pct", "kind",
              "verified", "status", "config_hash", "n", "ours_mean_pct", "ours_ci95_low_pct",
              "ours_ci95_high_pct", "difference_pp", "other_options", "command", "source"]
    out = []
    for row in rows:
        p = row.published
        head = [p.id, p.dataset, p.network, p.method, row.variant_text, p.metric, f"{p.value:.1f}", p.kind,
                _flag(p.verified), row.status]
        tail = [_others_text(row), row.command or "", p.source]
        for e in row.entries:
            a = e.published.ours
            out.append(head + [e.config.config_hash, a.n, _r(a.mean, 3), _r(a.ci[0] if a.ci else None, 3),
                               _r(a.ci[1] if a.ci else None, 3), _r(e.published.difference, 2)] + tail)
        if not row.entries:
            out.append(head + ["", "", "", "", "", ""] + tail)
    return csv_text(header, out)


def published_latex(rows: list[ReproductionRow]) -> str:
    """Every published value with its status here, and ours where a configuration that reproduces
    it was run: the table a paper's reproducibility appendix needs, also when none was."""
    header = ["Dataset", "Network", "Method", "Variant", "Metric", "Published", "Ours (n)", "95% CI", "Diff.",
              "Status"]
    lines = []
    for group in by_dataset(rows):
        for row in group.rows:
            p = row.published
            marks = ([] if p.kind == "primary" else [p.kind]) + (["verified"] if p.verified else [])
            pub = _math(p.value) + (f" ({latex_escape(', '.join(marks))})" if marks else "")
            names = [latex_escape(x) for x in (p.dataset, p.network, p.method, row.variant_text,
                                               row.metric_short)]
            status = row.status + (f"; {_others_text(row)}" if row.others else "")
            if not row.entries:
                lines.append(names + [pub, "--", "--", "--", latex_escape(status)])
            for e in row.entries:
                a = e.published.ours
                ours = "--" if a.mean is None else f"{_math(a.mean)} ({a.n})"
                lines.append(names + [pub, ours, _math_ci(a), _math(e.published.difference, signed=True),
                                      latex_escape(status)])
    notes = ("Published: the value as read off the authors' poster and slides, or as restated by a later "
             "paper (secondary); unverified unless marked verified. Metric: "
             "extracted, the extracted subnetwork; sampled masks, supermask's mean over sampled masks. "
             "Reproduced: the published value lies inside our 95% Student-t CI widened by "
             f"{REPRODUCTION_TOLERANCE_PP:g} percentage point. Not run here: no configuration that "
             "reproduces the value was run; the report gives the command that runs it.")
    return latex_table(header, lines, caption="Every published value and its status here, with our test "
                                              "accuracy (%) on the value's own metric where the "
                                              "configuration that reproduces it was run",
                       label="tab:published", align="lllllrrrrl", escape=False, notes=notes)


def claims_latex(claims: list[Claim]) -> str:
    header = ["Claim", "Comparison", "n", "Mean diff.", "95% CI", "Verdict"]
    rows = []
    for claim in claims:
        for part in claim.parts:
            if not part.comparisons:
                rows.append([str(claim.number), latex_escape(part.title), "0", "", "",
                             latex_escape(part.verdict.label)])
            for comp in part.comparisons:
                d = comp.difference
                mean = "" if d.mean is None else f"{_math(d.mean, 2, signed=True)} {claim.unit}"
                rows.append([str(claim.number), latex_escape(comp.label), str(comp.n), mean, _math_ci(d, 2),
                             latex_escape(comp.verdict.label)])
    return latex_table(header, rows, caption="The claims of the paper, tested by paired comparisons",
                       label="tab:claims", align="rlrrrl", escape=False)


def write_tables(out_dir: Path, tables: list[FamilyTable], claims: list[Claim],
                 runs: list[Run], reproduction: list[ReproductionRow]) -> list[tuple[str, str]]:
    """Write every CSV and LaTeX file under ``out_dir/tables``; returns (description, relative path)."""
    table_dir = out_dir / "tables"
    written: list[tuple[str, str]] = []

    def put(name: str, content: str, description: str) -> None:
        atomic_write_text(table_dir / name, content)
        written.append((description, f"tables/{name}"))

    put("results.csv", results_csv(tables), "All results, one line per configuration (CSV)")
    used = set()
    for t in tables:
        name = slug(t.family)
        while name in used:
            name += "-x"
        used.add(name)
        put(f"results-{name}.tex", results_latex(t), f"{t.title} (LaTeX)")
    for stale in table_dir.glob("results-*.tex"):  # a family of an earlier report must not linger
        if f"tables/{stale.name}" not in {path for _, path in written}:
            stale.unlink(missing_ok=True)
    put("published-comparison.csv", published_csv(tables), "Comparison with published values (CSV)")
    put("published-values.csv", published_values_csv(reproduction),
        "Every published value and its status here (CSV)")
    put("published-comparison.tex", published_latex(reproduction),
        "Every published value and its status here (LaTeX)")
    put("claims.csv", claims_csv(claims), "Claims and paired comparisons (CSV)")
    put("claims.tex", claims_latex(claims), "Claims and paired comparisons (LaTeX)")
    put("runs.csv", runs_csv(runs), "Every run read: used, failed and unfinished (CSV)")
    return written
