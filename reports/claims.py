"""The five claims of the paper (docs/claims.md), each tested by paired comparisons of
configurations, and the effects of signed constants and data augmentation, shown as observations
(they are variants of the paper's tables, not claims of the paper).

Pairing. Two configurations A and B are compared along one *axis* (the method, or one of the variant
axes DA, SC, SR). B is a partner of A when it has the same dataset and network, the same values of the
other variant axes, and (for a variant axis) the same method. A partner is *strict* when, in addition,
the protocol is the same and every resolved option is equal except the options of the compared axis
(for the method axis: all ``method.*`` options, which belong to the method). If A has strict partners
only those are used; otherwise the partners with the fewest differing options are used and the report
names the options that differ (for example edge-popup's own recipe). Runs of A and B are then paired
by seed (same seed: same data split and, where the scheme is the same, same initial weights): the
effect size is the mean of the per-seed differences, with its Student-t CI.

Like with like: where a claim compares accuracies of methods, each method's accuracy is the one the
paper reported for it (:data:`PAPER_METRIC`: supermask's mean over sampled masks, the extracted
subnetwork otherwise), the metric its published values are.

Verdict rules: :func:`reports.stats.directional_verdict`, :func:`reports.stats.equivalence_verdict`
(claim 5) and :func:`reports.stats.aggregate_verdict` (over the comparisons of one part of a claim).
A claim with several parts (claim 1: vs supermask and vs edge-popup) is a conjunction: supported only
if every part is supported; not supported if any part is not supported; mixed if a part is mixed;
otherwise inconclusive.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from subnetbench.records import RESCALING_KEY
from subnetbench.reports import stats
from subnetbench.reports.loading import VARIANT_AXES, VARIANT_SHORT
from subnetbench.reports.scope import Scope, off_paper_note, scope_of
from subnetbench.reports.stats import Summary, Verdict, summarise
from subnetbench.reports.tables import MASK_ONLY, Config, method_sort_key, variant_label
from subnetbench.reports.timing import TimingStudy

METHOD_AXIS = "method"
# Options that implement each variant axis, by the last component of their dotted key.
AXIS_OPTION_NAMES = {
    "data_augmentation": {"augmentation", "data_augmentation"},
    "signed_constant": {"init", "signed_constant", "weight_init"},
    "smart_rescale": {"smart_rescale", "dynamic_weight_rescale", "weight_rescale"},
}
MIN_PAIRS = 2
# The accuracy the paper reports for each method (the metric of its published values).
PAPER_METRIC = {"supermask": "test_acc"}
DEFAULT_METRIC = "final_test_acc"
# Claim 4: a difference of rescaling overheads inside +-margin (percentage points of an epoch's
# time) is no practical difference.
OVERHEAD_MARGIN_PP = 5.0


def _ignored(key: str, axis: str) -> bool:
    last = key.split(".")[-1]
    if last == "seed" or last.endswith("_seed"):
        return True
    if axis == METHOD_AXIS:
        return key == "method" or key.startswith("method.")
    return last in AXIS_OPTION_NAMES.get(axis, set())


def pairing_context(config: Config, axis: str) -> dict:
    """The options that must be equal for a strict pair along ``axis``."""
    return {k: v for k, v in config.options.items() if not _ignored(k, axis)}


def differing_options(a: Config, b: Config, axis: str) -> list[str]:
    ca, cb = pairing_context(a, axis), pairing_context(b, axis)
    keys = sorted(k for k in set(ca) | set(cb) if repr(ca.get(k, "<absent>")) != repr(cb.get(k, "<absent>")))
    if a.protocol != b.protocol:
        keys.insert(0, "protocol")
    return keys


def _same_other_axes(a: Config, b: Config, axis: str) -> bool:
    return all(a.variant[x] == b.variant[x] for x in VARIANT_AXES if x != axis)


def find_partners(a: Config, candidates: list[Config], axis: str) -> list[tuple[Config, bool, list[str]]]:
    """Partners of ``a`` among ``candidates``: (config, strict, differing option keys)."""
    found = [b for b in candidates
             if b is not a and b.dataset == a.dataset and b.network == a.network
             and _same_other_axes(a, b, axis) and (axis == METHOD_AXIS or b.method == a.method)]
    if not found:
        return []
    scored = [(b, differing_options(a, b, axis)) for b in found]
    strict = [(b, True, []) for b, diff in scored if not diff]
    if strict:
        return strict
    fewest = min(len(diff) for _, diff in scored)
    return [(b, False, diff) for b, diff in scored if len(diff) == fewest]


def pair_by_seed(a: dict[int, float], b: dict[int, float]) -> list[tuple[int, float, float]]:
    """(seed, a value, b value) for every seed present in both."""
    return [(seed, a[seed], b[seed]) for seed in sorted(set(a) & set(b))]


@dataclass
class Comparison:
    label: str
    a: Config
    b: Config | None  # None: within-run comparison (claim 4)
    a_name: str
    b_name: str
    pairs: list[tuple[int, float, float]]
    difference: Summary  # of a - b
    verdict: Verdict
    strict: bool = True
    differing: list[str] = field(default_factory=list)
    unpaired_a: list[int] = field(default_factory=list)
    unpaired_b: list[int] = field(default_factory=list)
    note: str | None = None
    margin: float = stats.ACCURACY_MARGIN_PP  # of no practical difference, in the claim's unit
    metric: str = "final_test_acc"

    @property
    def n(self) -> int:
        return len(self.pairs)

    @property
    def protocols(self) -> list[str]:
        return [self.a.protocol] + ([self.b.protocol] if self.b is not None else [])

    @property
    def scope(self) -> Scope:
        return scope_of(self.protocols, [seed for seed, _, _ in self.pairs], self.metric)

    @property
    def sensitivity(self) -> stats.Sensitivity:
        # a within-run comparison is claim 5's equivalence test
        return stats.sensitivity(self.difference, self.margin, equivalence=self.b is None)


@dataclass
class Part:
    title: str
    comparisons: list[Comparison]
    verdict: Verdict
    needs: str | None = None
    scope: Scope | None = None
    timings: list[TimingStudy] = field(default_factory=list)


@dataclass
class Claim:
    number: int
    statement: str
    test: str
    unit: str
    parts: list[Part]
    verdict: Verdict
    scope: Scope | None = None
    off_paper: str | None = None  # on data the paper did not use: what would test it on CIFAR


def _claim(number: int, statement: str, test: str, unit: str, parts: list[Part],
           timing: bool = False) -> Claim:
    """A claim whose verdict is the conjunction of its parts, and whose scope is theirs together."""
    scopes = [p.scope for p in parts if p.scope is not None and p.scope.protocols]
    scope = None
    if scopes:
        scope = scope_of([x for sc in scopes for x in sc.protocols], [x for sc in scopes for x in sc.seeds],
                         "; ".join(dict.fromkeys(sc.metric for sc in scopes)), scopes[0].unit_of_seeds)
    return Claim(number, statement, test, unit, parts, _conjunction(parts), scope,
                 off_paper_note(scope, timing) if scope else None)


@dataclass
class Observation:
    """An effect the report shows without a verdict on the paper (signed constants, augmentation)."""

    title: str
    question: str
    unit: str
    comparisons: list[Comparison]


def _part(title: str, comparisons: list[Comparison], needs: str, metric: str) -> Part:
    scope = scope_of([p for c in comparisons for p in c.protocols],
                     [seed for c in comparisons for seed, _, _ in c.pairs], metric)
    usable = [c for c in comparisons if c.n >= MIN_PAIRS]
    if not usable:
        have = (f" (found {len(comparisons)} comparison{'s' if len(comparisons) != 1 else ''} with "
                f"fewer than {MIN_PAIRS} paired seeds)" if comparisons else "")
        label = stats.TOO_FEW_SEEDS if comparisons else stats.INCONCLUSIVE
        return Part(title, comparisons, Verdict(label, f"not enough runs: needs {needs}{have}"),
                    needs, scope)
    return Part(title, comparisons, stats.aggregate_verdict([c.verdict for c in comparisons]),
                scope=scope)


def _conjunction(parts: list[Part]) -> Verdict:
    """Supported only if every part is; not supported if any part is not; then mixed, too few
    seeds, too noisy, inconclusive. One part: its own verdict, with its reason."""
    if len(parts) == 1:
        return parts[0].verdict
    labels = [p.verdict.label for p in parts]
    text = "; ".join(f"{p.title}: {p.verdict.label}" + (
        f" ({stats.seeds_text(p.verdict.seeds_needed)})" if p.verdict.label == stats.TOO_FEW_SEEDS
        and p.verdict.seeds_needed else "") for p in parts)
    if all(label == stats.SUPPORTED for label in labels):
        return Verdict(stats.SUPPORTED, text)
    if stats.NOT_SUPPORTED in labels:
        return Verdict(stats.NOT_SUPPORTED, text)
    if stats.MIXED in labels:
        return Verdict(stats.MIXED, text)
    for label in (stats.TOO_FEW_SEEDS, stats.TOO_NOISY):
        if label in labels:
            return Verdict(label, text)
    return Verdict(stats.INCONCLUSIVE, text)


def _setting(c: Config, axis: str) -> str:
    shown = {x: c.variant[x] for x in VARIANT_AXES if x != axis}
    flags = variant_label(shown) if any(shown.values()) else "none"
    return f"{c.dataset} {c.network}, {flags}"


def paired_comparisons(configs: list[Config], select_a: Callable[[Config], bool],
                       select_b: Callable[[Config], bool], axis: str,
                       values: Callable[[Config], dict[int, float]],
                       margin: Callable[[list[tuple[int, float, float]]], float], direction: int,
                       name: Callable[[Config], str], metric: str) -> list[Comparison]:
    """Every configuration A (``select_a``) against its partners B along ``axis``, paired by seed
    on ``values`` (seed -> value of a configuration); the verdict is directional (``direction``
    +1: A higher, -1: A lower) with the margin of no practical difference ``margin(pairs)``."""
    out = []
    b_candidates = [c for c in configs if select_b(c)]
    for a in (c for c in configs if select_a(c)):
        for b, strict, differing in find_partners(a, b_candidates, axis):
            va, vb = values(a), values(b)
            pairs = pair_by_seed(va, vb)
            diff = summarise([x - y for _, x, y in pairs])
            m = margin(pairs)
            verdict = stats.directional_verdict(diff, m, direction)
            label = f"{_setting(a, axis)}: {name(a)} vs {name(b)}"
            out.append(Comparison(label, a, b, name(a), name(b), pairs, diff, verdict, strict,
                                  differing, sorted(set(va) - set(vb)), sorted(set(vb) - set(va)),
                                  margin=m, metric=metric))
    return out


def paper_accuracy(config: Config) -> dict[int, float]:
    """Per seed, in %, the accuracy the paper reports for the configuration's method."""
    return config.by_seed(PAPER_METRIC.get(config.method, DEFAULT_METRIC), 100.0)


