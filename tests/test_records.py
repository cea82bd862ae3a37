"""The result-file records (subnetbench/records.py, read by subnetbench/record_reading.py): the one
definition of the format, checked against docs/results-format.md, round-tripped through JSON, and
strict where a conclusion depends on it."""
from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subnetbench.record_reading import InvalidRecord, record_from_json
from subnetbench.records import (
    DIGEST_KEY,
    FORMAT,
    FORMAT_VERSION,
    VARIANT_AXES,
    VARIANT_KEYS,
    Curves,
    Histogram,
    Metrics,
    Provenance,
    RescalingOverhead,
    RunRecord,
    Timings,
    seal,
)
from tests.helpers import REPO

DOC = REPO / "docs" / "results-format.md"


def documented_keys() -> dict[str, set[str]]:
    """The keys of the documented example by the path of the object holding them ("" is the top
    level, "timings.rescaling_overhead" a nested object), from the indentation of its lines."""
    block = DOC.read_text().split("```json", 1)[1].split("```", 1)[0]
    keys: dict[str, set[str]] = {"": set()}
    path: list[tuple[int, str]] = []  # (indent, key) of the open objects
    for line in block.splitlines():
        match = re.match(r'^( +)"([^"]+)":\s*(\{?)', line)
        if not match:
            continue
        indent, key, opens = len(match.group(1)), match.group(2), match.group(3)
        while path and path[-1][0] >= indent:
            path.pop()
        keys.setdefault(".".join(k for _, k in path), set()).add(key)
        if opens and "}" not in line:
            path.append((indent, key))
            keys.setdefault(".".join(k for _, k in path), set())
    return keys


def fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_the_documentation_lists_exactly_the_fields_of_the_records():
    keys = documented_keys()
    assert keys[""] == {"format", "format_version", DIGEST_KEY} | fields(RunRecord) - {"source"}
    sections = {"metrics": Metrics, "curves": Curves, "timings": Timings, "provenance": Provenance,
                "keep_probabilities": Histogram, "timings.rescaling_overhead": RescalingOverhead}
    for key, cls in sections.items():
        assert keys[key] == fields(cls), key
    assert keys["variant"] == set(VARIANT_KEYS)
    assert f"(format version {FORMAT_VERSION})" in DOC.read_text()


finite = st.floats(min_value=0, max_value=1, allow_nan=False)
names = st.text("abcdefghij_.-0123456789", min_size=1, max_size=12)


@st.composite
def variants(draw) -> dict:
    variant = {axis: draw(st.booleans()) for axis in VARIANT_AXES}
    variant["rescaling"] = draw(st.sampled_from(["smart_rescale", "dynamic_weight_rescale"])) \
        if variant["smart_rescale"] else None
    return variant


@st.composite
def completed_records(draw) -> RunRecord:
    n = draw(st.integers(1, 5))
    edges = sorted(draw(st.sets(st.floats(0, 1, allow_nan=False), min_size=2, max_size=6)))
    return RunRecord(
        status="completed", run_id=draw(names), config_hash=draw(names), protocol=draw(names),
        dataset=draw(names), network=draw(names), method=draw(names),
        family=draw(st.sampled_from(["mask-only", "weight-training"])), seed=draw(st.integers(0, 99)),
        variant=draw(variants()),
        options={"recipe": {"epochs": draw(st.integers(1, 9))}, "method": {}},
        non_default_options=draw(st.dictionaries(names, st.integers(), max_size=2)),
        provenance=Provenance(git_commit=draw(st.none() | names), versions={"torch": "2"}),
        metrics=Metrics(test_acc=draw(finite), final_test_acc=draw(finite),
                        deterministic_test_acc=draw(st.none() | finite), kept_fraction=draw(finite),
                        epochs_to_best=draw(st.integers(1, n)), best_val_acc=draw(finite),
                        epochs_run=n),
        layer_kept_fraction=draw(st.none() | st.dictionaries(names, finite, min_size=1, max_size=3)),
        keep_probabilities=draw(st.none() | st.just(Histogram(edges, [1] * (len(edges) - 1)))),
        curves=Curves(epoch=list(range(1, n + 1)), val_acc=[draw(finite) for _ in range(n)],
                      round=[0] * n, train_loss=[draw(finite) for _ in range(n)],
                      train_acc=[draw(finite) for _ in range(n)]),
        timings=Timings(total_s=draw(finite), epoch_s=[draw(finite) for _ in range(n)], device="cpu",
                        seed_batch=draw(st.none() | st.integers(2, 8)),
                        rescaling_overhead=draw(st.none() | st.just(RescalingOverhead(
                            "smart_rescale", [draw(finite)], [0.5], draw(st.floats(0.5, 3)),
                            draw(st.integers(1, 2)), [0.4], 1.25)))))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(completed_records())
