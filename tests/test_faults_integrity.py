"""Fault injection: damaged checkpoints, saved subnetworks, digest files and result files.

The central property: no fault ever yields a ``completed`` result whose metrics differ from the
clean run's. Every damaged file the suite trusts is detected by its SHA-256 (or its decoding),
moved aside (never deleted), and the run resumes from the last good state or starts from scratch;
running the command again never crashes on the same bad file.

Generated faults (tests/fault_injection.py): empty, truncated, one bit flipped, random bytes, a
zeroed block, bytes appended; at positions drawn by hypothesis (derandomised, so CI sees the same
cases) or swept by parametrisation. The cheap checks (bytes only) draw hundreds of cases; the ones
that train (tiny digits runs of 2 epochs, about 0.5 s each) draw a dozen.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subnetbench.benchmark import results as results_module
from subnetbench.benchmark import training
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.networks import build_network
from subnetbench.benchmark.results import atomic_torch_save, inspect_result, load_verified
from subnetbench.benchmark.runner import execute
from subnetbench.benchmark.subnetworks import load_subnetwork
from subnetbench.errors import IntegrityError, NewerFormatError, RunFailed
from subnetbench.integrity import (
    QUARANTINE_MARK,
    digest_path,
    quarantine,
    read_verified,
    write_with_digest,
)
from subnetbench.layout import ResultsLayout
from subnetbench.methods.base import OptimizerSpec
from subnetbench.record_reading import InvalidRecord, record_from_json
from subnetbench.records import FORMAT_VERSION, seal
from tests.fault_injection import (
    FAULTS,
    NOT_REGULAR,
    damage,
    interrupt_after_epochs,
    must_not_hang,
    plant_not_regular,
)
from tests.helpers import single_torch_thread  # noqa: F401  (autouse: one torch thread per module)

PROTOCOL = "digits-conv2"
OPTIONS = {"epochs": "2", "patience": "0"}
FAULT_KINDS = st.sampled_from(sorted(FAULTS))
POSITIONS = st.floats(min_value=0, max_value=1, exclude_max=True, allow_nan=False)
CHEAP = settings(max_examples=150, deadline=None, derandomize=True)
TRAINING = settings(max_examples=10, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def config(seed: int = 0, network: str = "conv2"):
    return make_config(f"digits-{network}", "dense", seed, OPTIONS)


def run(cfg, directory, **options):
    return execute(cfg, directory, device="cpu", progress=False, save_subnetwork=True, **options)


def quarantined(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if QUARANTINE_MARK in p.name)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The clean run: (config, results directory, result)."""
    directory = tmp_path_factory.mktemp("clean")
    return config(), directory, run(config(), directory)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A results directory whose run was interrupted after epoch 1: a running record, a checkpoint
    and its digest file."""
    directory = tmp_path_factory.mktemp("interrupted")
    with pytest.MonkeyPatch.context() as monkeypatch:
        interrupt_after_epochs(monkeypatch, 1)
        with pytest.raises(KeyboardInterrupt):
            run(config(), directory)
    assert ResultsLayout(directory).checkpoint(config().run_id).exists()
    return directory


def copy_of(directory: Path) -> Path:
    target = Path(tempfile.mkdtemp(prefix="fault-"))
    shutil.copytree(directory, target, dirs_exist_ok=True)
    return target


# -- 1. integrity of .pt files, byte by byte (no training) ------------------------------------------

@pytest.fixture(scope="module")
def checkpoint_file(interrupted, tmp_path_factory) -> Path:
    """A real checkpoint and its digest file in a folder of their own."""
    folder = tmp_path_factory.mktemp("checkpoint")
    source = ResultsLayout(interrupted).checkpoint(config().run_id)
    shutil.copy(source, folder / source.name)
    shutil.copy(digest_path(source), digest_path(folder / source.name))
    return folder / source.name


@CHEAP
@given(kind=FAULT_KINDS, position=POSITIONS)
def test_a_damaged_checkpoint_never_passes_its_check(checkpoint_file, kind, position):
    original = checkpoint_file.read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / checkpoint_file.name
        shutil.copy(digest_path(checkpoint_file), digest_path(path))
        path.write_bytes(FAULTS[kind](original, position))
        try:
            data = read_verified(path)
        except IntegrityError as error:
            assert str(path) in str(error) and "\n" not in str(error)
        else:
            assert data == original  # only a fault that changed nothing passes (a zeroed zero block)


@CHEAP
@given(kind=FAULT_KINDS, position=POSITIONS, data_kind=FAULT_KINDS, data_position=POSITIONS)
def test_a_damaged_digest_file_never_lets_other_bytes_pass(checkpoint_file, kind, position,
                                                           data_kind, data_position):
    """The digest file and the data file both damaged (as one bad sector or a bad copy does): the
    data is refused whenever it differs from what was written; only the intact bytes may pass."""
    original = checkpoint_file.read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / checkpoint_file.name
        damaged = FAULTS[data_kind](original, data_position)
        path.write_bytes(damaged)
        digest_path(path).write_bytes(FAULTS[kind](digest_path(checkpoint_file).read_bytes(), position))
        if damaged != original:
            with pytest.raises(IntegrityError) as error:
                read_verified(path)
            assert str(path) in str(error.value) and "\n" not in str(error.value)
        else:  # a fault that changed nothing (zeros over zeros): the file may pass, never another
            try:
                assert read_verified(path) == original  # e.g. a flip in the "file" name
            except IntegrityError as error:
                assert "\n" not in str(error)


def test_a_damaged_digest_file_is_refused_with_its_intact_data_file_only_by_a_real_check(
        checkpoint_file, tmp_path):
    """The same bytes under a digest file that names other bytes: refused (the check compares)."""
    path = tmp_path / checkpoint_file.name
    path.write_bytes(checkpoint_file.read_bytes())
    record = json.loads(digest_path(checkpoint_file).read_text())
    record["sha256"] = "0" * 64
    digest_path(path).write_text(json.dumps(record))
    with pytest.raises(IntegrityError, match="fails its SHA-256 check"):
        read_verified(path)


def test_a_checkpoint_without_digest_file_is_refused(checkpoint_file, tmp_path):
    path = tmp_path / "old.pt"
    shutil.copy(checkpoint_file, path)
    with pytest.raises(IntegrityError, match="has no digest file"):
        read_verified(path)
    assert torch.load(path, weights_only=True)["loop"]  # still a plain torch file for users


@settings(max_examples=40, deadline=None, derandomize=True)
@given(crashes=st.lists(st.booleans(), min_size=1, max_size=6))
def test_a_crash_between_the_digest_and_the_data_keeps_the_last_good_state(crashes):
    """Writes interrupted after the digest file (before the data) at any points: the file read back
    is always the last one fully written, never rejected and never a mix."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.pt"
        last_good = None
        for step, crash in enumerate(crashes):
            payload = f"state {step}".encode()
            if crash:
                with pytest.MonkeyPatch.context() as monkeypatch:
                    def interrupted_write(target, data):
                        raise KeyboardInterrupt  # SIGKILL-like: the data file is not replaced
                    monkeypatch.setattr("subnetbench.integrity.atomic_write_bytes", interrupted_write)
                    with pytest.raises(KeyboardInterrupt):
                        write_with_digest(path, payload)
            else:
                write_with_digest(path, payload)
                last_good = payload
            if last_good is None:
                assert not path.exists()
            else:
                assert read_verified(path) == last_good