def extracted_accuracy(config: Config) -> dict[int, float]:
    return config.by_seed("final_test_acc", 100.0)


def _accuracy_margin(pairs) -> float:
    return stats.ACCURACY_MARGIN_PP


def _epochs_margin(pairs) -> float:
    baseline = [b for _, _, b in pairs]
    return max(stats.EPOCHS_MARGIN_MIN,
               stats.EPOCHS_MARGIN_RELATIVE * (sum(baseline) / len(baseline) if baseline else 0.0))


def _rescaled_by(c: Config, rescaling: str) -> bool:
    """The configuration's SR axis is exactly ``rescaling`` (not another one, nor two)."""
    return bool(c.variant["smart_rescale"]) and c.variant.get(RESCALING_KEY) == rescaling


def _with_sr(c: Config) -> bool:
    return _rescaled_by(c, "smart_rescale")


PAPER_ACCURACY = ("the accuracy the paper reports for each method (aslp, edge_popup: final_test_acc; "
                  "supermask: test_acc), pp")


def claim1(configs: list[Config]) -> Claim:
    parts = []
    for other in ("supermask", "edge_popup"):
        comps = paired_comparisons(
            configs, lambda c: c.method == "aslp", lambda c, o=other: c.method == o, METHOD_AXIS,
            paper_accuracy, _accuracy_margin, +1, lambda c: c.method, PAPER_ACCURACY)
        parts.append(_part(f"aslp vs {other}", comps,
                           f"completed aslp and {other} runs of the same dataset, network and variant "
                           f"(DA, SC, SR) with at least {MIN_PAIRS} seeds in common", PAPER_ACCURACY))
    return _claim(1, "ASLP reaches higher test accuracy than supermask and edge-popup under the same "
                     "network and setting.",
                  "Paired by seed: the accuracy the paper reports for each method (aslp: its extracted "
                  "subnetwork, final_test_acc; supermask: the mean over sampled masks, test_acc; "
                  "edge_popup: its top-k network, final_test_acc) of aslp minus that of supermask / "
                  "edge_popup, same dataset, network, DA, SC and SR. Claimed direction: > 0.",
                  "pp", parts)


