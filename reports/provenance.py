"""What the report used and what it could not use: runs, failures, unfinished runs and grid holes."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from subnetbench.records import Provenance
from subnetbench.reports.loading import ResultSet, Run
from subnetbench.reports.tables import Config, dataset_sort_key, natural_key


def versions_text(run: Run) -> str:
    p = run.provenance or Provenance()
    parts = []
    if p.subnetbench_version:
        parts.append(f"subnetbench {p.subnetbench_version}")
    if p.python:
        parts.append(f"python {p.python}")
    versions = p.versions
    if isinstance(versions, dict):
        parts += [f"{k} {v}" for k, v in sorted(versions.items())]
    return ", ".join(str(x) for x in parts) or "not recorded"


def device_text(run: Run) -> str:
    device = run.timings.device if run.timings else None
    name = run.provenance.device_name if run.provenance else None
    if device and name and str(name) != str(device):
        return f"{device} ({name})"
    return str(device or name or "not recorded")


def created_text(run: Run) -> str:
    """'2026-11-24 18:40 UTC' from an ISO timestamp (other zones as an offset); anything else as is."""
    created = run.provenance.created if run.provenance else None
    if not created:
        return "not recorded"
    text = str(created)
    if len(text) >= 16 and text[10] == "T":
        zone = " " + text[19:] if len(text) > 19 and text[19] in "+-Z" else ""
        if zone in (" +00:00", " Z"):
            zone = " UTC"
        return text[:10] + " " + text[11:16] + zone
    return text


def commit_text(run: Run) -> str:
    commit = run.provenance.git_commit if run.provenance else None
    if not commit:
        return "not recorded"
    text = str(commit)[:12]
    if run.provenance.git_dirty:
        text += " (dirty)"
    return text


PROVENANCE_FIELDS = (("device", device_text), ("versions", versions_text), ("git commit", commit_text))


def split_provenance(runs: list[Run]) -> tuple[list[tuple[str, str]], list[tuple[str, Callable[[Run], str]]]]:
    """The provenance fields every run shares, as (label, value), shown once; and the fields that
    vary, as (label, how to describe a run), shown per run."""
    shared, varying = [], []
    for label, describe in PROVENANCE_FIELDS:
        values = {describe(r) for r in runs}
        if len(values) == 1:
            shared.append((label, values.pop()))
        else:
            varying.append((label, describe))
    return shared, varying


@dataclass
class Hole:
    protocol: str
    method: str
    config_hash: str
    missing: list[tuple[int, str]]  # (seed, what is there instead: failed / running / no result file)
    completed_seeds: list[int]


def find_holes(results: ResultSet) -> tuple[list[Hole], list[int]]:
    """For every configuration, the seeds that other configurations of the grid have but it lacks.

    The grid is every configuration in the results directory; its seeds are the seeds of any result
    file there. A configuration is (protocol, method, config_hash), including configurations whose
    runs all failed or are unfinished.
    """
    universe = sorted({r.seed for r in results.all_runs if r.seed is not None})
    state: dict[tuple[str, str, str], dict[int, str]] = defaultdict(dict)
    for r in results.all_runs:
        if r.protocol is None or r.method is None or r.config_hash is None or r.seed is None:
            continue
        key = (r.protocol, r.method, r.config_hash)
        if state[key].get(r.seed) != "completed":
            state[key][r.seed] = r.status
    holes = []
    for key in sorted(state):
        seeds = state[key]
        missing = [(s, seeds[s] if s in seeds else "no result file") for s in universe
                   if seeds.get(s) != "completed"]
        if missing:
            holes.append(Hole(*key, missing, sorted(s for s, st in seeds.items() if st == "completed")))
    return holes, universe


def unidentified_runs(results: ResultSet) -> list[Run]:
    """Failed or unfinished runs that do not say which configuration or seed they belong to."""
    return [r for r in results.running + results.failed
            if r.protocol is None or r.method is None or r.config_hash is None or r.seed is None]


@dataclass
class ProtocolGroup:
    """The configurations of one protocol, for the configurations table: the notes every one of
    them has (the protocol's own recipe, for example) are said once, in the group's header."""

    protocol: str
    shared_notes: list[tuple[str, str]]
    configs: list[tuple[Config, list[tuple[str, str]]]]  # each with the notes not shared


def protocol_groups(configs: list[Config]) -> list[ProtocolGroup]:
    """``configs`` grouped by protocol (datasets in the tables' order), in their order within."""
    by_protocol: dict[str, list[Config]] = defaultdict(list)
    for c in configs:
        by_protocol[c.protocol].append(c)
    groups = []
    for protocol in sorted(by_protocol, key=lambda p: (dataset_sort_key(by_protocol[p][0].dataset),
                                                       natural_key(p))):
        members = by_protocol[protocol]
        shared = [note for note in members[0].notes if all(note in c.notes for c in members)]
        groups.append(ProtocolGroup(protocol, shared,
                                    [(c, [note for note in c.notes if note not in shared]) for c in members]))
    return groups