def test_quarantine_of_a_file_another_process_moved_aside_first_is_no_error(tmp_path):
    path = tmp_path / "x.pt"
    write_with_digest(path, b"bad")
    moved = quarantine(path)
    assert quarantine(path) is None  # the second of two processes that found it bad
    assert sorted(p.name for p in tmp_path.iterdir()) == [moved.name, digest_path(moved).name]


def test_quarantine_moves_the_file_and_its_digest_aside_and_never_overwrites(tmp_path):
    path = tmp_path / "x.pt"
    for expected_suffix in ("", "-1", "-2"):  # three in the same second get distinct names
        write_with_digest(path, b"bad")
        moved = quarantine(path)
        assert moved.name.startswith("x.pt.corrupt-") and moved.name.endswith(f"Z{expected_suffix}")
        assert moved.read_bytes() == b"bad" and digest_path(moved).exists()
        assert not path.exists() and not digest_path(path).exists()
    assert len(list(tmp_path.iterdir())) == 6


# -- 2. result files, byte by byte -------------------------------------------------------------------

@CHEAP
@given(kind=FAULT_KINDS, position=POSITIONS)
def test_a_damaged_result_file_is_never_read_as_another_result(clean, kind, position):
    cfg, directory, result = clean
    original = ResultsLayout(directory).run_file(cfg.run_id).read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.json"
        path.write_bytes(FAULTS[kind](original, position))
        try:
            record, problem = inspect_result(path)
        except NewerFormatError:  # a flipped bit made format_version 2 a 3: refused, never read
            assert json.loads(path.read_bytes())["format_version"] > FORMAT_VERSION
            return
        if record is None:
            assert problem and "\n" not in problem
        else:  # a harmless change (1e-05 -> 1E-05): the same numbers
            assert record.to_json()["metrics"] == result["metrics"]