def _aslp_sr_comparisons(configs: list[Config], values, margin, direction: int,
                         metric: str) -> list[Comparison]:
    return paired_comparisons(
        configs, lambda c: c.method == "aslp" and _with_sr(c),
        lambda c: c.method == "aslp" and not _with_sr(c), "smart_rescale", values, margin, direction,
        lambda c: "SR" if _with_sr(c) else "no SR", metric)


ASLP_SR_NEEDS = ("completed aslp runs with and without smart rescale (method.smart_rescale), "
                 f"otherwise equal, with at least {MIN_PAIRS} seeds in common")


def claim2(configs: list[Config]) -> Claim:
    metric = "epochs_to_best (epochs)"
    comps = _aslp_sr_comparisons(configs, lambda c: c.by_seed("epochs_to_best"), _epochs_margin, -1,
                                 metric)
    for comp in comps:
        base = [b for _, _, b in comp.pairs]
        if comp.difference.mean is not None and base and sum(base) > 0:
            comp.note = f"relative change {comp.difference.mean / (sum(base) / len(base)):+.1%}"
    part = _part("aslp: SR vs no SR", comps, ASLP_SR_NEEDS, metric)
    return _claim(2, "Smart rescale reduces training time: fewer epochs to the best validation accuracy.",
                  "Paired by seed: metrics.epochs_to_best of aslp with SR minus without SR, other options "
                  "equal. Claimed direction: < 0. Margin of no practical difference: "
                  f"{stats.EPOCHS_MARGIN_RELATIVE:.0%} of the no-SR mean (at least "
                  f"{stats.EPOCHS_MARGIN_MIN:g} epoch). Published: -8.2% (Conv2), -19.7% (Conv4), "
                  "-14.0% (Conv6).",
                  "epochs", [part])