def test_a_record_survives_json_unchanged(record):
    text = record.dumps()
    again, warnings = record_from_json(json.loads(text))
    assert warnings == []
    assert again == record and again.dumps() == text


def test_the_file_keeps_the_key_order_of_earlier_versions():
    record = RunRecord(status="completed", run_id="r", metrics=Metrics(0.5, 0.5, 0.5, 0.5, 1, 0.5, 1),
                       curves=Curves([1], [0.5], [0], [1.0], [0.5]), timings=Timings(1.0, [1.0], "cpu"),
                       provenance=Provenance())
    assert list(record.to_json()) == [
        "format", "format_version", "status", "error", "run_id", "config_hash", "protocol",
        "dataset", "network", "method", "family", "seed", "variant", "options",
        "non_default_options", "provenance", "metrics", "layer_kept_fraction", "keep_probabilities",
        "curves", "timings", "sha256"]
    assert list(record.to_json()["curves"]) == ["epoch", "round", "train_loss", "train_acc", "val_acc"]
    assert "seed_batch" not in record.to_json()["timings"]  # only seed batches record it
    running = RunRecord(status="running", run_id="r")
    assert "metrics" not in running.to_json() and running.to_json()["format"] == FORMAT


def test_non_finite_numbers_are_never_written():
    record = RunRecord(status="completed", run_id="r",
                       metrics=Metrics(test_acc=math.inf, final_test_acc=0.5, kept_fraction=0.5))
    with pytest.raises(ValueError, match="not JSON compliant"):
        record.dumps()


def valid_completed() -> dict:
    return json.loads(RunRecord(
        status="completed", run_id="r", config_hash="h", protocol="p", dataset="d", network="n",
        method="m", family="mask-only", seed=0, variant=dict.fromkeys(VARIANT_AXES, False),
        metrics=Metrics(0.5, 0.5, 0.5, 0.5, 1, 0.5, 1)).dumps())


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format="other"), "format is 'other'"),
    (lambda d: d.update(format_version=0), "format_version is 0"),
    (lambda d: d.update(status="done"), "status is 'done'"),
    (lambda d: d.pop("method"), "missing key 'method'"),
    (lambda d: d.update(seed="0"), "key 'seed' is str"),
    (lambda d: d["variant"].pop("smart_rescale"), "missing key variant.'smart_rescale'"),
    (lambda d: d["metrics"].update(final_test_acc=97.5), "not a fraction in [0, 1]"),
    (lambda d: d["metrics"].update(test_acc=None), "metrics.test_acc is None"),
])
def test_a_completed_record_that_would_mislead_is_refused(change, message):
    data = valid_completed()
    change(data)
    if data.get("format_version") == FORMAT_VERSION:
        data = seal(data)  # refused for the change itself, not for a stale digest
    with pytest.raises(InvalidRecord) as info:
        record_from_json(data)
    assert message in str(info.value)


def test_malformed_optional_sections_are_dropped_with_a_warning():
    data = valid_completed()
    data.update(curves={"val_acc": "high"}, keep_probabilities={"bin_edges": [1, 0], "counts": [1]},
                layer_kept_fraction={"features.0": 2.0}, timings=[1, 2])
    data["metrics"]["epochs_to_best"] = -1
    record, warnings = record_from_json(seal(data))
    assert record.curves is None and record.keep_probabilities is None
    assert record.layer_kept_fraction is None and record.timings is None
    assert record.metrics.epochs_to_best is None
    assert len(warnings) == 5


def test_an_unfinished_record_keeps_what_identifies_it():
    record, _ = record_from_json(seal({"format": FORMAT, "format_version": FORMAT_VERSION,
                                          "status": "failed", "run_id": "r", "method": "aslp",
                                          "seed": 2, "error": {"not": "text"}}))
    assert (record.method, record.seed, record.protocol) == ("aslp", 2, None)
    assert record.error == "{'not': 'text'}"


@pytest.mark.parametrize("method_options, rescaling", [
    ({"smart_rescale": True}, "smart_rescale"),
    ({"dynamic_weight_rescale": True, "smart_rescale": False}, "dynamic_weight_rescale"),
    ({"dynamic_weight_rescale": True, "smart_rescale": True}, "dynamic_weight_rescale+smart_rescale"),
])
def test_a_file_written_before_variants_named_their_rescaling_gets_it_from_its_options(method_options,
                                                                                        rescaling):
    data = valid_completed()
    data["variant"] = {**dict.fromkeys(VARIANT_AXES, False), "smart_rescale": True}
    data["options"] = {"recipe": {}, "method": method_options}
    again, _ = record_from_json(seal(data))
    assert again.variant["rescaling"] == rescaling