def _digit_positions(text: str, key: str) -> tuple[str, list[int]]:
    """The number after ``"key": `` in ``text`` and the offsets of its digits."""
    start = text.index(f'"{key}": ') + len(f'"{key}": ')
    end = start
    while text[end] in "0123456789.eE-+":
        end += 1
    return text[start:end], [i for i in range(start, end) if text[i].isdigit()]


def test_one_digit_changed_in_a_sealed_result_is_refused_at_every_position(clean, tmp_path):
    """metrics.final_test_acc with one digit changed (each digit in turn, to each other digit): the
    file no longer matches its SHA-256, so it is never read as a result."""
    cfg, directory, result = clean
    text = ResultsLayout(directory).run_file(cfg.run_id).read_text()
    number, positions = _digit_positions(text, "final_test_acc")
    assert float(number) == result["metrics"]["final_test_acc"] and len(positions) >= 3
    path = tmp_path / "r.json"
    tried = 0
    for i in positions:
        for digit in "0123456789":
            if digit == text[i]:
                continue
            path.write_text(text[:i] + digit + text[i + 1:])
            record, problem = inspect_result(path)
            assert record is None and "does not match its SHA-256" in problem, (i, digit)
            tried += 1
    assert tried == 9 * len(positions)


def test_one_digit_changed_in_a_sealed_result_is_moved_aside_and_computed_again(clean):
    cfg, source, reference = clean
    directory = copy_of(source)
    try:
        path = ResultsLayout(directory).run_file(cfg.run_id)
        text = path.read_text()
        _, positions = _digit_positions(text, "final_test_acc")
        i = positions[-1]
        path.write_text(text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:])
        result = run(cfg, directory)
        assert "skipped" not in result and result["metrics"] == reference["metrics"]
        (moved,) = quarantined(directory / "runs")
        assert moved.read_text() != text and len(moved.read_text()) == len(text)
    finally:
        shutil.rmtree(directory)


def test_a_result_file_of_a_newer_format_version_is_refused(clean, tmp_path):
    cfg, directory, _ = clean
    data = json.loads(ResultsLayout(directory).run_file(cfg.run_id).read_text())
    data["format_version"] = FORMAT_VERSION + 1
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(NewerFormatError, match="upgrade subnetbench"):
        inspect_result(path)


@pytest.mark.parametrize("text, reason", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"a":' * 40 + "1" + "}" * 40, "nested more than 32 levels"),
    ('{"format": "subnetbench.result", "format_version": 2, "x": NaN, "sha256": "0"}', "non-finite"),
    ("{}", "format is None"),
])
def test_deep_or_non_strict_json_is_refused_with_a_reason(tmp_path, text, reason):
    path = tmp_path / "r.json"
    path.write_text(text)
    record, problem = inspect_result(path)
    assert record is None and reason in problem