def claim3(configs: list[Config]) -> Claim:
    metric = "final_test_acc (extracted subnetwork), pp"
    comps = _aslp_sr_comparisons(configs, extracted_accuracy, _accuracy_margin, +1, metric)
    part = _part("aslp: SR vs no SR", comps, ASLP_SR_NEEDS, metric)
    return _claim(3, "Smart rescale improves the accuracy of the extracted subnetwork.",
                  "Paired by seed: final_test_acc of aslp with SR minus without SR, other options equal. "
                  "Claimed direction: > 0. The poster's own Conv2 values go the other way (68.7 to 67.8 "
                  "without SC, 68.4 to 67.1 with SC).",
                  "pp", [part])


TIMING_METRIC = "seconds per training epoch: overhead over the same method without rescaling, %"


def claim4(configs: list[Config], studies: list[TimingStudy] = (), results_name: str = "RESULTS",
           old_timings: int = 0) -> Claim:
    """Judged on the timing studies (reports/timing.py), never on timings taken inside runs."""
    studies = list(studies)
    protocols = sorted({c.protocol for c in configs if c.method in ("aslp", "supermask")}) or ["PROTOCOL"]
    command = "; ".join(f"subnetbench timing {p} --results {results_name}" for p in protocols)
    older = (f" {old_timings} result files carry timings an older version took inside each run "
             "(3 epochs after training, under whatever load the machine had): they stay readable "
             "but are not used." if old_timings else "")
    repeats = sorted({s.repeats for s in studies})
    metric = TIMING_METRIC + (f"; {', '.join(map(str, repeats))} repeats" if repeats else "")
    scope = scope_of([s.protocol for s in studies], [s.seed for s in studies], metric,
                     "networks of seed")
    if studies:
        verdict = stats.aggregate_verdict([s.verdict for s in studies])
        if len(studies) == 1:
            one = studies[0]
            verdict = Verdict(one.verdict.label, f"median of SR's overhead minus DWR's, SR in two passes a "
                                                 f"batch (the released code): {one.verdict.reason}; in one "
                                                 f"pass: {one.joint_verdict.label}")
        part = Part("aslp SR vs supermask DWR", [], verdict, scope=scope, timings=studies)
    else:
        part = Part("aslp SR vs supermask DWR", [], Verdict(
            stats.INCONCLUSIVE, f"no timing study: run {command}.{older}"), "a timing study", scope)
    return _claim(4, "Smart rescale is cheaper than supermask's dynamic weight rescaling: less time per "
                     "epoch over the same method without rescaling.",
                  "A timing study (subnetbench timing) trains, in one process, aslp without and with SR, "
                  "aslp with SR in one pass a batch (joint), supermask without and with DWR, and times "
                  "one epoch of each in turn per repeat (order rotated). Per repeat: the overhead of SR "
                  "(epoch with over epoch without, minus 1, in %) minus that of DWR; judged on its "
                  "median and the distribution-free 95% CI of the median. Claimed direction: < 0; within "
                  f"±{OVERHEAD_MARGIN_PP:g} points: no practical difference; a CI that contains 0 and is "
                  "wider: inconclusive, too noisy. The machine's load is not controlled. Published "
                  "overheads: 0.13 (SR) vs 0.2 (DWR) time units; with smart_rescale_update=alternating "
                  "(the released code, the default) SR makes two passes a batch, which the published "
                  "0.13 cannot include: the joint arm's overhead is given beside it.",
                  "% of an epoch", [part], timing=True)