NON_STRICT = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity", "1e999": "1e999"}


@pytest.mark.parametrize("token", sorted(NON_STRICT))
@pytest.mark.parametrize("where", ["metrics.best_val_acc", "curves.train_loss"])
def test_a_version_1_result_with_non_finite_numbers_is_moved_aside_and_computed_again(clean, token,
                                                                                      where):
    """A result file of format version 1 (no digest to fail) holding NaN or Infinity: a lenient
    parser read it, and every later run crashed writing it back as strict JSON. It is not strict
    JSON: moved aside, the run computed again, and asked again it is reused."""
    cfg, source, reference = clean
    directory = copy_of(source)
    try:
        path = ResultsLayout(directory).run_file(cfg.run_id)
        data = json.loads(path.read_text())
        del data["sha256"]
        data["format_version"] = 1
        section, key = where.split(".")
        if isinstance(data[section][key], list):
            data[section][key][0] = "@@"
        else:
            data[section][key] = "@@"
        path.write_text(json.dumps(data, indent=1).replace('"@@"', NON_STRICT[token]))
        record, problem = inspect_result(path)
        assert record is None and "non-finite number" in problem and token in problem
        result = run(cfg, directory)
        assert "skipped" not in result and result["metrics"] == reference["metrics"]
        (moved,) = quarantined(directory / "runs")
        assert NON_STRICT[token] in moved.read_text()
        assert run(cfg, directory)["skipped"]
    finally:
        shutil.rmtree(directory)


def test_a_version_1_result_without_digest_is_still_read(clean, tmp_path):
    cfg, directory, result = clean
    data = json.loads(ResultsLayout(directory).run_file(cfg.run_id).read_text())
    del data["sha256"]
    data["format_version"] = 1
    record, _ = record_from_json(data)
    assert record.format_version == 1 and record.to_json()["metrics"] == result["metrics"]
    with pytest.raises(InvalidRecord, match="sha256"):  # version 2 needs the digest
        record_from_json(dict(data, format_version=2))


# -- 3. the central property, through real runs ------------------------------------------------------

# Every file of an interrupted run and of a completed one, each with every generated fault: the byte
# faults at two positions where the position matters, and the files that are not regular files.
INTERRUPTED_TARGETS = ("checkpoint", "checkpoint digest", "running result")
COMPLETED_TARGETS = ("completed result", "saved subnetwork", "subnetwork digest")
POSITIONED = ("truncated", "bit-flip", "zeroed-block")
CASES = [(kind, position) for kind in sorted(FAULTS)
         for position in ((0.13, 0.61) if kind in POSITIONED else (0.37,))]
CASES += [(kind, None) for kind in NOT_REGULAR]


def _target_path(directory: Path, cfg, target: str) -> Path:
    ckpt = ResultsLayout(directory).checkpoint(cfg.run_id)
    subnetwork = ResultsLayout(directory).subnetwork(cfg.run_id)
    return {"checkpoint": ckpt, "checkpoint digest": digest_path(ckpt),
            "running result": ResultsLayout(directory).run_file(cfg.run_id),
            "completed result": ResultsLayout(directory).run_file(cfg.run_id), "saved subnetwork": subnetwork,
            "subnetwork digest": digest_path(subnetwork)}[target]


@pytest.mark.parametrize("kind, position", CASES,
                         ids=[f"{k}@{p}" if p is not None else k for k, p in CASES])
@pytest.mark.parametrize("target", INTERRUPTED_TARGETS + COMPLETED_TARGETS)
def test_no_fault_yields_a_wrong_completed_result(clean, interrupted, target, kind, position):
    """The central property, for every (file x fault) pair: running the command on a damaged
    results directory ends with the clean run's metrics, bit for bit (resumed, reused or computed
    from scratch), never with other numbers and never blocked; asked again, it reuses that result
    and does not trip on the bad file, which was kept aside (or, for a change that does not matter,
    such as a flipped bit in the digest file's "file" name, accepted)."""
    cfg, source, reference = clean
    directory = copy_of(interrupted if target in INTERRUPTED_TARGETS else source)
    try:
        path = _target_path(directory, cfg, target)
        if position is None:
            plant_not_regular(path, kind)
        else:
            damage(path, kind, position)
        with must_not_hang():
            result = run(cfg, directory)
            assert result["status"] == "completed"
            assert result["metrics"] == reference["metrics"]
            again = run(cfg, directory)
        assert again["skipped"] and again["metrics"] == reference["metrics"]
        stored, _ = inspect_result(ResultsLayout(directory).run_file(cfg.run_id))
        assert stored.to_json()["metrics"] == reference["metrics"]
        if position is None or kind in ("empty", "random"):  # never harmless: kept aside
            assert quarantined(path.parent), "the bad file was not kept aside"
            assert not path.exists() or (path.is_file() and not path.is_symlink())
    finally:
        shutil.rmtree(directory)


@pytest.mark.parametrize("kind", ["truncated", "bit-flip", "random"])
def test_a_damaged_completed_result_is_moved_aside_and_the_run_computed_again(clean, kind):
    cfg, source, reference = clean
    directory = copy_of(source)
    try:
        damage(ResultsLayout(directory).run_file(cfg.run_id), kind, 0.37)
        result = run(cfg, directory)
        assert "skipped" not in result and result["metrics"] == reference["metrics"]
        (moved,) = quarantined(directory / "runs")
        assert moved.name.startswith(f"{cfg.run_id}.json.corrupt-")
    finally:
        shutil.rmtree(directory)


@pytest.mark.parametrize("kind", ["truncated", "bit-flip", "zeroed-block"])
def test_a_damaged_saved_subnetwork_is_refused_then_recreated(clean, kind):
    cfg, source, reference = clean
    directory = copy_of(source)
    try:
        damage(ResultsLayout(directory).subnetwork(cfg.run_id), kind, 0.61)
        with pytest.raises(IntegrityError, match="moved aside and the run computed again"):
            load_subnetwork(directory, reference)
        result = run(cfg, directory)  # asked again: the bad subnetwork is moved aside, recomputed
        assert "skipped" not in result and result["metrics"] == reference["metrics"]
        assert len(quarantined(directory / "subnetworks")) == 2  # the file and its digest file
        load_subnetwork(directory, result)
    finally:
        shutil.rmtree(directory)


def _plant_checkpoint(directory: Path, cfg, payload: dict, with_digest: bool = True) -> Path:
    path = ResultsLayout(directory).checkpoint(cfg.run_id)
    if with_digest:
        atomic_torch_save(path, payload)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, path)
    return path


@pytest.mark.parametrize("case", ["another run", "another network", "no digest file", "not a dict"])
def test_a_foreign_checkpoint_is_moved_aside_and_the_run_starts_from_scratch(clean, interrupted,
                                                                            case, caplog):
    cfg, _, reference = clean
    directory = copy_of(interrupted)
    try:
        real = load_verified(ResultsLayout(directory).checkpoint(cfg.run_id))
        if case == "another run":
            payload = dict(real, run_id=config(seed=1).run_id)
        elif case == "another network":
            other = build_network("conv4", 1, 8, 10)
            payload = dict(real, model=other.state_dict())
        elif case == "not a dict":
            payload = [torch.zeros(3)]
        else:
            payload = real
        _plant_checkpoint(directory, cfg, payload, with_digest=case != "no digest file")
        result = run(cfg, directory)
        assert result["metrics"] == reference["metrics"]
        assert result["metrics"]["epochs_run"] == 2
        (moved, *_) = quarantined(directory / "checkpoints")
        warning = " ".join(r.getMessage() for r in caplog.records if r.name == "subnetbench")
        assert str(moved) in warning and "starts again from scratch" in warning
    finally:
        shutil.rmtree(directory)