def claim5(configs: list[Config]) -> Claim:
    metric = "final_test_acc minus test_acc (sampled masks) within a run, pp; kept_fraction"
    comps = []
    for c in configs:
        if c.method != "aslp":
            continue
        final, stochastic = c.by_seed("final_test_acc", 100.0), c.by_seed("test_acc", 100.0)
        pairs = pair_by_seed(final, stochastic)
        diff = summarise([x - y for _, x, y in pairs])
        kept = summarise(c.values("kept_fraction"))
        verdict = stats.equivalence_verdict(diff, stats.ACCURACY_MARGIN_PP, kept.mean)
        note = None if kept.mean is None else f"learned pruning rate {1 - kept.mean:.1%}"
        comps.append(Comparison(f"{c.dataset} {c.network}, {c.variant_label}", c, None, "extracted",
                                "stochastic", pairs, diff, verdict, note=note, metric=metric))
    part = _part("aslp: extracted vs stochastic", comps,
                 f"at least {MIN_PAIRS} completed aslp runs of one configuration", metric)
    return _claim(5, "The extracted deterministic ASLP subnetwork is about as accurate as the stochastic "
                     "network it came from, at a substantial learned pruning rate.",
                  "Paired within each run: final_test_acc (extracted) minus test_acc (stochastic: mean "
                  "over sampled masks). Supported when the CI lies within "
                  f"±{stats.ACCURACY_MARGIN_PP:g} pp and the "
                  f"mean kept fraction is at most {stats.SUBSTANTIAL_KEPT_FRACTION:.0%}.",
                  "pp", [part])


def evaluate_claims(configs: list[Config], studies: list[TimingStudy] = (),
                    results_name: str = "RESULTS", old_timings: int = 0) -> list[Claim]:
    return [claim1(configs), claim2(configs), claim3(configs),
            claim4(configs, studies, results_name, old_timings), claim5(configs)]


def observations(configs: list[Config]) -> list[Observation]:
    """The effect of signed constants and of data augmentation on each mask-only method, paired by
    seed on the accuracy the paper reports for the method; shown with its CI, no verdict."""
    out = []
    mask_only = [c for c in configs if c.family == MASK_ONLY]
    for axis, option in (("signed_constant", "init=signed_constant"),
                         ("data_augmentation", "augmentation=true")):
        short = VARIANT_SHORT[axis]
        comps = paired_comparisons(
            mask_only, lambda c, x=axis: c.variant[x], lambda c, x=axis: not c.variant[x], axis,
            paper_accuracy, _accuracy_margin, +1,
            lambda c, x=axis, s=short: f"{c.method} {s}" if c.variant[x] else f"{c.method} no {s}",
            PAPER_ACCURACY)
        comps.sort(key=lambda c: method_sort_key(c.a.method))
        out.append(Observation(f"{short} ({option}) on the mask-only methods",
                               f"How does {short} change the accuracy of each mask-only method?",
                               "pp", comps))
    return out