def test_a_crash_between_the_two_checkpoint_writes_resumes_from_the_previous_one(clean, tmp_path,
                                                                                monkeypatch):
    """The digest file of epoch 2 is written, the process dies before the checkpoint: the run
    resumes from epoch 1's checkpoint, which the digest file names as previous."""
    cfg, _, reference = clean
    real = results_module.write_with_digest
    writes = {"n": 0}

    def dies_after_the_digest(path, data):
        writes["n"] += 1
        if writes["n"] == 2:  # the second checkpoint
            monkeypatch.setattr("subnetbench.integrity.atomic_write_bytes", _killed)
        return real(path, data)

    monkeypatch.setattr(results_module, "write_with_digest", dies_after_the_digest)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path)
    monkeypatch.undo()
    epochs = []
    real_epoch = training.train_epoch

    def count(trainers, *args, **kwargs):
        epochs.append(1)
        return real_epoch(trainers, *args, **kwargs)

    monkeypatch.setattr(training, "train_epoch", count)
    result = run(cfg, tmp_path)
    assert len(epochs) == 1  # resumed after epoch 1, not from scratch
    assert result["metrics"] == reference["metrics"]
    assert not quarantined(tmp_path / "checkpoints")


def _killed(path, data):
    raise KeyboardInterrupt


def test_a_diverged_run_is_failed_not_written_with_nan(tmp_path):
    cfg = make_config(PROTOCOL, "dense", 0, {"epochs": "2", "method.lr": "1e30"})
    for _ in range(2):  # asked again: the same clear failure, never a completed result
        with pytest.raises(RunFailed, match="training loss became nan at epoch 1"):
            execute(cfg, tmp_path, device="cpu", progress=False)
        text = ResultsLayout(tmp_path).run_file(cfg.run_id).read_text()
        record = json.loads(text)  # strict JSON: no NaN token
        assert "NaN" not in text and record["status"] == "failed"
        assert record["error"].startswith("RunFailed: run " + cfg.run_id)


def test_a_step_that_overflows_float32_is_a_failed_run_not_an_internal_error(tmp_path, monkeypatch):
    """A step size the option checks refuse, forced past them: torch raises "value cannot be
    converted to type float without overflow" in the first step. The run is recorded as failed
    (RunFailed, exit 1) like a diverged one, in strict JSON, and the same again when asked again."""
    cfg = make_config(PROTOCOL, "aslp", 0, {"epochs": "2"})
    object.__setattr__(cfg.method_options, "mask_lr", 1e308)  # past the checks, on purpose
    monkeypatch.setattr(OptimizerSpec, "__post_init__", lambda self: None)
    for _ in range(2):
        with pytest.raises(RunFailed, match="overflowed float32 at epoch 1") as info:
            execute(cfg, tmp_path, device="cpu", progress=False)
        assert "overflow" in str(info.value.__cause__)  # torch's own error, kept as the cause
        text = ResultsLayout(tmp_path).run_file(cfg.run_id).read_text()
        record = json.loads(text, parse_constant=lambda token: pytest.fail(f"non-strict {token}"))
        assert record["status"] == "failed" and record["error"].startswith("RunFailed: " + cfg.run_id)


def test_other_runtime_errors_of_a_step_stay_errors(tmp_path, monkeypatch):
    """Only an overflow becomes a failed run; any other RuntimeError of a step is a bug, raised."""
    def broken(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(training, "train_epoch", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied") as info:
        execute(config(), tmp_path, device="cpu", progress=False)
    assert not isinstance(info.value, RunFailed)


def test_a_sealed_result_with_other_content_is_a_different_result_not_a_corrupt_one(clean, tmp_path):
    """The digest detects damage, not intent: seal() is how a tool changes a file on purpose."""
    cfg, directory, _ = clean
    data = json.loads(ResultsLayout(directory).run_file(cfg.run_id).read_text())
    data["metrics"]["final_test_acc"] = 0.5
    with pytest.raises(InvalidRecord, match="does not match its SHA-256"):
        record_from_json(data)
    record, _ = record_from_json(seal(data))
    assert record.metrics.final_test_acc == 0.5


def test_the_checkpoint_names_its_run(interrupted):
    checkpoint = torch.load(ResultsLayout(interrupted).checkpoint(config().run_id), weights_only=True)
    assert checkpoint["run_id"] == config().run_id
