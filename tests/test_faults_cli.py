"""Fault injection through the command line: every expected fault is one paragraph and a non-zero
exit, never a traceback, and finished work is kept.

Paths that are files, paths under files, folders that are files, a result path that is a directory,
folders without write permission (simulated with a failing system call, so that the case also runs
as root, where chmod does not stop writes; the real chmod case is skipped as root), a full disk
(ENOSPC at fsync, simulated), result files of a newer format version, bad options, unexpected
errors. Most cases call ``cli.main`` in the process (fast); the cases about the real command line
run it as a subprocess.
"""
from __future__ import annotations

import errno
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from subnetbench import cli, commands
from subnetbench.benchmark import runner, summary, training
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.runner import execute
from subnetbench.errors import OptionError
from subnetbench.integrity import QUARANTINE_MARK, digest_path
from subnetbench.layout import ResultsLayout
from subnetbench.methods.options import FLOAT32_MAX, FLOAT32_SMALLEST_NORMAL
from subnetbench.methods.scored import ScoredMaskOptions
from subnetbench.record_reading import MAX_RESULT_BYTES
from subnetbench.records import FORMAT_VERSION, seal
from tests.fault_injection import (
    FAULTS,
    NOT_REGULAR,
    RUNNING_AS_ROOT,
    assert_one_paragraph_error,
    damage,
    failing_writes,
    full_disk_after,
    interrupt_after_epochs,
    must_not_hang,
    plant_not_regular,
)
from tests.helpers import REPO, single_torch_thread  # noqa: F401  (autouse: one torch thread per module)

PROTOCOL = "digits-conv2"
RUN = ["run", PROTOCOL, "--method", "dense", "--set", "epochs=2", "--set", "patience=0",
       "--device", "cpu", "--no-progress"]
CONFIG = {"epochs": "2", "patience": "0"}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """Seeds 0 and 1 of the command above, run cleanly: {seed: result}."""
    directory = tmp_path_factory.mktemp("clean")
    return {seed: execute(make_config(PROTOCOL, "dense", seed, CONFIG), directory, device="cpu",
                          progress=False, save_subnetwork=True) for seed in (0, 1)}


def run_id(seed: int = 0) -> str:
    return make_config(PROTOCOL, "dense", seed, CONFIG).run_id


def run_label(seed: int = 0) -> str:
    """How ``run`` names the run in its line (summary.run_label)."""
    return summary.run_label(make_config(PROTOCOL, "dense", seed, CONFIG))


def main(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a run trains: the fault must stop the command before."""
    def fit(*args, **kwargs):
        raise AssertionError("a run trained although the command had to stop first")

    monkeypatch.setattr(runner, "fit", fit)


# -- paths that cannot be used --------------------------------------------------------------------

def _file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a directory")


PATH_FAULTS = {
    # name: (how to break tmp, --results relative to tmp, the path the message names)
    "results is a file": (lambda t: _file(t / "res"), "res", "res"),
    "results under a file": (lambda t: _file(t / "res"), "res/inner", "res"),
    "runs/ is a file": (lambda t: _file(t / "res" / "runs"), "res", "runs"),
    "checkpoints/ is a file": (lambda t: _file(t / "res" / "checkpoints"), "res", "checkpoints"),
    "subnetworks/ is a file": (lambda t: _file(t / "res" / "subnetworks"), "res", "subnetworks"),
    "result path is a directory": (lambda t: (t / "res" / "runs" / f"{run_id()}.json").mkdir(parents=True),
                                   "res", f"{run_id()}.json"),
}


@pytest.mark.parametrize("fault", sorted(PATH_FAULTS))
def test_a_results_path_that_cannot_be_used_is_one_paragraph(tmp_path, capsys, no_training, fault):
    breaks, results, named = PATH_FAULTS[fault]
    breaks(tmp_path)
    code, out, err = main(RUN + ["--results", str(tmp_path / results)], capsys)
    assert code == 2
    line = assert_one_paragraph_error(err, named)
    assert "move it away" in line or "choose another" in line


def test_a_checkpoint_path_that_is_a_directory_is_one_paragraph(tmp_path, capsys):
    ResultsLayout(tmp_path).checkpoint(run_id()).mkdir(parents=True)
    code, _, err = main(RUN + ["--results", str(tmp_path)], capsys)
    assert code == 2
    assert_one_paragraph_error(err, ResultsLayout(tmp_path).checkpoint(run_id()), "directory")


@pytest.mark.parametrize("code, words", [(errno.EACCES, "permission denied"),
                                         (errno.EROFS, "read-only"),
                                         (errno.ENOSPC, "disk is full")])
@pytest.mark.parametrize("folder", ["runs", "checkpoints"])
def test_an_unwritable_results_folder_stops_before_anything_runs(tmp_path, capsys, monkeypatch,
                                                                no_training, code, words, folder):
    refused = failing_writes(monkeypatch, code, lambda d: d.name == folder)
    status, _, err = main(RUN + ["--results", str(tmp_path)], capsys)
    assert status == 2 and refused
    assert_one_paragraph_error(err, tmp_path / folder, words)
    assert not list(tmp_path.rglob("*.json"))  # no running or failed record left behind


@pytest.mark.skipif(RUNNING_AS_ROOT, reason="root writes into read-only directories; the simulated "
                    "EACCES case above covers this as root")
def test_a_read_only_results_directory_is_one_paragraph(tmp_path, capsys, no_training):
    results = tmp_path / "res"
    results.mkdir()
    results.chmod(0o555)
    try:
        code, _, err = main(RUN + ["--results", str(results)], capsys)
    finally:
        results.chmod(0o755)
    assert code == 2
    assert_one_paragraph_error(err, results, "ermission denied")


def test_a_report_directory_that_cannot_be_written_is_found_before_the_runs(tmp_path, capsys,
                                                                           no_training):
    _file(tmp_path / "report")
    code, _, err = main(RUN + ["--results", str(tmp_path / "res"), "--report",
                               str(tmp_path / "report")], capsys)
    assert code == 2
    assert_one_paragraph_error(err, tmp_path / "report", "is a file")


# -- a full disk in the middle of the work --------------------------------------------------------

def test_a_full_disk_during_a_run_keeps_the_finished_runs_and_resumes(clean, tmp_path, capsys,
                                                                     monkeypatch):
    """Seeds 0 and 1: the disk fills up while seed 1 writes its second checkpoint. Seed 0's result
    is kept, the error is one paragraph, and the same command afterwards finishes seed 1 from its
    last checkpoint with the clean result."""
    # checkpoints/ holds a checkpoint and its digest file: seed 0 writes 2 of each, seed 1 one
    # pair, then the digest file of seed 1's second checkpoint finds the disk full
    full_disk_after(monkeypatch, writes=2 * 2 + 2, where=lambda folder: folder.name == "checkpoints")
    code, out, err = main(RUN + ["--seeds", "0,1", "--results", str(tmp_path)], capsys)
    assert code == 2
    assert_one_paragraph_error(err, run_id(1), "disk is full")
    assert f"{run_label(0)}: done" in out
    assert json.loads(ResultsLayout(tmp_path).run_file(run_id(0)).read_text())["status"] == "completed"
    assert json.loads(ResultsLayout(tmp_path).run_file(run_id(1)).read_text())["status"] == "failed"
    monkeypatch.undo()
    epochs = []
    real = training.train_epoch
    monkeypatch.setattr(training, "train_epoch", lambda *a, **k: epochs.append(1) or real(*a, **k))
    code, out, err = main(RUN + ["--seeds", "0,1", "--results", str(tmp_path)], capsys)
    assert code == 0, err
    assert f"{run_label(0)}: skipped (done)" in out and len(epochs) == 1  # seed 1 resumed at epoch 2
    for seed in (0, 1):
        stored = json.loads(ResultsLayout(tmp_path).run_file(run_id(seed)).read_text())
        assert stored["metrics"] == clean[seed]["metrics"]


def test_a_full_disk_at_the_result_write_loses_no_training(clean, tmp_path, capsys, monkeypatch):
    full_disk_after(monkeypatch, writes=1, where=lambda folder: folder.name == "runs")
    code, _, err = main(RUN + ["--results", str(tmp_path)], capsys)
    assert code == 2
    assert_one_paragraph_error(err, run_id(), "disk is full")
    assert "could not record run" in err  # the failed record could not be written either: said so
    assert ResultsLayout(tmp_path).checkpoint(run_id()).exists()  # the finished training is kept
    monkeypatch.undo()
    monkeypatch.setattr(training, "train_epoch", _no_epoch)
    code, _, err = main(RUN + ["--results", str(tmp_path)], capsys)
    assert code == 0, err
    stored = json.loads(ResultsLayout(tmp_path).run_file(run_id()).read_text())
    assert stored["metrics"] == clean[0]["metrics"]


def _no_epoch(*args, **kwargs):
    raise AssertionError("the finished training was not kept")


# -- files of a newer format, damaged files ----------------------------------------------------------

def test_a_result_of_a_newer_format_is_refused_and_left_as_it_is(clean, tmp_path, capsys, no_training):
    path = ResultsLayout(tmp_path).run_file(run_id())
    path.parent.mkdir(parents=True)
    data = dict(clean[0], format_version=FORMAT_VERSION + 1, status="running")
    path.write_text(json.dumps(data))
    before = path.read_bytes()
    code, _, err = main(RUN + ["--results", str(tmp_path), "--force"], capsys)
    assert code == 2
    assert_one_paragraph_error(err, path, "upgrade subnetbench", "newer")
    assert path.read_bytes() == before and len(list(path.parent.iterdir())) == 1


def _newer(clean, directory: Path, seed: int) -> Path:
    path = ResultsLayout(directory).run_file(run_id(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(clean[seed % 2], run_id=run_id(seed),
                                    format_version=FORMAT_VERSION + 1)))
    return path


def test_a_newer_result_amid_planned_runs_stops_the_command_before_any_training(clean, tmp_path,
                                                                               capsys, no_training):
    """Seeds 0, 1, 2 where only seed 1's file is of a newer format: before, seed 0 trained and
    the command then stopped at seed 1. Now nothing trains, the error names seed 1's file, and no
    file is written or changed."""
    path = _newer(clean, tmp_path, 1)
    before = path.read_bytes()
    code, out, err = main(RUN + ["--seeds", "0,1,2", "--results", str(tmp_path)], capsys)
    assert code == 2 and out == ""
    assert_one_paragraph_error(err, path, "newer", "upgrade subnetbench")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [path.name]


def test_several_unusable_results_are_listed_in_one_paragraph(clean, tmp_path, capsys, no_training):
    paths = [_newer(clean, tmp_path, seed) for seed in (1, 3, 4, 5, 6, 7)]
    (ResultsLayout(tmp_path).run_file(run_id(2))).mkdir()  # a directory where seed 2's result file goes
    code, _, err = main(RUN + ["--seeds", "0,1,2,3,4,5,6,7", "--results", str(tmp_path)], capsys)
    assert code == 2
    line = assert_one_paragraph_error(err, "7 result files of the planned runs", "no run was started",
                                      paths[0], ResultsLayout(tmp_path).run_file(run_id(2)), "and 2 more")
    assert "pip install -U subnetbench" in line


def test_a_stored_result_with_other_options_is_still_refused(clean, tmp_path, capsys, no_training):
    path = ResultsLayout(tmp_path).run_file(run_id())
    path.parent.mkdir(parents=True)
    data = json.loads(json.dumps(clean[0]))
    data["options"]["recipe"]["batch_size"] = 64
    path.write_text(json.dumps(seal(data)))
    code, _, err = main(RUN + ["--results", str(tmp_path)], capsys)
    assert code == 2
    assert_one_paragraph_error(err, "other options")
    # refused before anything was written: no plan, lock or checkpoint folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    assert [p.name for p in ResultsLayout(tmp_path).runs.iterdir()] == [path.name]


def test_the_real_command_moves_a_garbled_checkpoint_aside_and_says_so(clean, tmp_path, monkeypatch):
    """The issue's case: a checkpoint garbled in place. Through the real command: a warning naming
    the file, where it went and that the run starts from scratch; the clean result; exit 0."""
    interrupt_after_epochs(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        execute(make_config(PROTOCOL, "dense", 0, CONFIG), tmp_path, device="cpu", progress=False)
    ckpt = ResultsLayout(tmp_path).checkpoint(run_id())
    damage(ckpt, "zeroed-block", 0.5)
    result = _subprocess(RUN + ["--results", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("subnetbench: warning:")]
    (moved,) = [p for p in ckpt.parent.iterdir()
                if QUARANTINE_MARK in p.name and not p.name.endswith(".sha256")]
    assert str(ckpt) in warning and str(moved) in warning and "from scratch" in warning
    assert digest_path(moved).exists()
    stored = json.loads(ResultsLayout(tmp_path).run_file(run_id()).read_text())
    assert stored["status"] == "completed" and stored["metrics"] == clean[0]["metrics"]


def _subprocess(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-m", "subnetbench", *argv], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=300)


def test_the_real_command_reports_a_results_path_that_is_a_file(tmp_path):
    _file(tmp_path / "res")
    result = _subprocess(RUN + ["--results", str(tmp_path / "res" / "x")])
    assert result.returncode == 2
    assert_one_paragraph_error(result.stderr, tmp_path / "res", "is a file")
    assert result.stdout == ""


# -- bad options: refused before anything is written ------------------------------------------------

BAD_OPTIONS = [
    (["--method", "aslp", "--set", "aslp.temperature=inf"], "temperature='inf'"),
    (["--method", "aslp", "--set", "method.mask_lr=inf"], "mask_lr='inf'"),
    (["--method", "dense", "--set", "method.lr=nan"], "lr='nan'"),
    (["--method", "dense", "--set", "method.weight_decay=-inf"], "weight_decay='-inf'"),
    # finite, but beyond float32 (overflows in the first step) or rounding to 0 / a subnormal in it
    (["--method", "aslp", "--set", "aslp.mask_lr=1e308"], "mask_lr='1e308'"),
    (["--method", "aslp", "--set", "aslp.temperature=1e-320"], "temperature='1e-320'"),
    (["--method", "aslp", "--set", "aslp.temperature=1e-39"], "temperature='1e-39'"),
    (["--method", "dense", "--set", "method.weight_decay=-4e38"], "weight_decay='-4e38'"),
    (["--method", "aslp", "--set", "aslp.eval_samples=10001"], "eval_samples=10001"),
    (["--method", "dense", "--set", "validation_fraction=0.0003"], "validation_fraction=0.0003"),
    (["--method", "dense", "--set", "validation_fraction=nan"], "validation_fraction='nan'"),
    (["--method", "dense", "--seeds", "1,,2"], "'1,,2'"),
    (["--method", "dense", "--seeds", "0,"], "'0,'"),
    (["--method", "dense", "--seeds", "\u0663"], "'\u0663'"),  # ARABIC-INDIC DIGIT THREE, not 3
    (["--method", "dense", "--seeds", "1_0"], "'1_0'"),
    (["--method", "dense", "--checkpoint-every", "0"], "--checkpoint-every 0"),
    (["--method", "dense", "--threads", "0"], "--threads 0"),
    (["--method", "dense", "--threads", "1000000"], "--threads 1000000"),
    (["--method", "dense", "--seed-batch", "0"], "--seed-batch 0"),
    (["--method", "dense", "--report", ""], "--report ''"),
    (["--method", "dense", "--data", " "], "--data ' '"),
]


@pytest.mark.parametrize("extra, named", BAD_OPTIONS, ids=[n for _, n in BAD_OPTIONS])
def test_a_bad_option_is_one_paragraph_and_writes_nothing(tmp_path, capsys, no_training, extra, named):
    code, out, err = main(["run", PROTOCOL, *extra, "--results", str(tmp_path), "--device", "cpu"],
                          capsys)
    assert code == 2 and out == ""
    assert_one_paragraph_error(err, named)
    assert list(tmp_path.iterdir()) == []


def test_a_number_outside_float32_is_refused_with_the_range(tmp_path, capsys, no_training):
    code, _, err = main(["run", PROTOCOL, "--method", "aslp", "--set", "aslp.mask_lr=1e308",
                         "--results", str(tmp_path)], capsys)
    assert code == 2
    assert_one_paragraph_error(err, "aslp.mask_lr='1e308'", "1.175e-38", "3.403e+38", "float32")


def _magnitudes(count: int, seed: int) -> list[float]:
    """Numbers of every sign and decimal exponent from 1e-330 to 1e308 (generated, fixed seed)."""
    rng = random.Random(seed)
    values = [0.0, FLOAT32_MAX, -FLOAT32_MAX, FLOAT32_SMALLEST_NORMAL,
              math.nextafter(FLOAT32_SMALLEST_NORMAL, 0), math.nextafter(FLOAT32_MAX, math.inf)]
    for _ in range(count):
        value = rng.uniform(1, 10) * 10.0 ** rng.randint(-330, 307)
        values.append(value if rng.random() < 0.5 else -value)
    return values


@pytest.mark.parametrize("value", _magnitudes(300, seed=11))
def test_an_accepted_number_option_is_a_normal_float32(value):
    """The property behind the check: every number option a run accepts stays a finite number in
    float32 and is 0 only when it was 0 (no overflow in a step, no temperature rounding to 0)."""
    try:
        options = ScoredMaskOptions(mask_weight_decay=abs(value))
    except OptionError as error:
        assert abs(value) > FLOAT32_MAX or 0 < abs(value) < FLOAT32_SMALLEST_NORMAL, value
        assert "float32" in str(error) and "mask_weight_decay" in str(error)
    else:
        as_float32 = torch.tensor(options.mask_weight_decay, dtype=torch.float32)
        assert torch.isfinite(as_float32) and (as_float32 != 0) == (value != 0), value
        assert value == 0 or abs(float(as_float32)) >= FLOAT32_SMALLEST_NORMAL
    text = repr(value)
    try:  # the --set parser gives the same answer as the option's own check
        parsed = make_config(PROTOCOL, "aslp", 0, {"aslp.mask_weight_decay": text.lstrip("-")})
    except OptionError as error:
        assert "float32" in str(error) and text.lstrip("-") in str(error)
    else:
        assert parsed.method_options.mask_weight_decay == abs(value)


def test_an_empty_results_path_is_refused_not_the_current_directory(tmp_path, capsys, monkeypatch,
                                                                   no_training):
    monkeypatch.chdir(tmp_path)
    code, _, err = main(["run", PROTOCOL, "--method", "dense", "--results", ""], capsys)
    assert code == 2
    assert_one_paragraph_error(err, "--results ''")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="results directory ''"):
        execute(make_config(PROTOCOL, "dense", 0, CONFIG), "", device="cpu")


def test_a_validation_fraction_is_checked_against_the_data_set_size():
    make_config("cifar10-conv2", "dense", 0, {"validation_fraction": "0.0001"})  # 5 of 50,000
    with pytest.raises(ValueError, match="leaves 0 for validation"):
        make_config("cifar10-conv2", "dense", 0, {"validation_fraction": "0.00001"})
    with pytest.raises(ValueError, match="of its 1438 training images"):
        make_config(PROTOCOL, "dense", 0, {"validation_fraction": "0.0003"})


# -- unexpected errors: one paragraph, the traceback on request -------------------------------------

def test_an_unexpected_error_is_one_paragraph_with_a_way_to_the_traceback(capsys, monkeypatch):
    def bug(args):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(commands, "cmd_list", bug)  # main finds the command's body by name
    monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)
    code, _, err = main(["list"], capsys)
    assert code == 1
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "internal error: ZeroDivisionError: division by zero second line" in line
    assert "SUBNETBENCH_DEBUG=1" in line
    monkeypatch.setenv(cli.DEBUG_VARIABLE, "1")
    with pytest.raises(ZeroDivisionError):
        cli.main(["list"])


def test_list_json_is_strict_json(capsys):
    code, out, _ = main(["list", "--json"], capsys)
    assert code == 0
    json.loads(out, parse_constant=lambda token: pytest.fail(f"non-strict token {token}"))


def test_a_missing_results_directory_for_report_is_one_paragraph(tmp_path):
    result = _subprocess(["report", "--results", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.returncode == 2
    assert_one_paragraph_error(result.stderr, tmp_path / "nope", prefix="subnetbench report")
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_without_digest_file_is_moved_aside_by_the_command(clean, tmp_path, capsys):
    """A file without a digest where a checkpoint goes (a checkpoint from before digests, a stray
    file): moved aside with a warning; the run completes with the clean result."""
    source = tmp_path / "res"
    path = ResultsLayout(source).checkpoint(run_id())
    path.parent.mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", path)  # any file without a digest where a checkpoint goes
    code, _, err = main(RUN + ["--results", str(source)], capsys)
    assert code == 0, err
    assert "has no digest file" in err and "from scratch" in err
    assert json.loads(ResultsLayout(source).run_file(run_id()).read_text())["metrics"] == clean[0]["metrics"]


# -- status and plans: files that are not regular, not strict JSON, too deep, too large, newer ------

def _plan(tmp_path: Path) -> Path:
    from subnetbench import plans

    return plans.plan_path(tmp_path, [run_id()])


@pytest.mark.parametrize("kind", NOT_REGULAR)
@pytest.mark.parametrize("target", ["result file", "plan file", "lock file"])
def test_status_never_blocks_on_a_file_that_is_not_regular(clean, tmp_path, capsys, kind, target):
    """A FIFO, a socket or an endless device where status reads (result files, plans, locks):
    shown as unusable (result files, plans) or ignored (locks), never opened for reading."""
    path = {"result file": ResultsLayout(tmp_path).run_file(run_id()), "plan file": _plan(tmp_path),
            "lock file": tmp_path / "locks" / f"{run_id()}.lock"}[target]
    plant_not_regular(path, kind)
    with must_not_hang():
        code, out, err = main(["status", str(tmp_path)], capsys)
        assert main(["status", str(tmp_path), "--json"], capsys)[0] == 0
    assert code == 0 and "Traceback" not in err
    if target == "result file":
        assert "1 unreadable" in out and "not a regular file" in out and "moves it aside" in out
    elif target == "plan file":
        assert f"the plan file {path} cannot be used (it is " in out and "not a regular file" in out


def test_status_refuses_a_result_file_over_the_size_cap_unread(tmp_path, capsys):
    """The same cap as the engine's and the report's (records.MAX_RESULT_BYTES), checked before
    reading: a sparse file costs nothing to make and would cost 64 MiB to read."""
    path = ResultsLayout(tmp_path).run_file(run_id())
    path.parent.mkdir(parents=True)
    with path.open("wb") as handle:
        handle.truncate(MAX_RESULT_BYTES + 1)
    code, out, _ = main(["status", str(tmp_path)], capsys)
    assert code == 0 and "1 unreadable" in out and f"more than the {MAX_RESULT_BYTES}" in out


def test_status_hints_say_what_happens_to_each_kind_of_unreadable_file(clean, tmp_path, capsys):
    """Damaged: the next run moves it aside. Newer format: left as it is, a run refuses it. Not
    readable (a directory here, as permissions do not stop root): a run stops on it, fix it."""
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "damaged.json").write_text("{")
    (runs / "newer.json").write_text(json.dumps(dict(clean[0], format_version=FORMAT_VERSION + 1)))
    (runs / "folder.json").mkdir()
    code, out, _ = main(["status", str(tmp_path), "--json"], capsys)
    hints = {run["run_id"]: run["hint"] for run in json.loads(out)["runs"]}
    assert "moves it aside" in hints["damaged"]
    assert "left as it is" in hints["newer"] and "moves" not in hints["newer"]
    assert "fix this first" in hints["folder"] and "moves" not in hints["folder"]


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("content", ["deep", "NaN", *sorted(FAULTS)])
def test_a_damaged_plan_is_shown_by_status_and_moved_aside_by_run(tmp_path, capsys, content):
    """A plan file that is not one (nested 100,000 deep, NaN, or any generated byte fault of a real
    plan): status shows it as unusable, a run command keeps it aside (<name>.corrupt-<UTC>) with a
    warning and records its plan anew; nothing crashes."""
    from subnetbench import plans

    path = _plan(tmp_path)
    plans.record(tmp_path, [run_id()], plans.new_command(["subnetbench", "run"], "inline"))
    if content == "deep":
        path.write_text(DEEP)
    elif content == "NaN":
        path.write_text(path.read_text().replace('"runs"', '"x": NaN, "runs"'))
    else:
        damage(path, content, 0.41)
    bad = path.read_bytes()
    found, problems = plans.inspect_plans(tmp_path)
    if not problems:  # a fault that left a valid plan (bytes after a complete JSON object are not)
        assert found and found[0]["runs"] == [run_id()]
        return
    code, out, err = main(["status", str(tmp_path)], capsys)
    assert code == 0 and f"the plan file {path} cannot be used" in out
    code, _, err = main(RUN + ["--results", str(tmp_path)], capsys)
    assert code == 0, err
    assert f"the plan file {path} cannot be used" in err and "moved to" in err
    (moved,) = [p for p in path.parent.iterdir() if QUARANTINE_MARK in p.name]
    assert moved.read_bytes() == bad
    assert plans.inspect_plans(tmp_path)[1] == {}


def test_a_plan_of_a_newer_format_is_left_as_it_is(tmp_path, capsys):
    from subnetbench import plans

    path = _plan(tmp_path)
    plans.record(tmp_path, [run_id()], plans.new_command(["subnetbench", "run"], "inline"))
    path.write_text(path.read_text().replace('"format_version": 1', '"format_version": 2'))
    before = path.read_bytes()
    code, out, _ = main(["status", str(tmp_path)], capsys)
    assert code == 0 and "newer" in out
    code, _, err = main(RUN + ["--results", str(tmp_path)], capsys)
    assert code == 0, err
    assert "newer" in err and "left as it is" in err
    assert path.read_bytes() == before and len(list(path.parent.iterdir())) == 1


@pytest.mark.parametrize("kind", NOT_REGULAR)
def test_a_run_command_never_blocks_on_a_result_file_that_is_not_regular(clean, tmp_path, capsys,
                                                                        kind):
    path = ResultsLayout(tmp_path).run_file(run_id())
    plant_not_regular(path, kind)
    with must_not_hang():
        code, _, err = main(RUN + ["--results", str(tmp_path)], capsys)
    assert code == 0, err
    assert "not a regular file" in err and "moved to" in err
    assert json.loads(path.read_text())["metrics"] == clean[0]["metrics"]


def test_a_plan_with_odd_commands_does_not_break_status(tmp_path, capsys):
    """A plan that is one, holding commands of the wrong shape (job_ids a number, not a list)."""
    from subnetbench import plans

    path = plans.record(tmp_path, [run_id()], plans.new_command(["subnetbench", "run"], "slurm"))
    data = json.loads(path.read_text())
    data["commands"] += [{"job_ids": 5}, {"job_ids": "12_0"}, "text", None]
    path.write_text(json.dumps(data))
    code, out, err = main(["status", str(tmp_path)], capsys)
    assert code == 0 and "Traceback" not in err and "1 missing" in out


# -- messages that name the real cause ------------------------------------------------------------

def _links(tmp_path: Path, case: str) -> tuple[str, Path, str]:
    """A results path through a bad symbolic link: (--results, the link, the words for it)."""
    if case == "dangling":
        (tmp_path / "res").symlink_to(tmp_path / "gone")
        return str(tmp_path / "res"), tmp_path / "res", "which does not exist"
    if case == "dangling parent":
        (tmp_path / "res").symlink_to(tmp_path / "gone")
        return str(tmp_path / "res" / "inner"), tmp_path / "res", "which does not exist"
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    return str(tmp_path / "a"), tmp_path / "a", "loop of links"


@pytest.mark.parametrize("case", ["dangling", "dangling parent", "loop"])
def test_a_results_path_through_a_broken_link_names_the_link(tmp_path, capsys, no_training, case):
    results, link, words = _links(tmp_path, case)
    code, _, err = main(RUN + ["--results", results], capsys)
    assert code == 2
    line = assert_one_paragraph_error(err, link, "symbolic link", words)
    assert "File exists" not in line and "errno 17" not in line


@pytest.mark.parametrize("case", ["dangling", "loop"])
def test_a_report_directory_through_a_broken_link_names_the_link(clean, tmp_path, capsys, case):
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    out, link, words = _links(tmp_path, case)
    code, _, err = main(["report", "--results", str(tmp_path / "results"), "--out", out], capsys)
    assert code == 2
    assert_one_paragraph_error(err, link, "symbolic link", words, prefix="subnetbench report")


@pytest.mark.parametrize("seeds, named", [("9" * 300, "9" * 300), (str(2**63), str(2**63)),
                                          (f"0,{2**64}", str(2**64))])
def test_a_seed_too_large_is_refused_naming_it(tmp_path, capsys, no_training, seeds, named):
    code, _, err = main(RUN + ["--seeds", seeds, "--results", str(tmp_path)], capsys)
    assert code == 2
    line = assert_one_paragraph_error(err, "--seeds", f"seed {named} ", "2**63")
    assert "shorter path" not in line
    assert list(tmp_path.iterdir()) == []
    make_config(PROTOCOL, "dense", 2**63 - 1, CONFIG)  # the largest seed is a seed
    with pytest.raises(OptionError, match="2\\*\\*63"):
        make_config(PROTOCOL, "dense", 2**63, CONFIG)


class _FullDevice:
    """A standard output whose writes fail as a redirection to a full disk (or /dev/full) does."""

    def write(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("argv", [["list"], ["list", "--json"], ["status", "RESULTS"]])
def test_a_standard_output_that_cannot_be_written_is_named(clean, tmp_path, capsys, monkeypatch,
                                                           argv):
    (tmp_path / "runs").mkdir()
    monkeypatch.setattr(sys, "stdout", _FullDevice())
    code = cli.main([str(tmp_path) if a == "RESULTS" else a for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    line = assert_one_paragraph_error(err, "standard output", "No space left on device")
    assert "a file" not in line
    assert isinstance(sys.stdout, _FullDevice)  # given back as it was


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_the_real_command_names_standard_output_redirected_to_a_full_device():
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "subnetbench", "list", "--json"], cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 2
    assert_one_paragraph_error(result.stderr, "standard output", "errno 28")


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
@pytest.mark.parametrize("kind", ["empty", "truncated", "random"])
def test_damaged_cifar_files_are_called_damaged_not_missing(tmp_path, monkeypatch, dataset, kind):
    """Files of the data set that fail torchvision's MD5 check (generated garbage under the real
    names): the message says damaged, names the files and how to download again; no download is
    tried with --no-download."""
    import torchvision

    from subnetbench.benchmark.data import DataUnavailableError, load_raw

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive",
                        lambda *a, **k: pytest.fail("downloaded although downloading is off"))
    cls = torchvision.datasets.CIFAR10 if dataset == "cifar10" else torchvision.datasets.CIFAR100
    folder = tmp_path / cls.base_folder
    folder.mkdir()
    names = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    for name in names:
        (folder / name).write_bytes(FAULTS[kind](b"\x80\x04 pickled CIFAR batch" * 40, 0.5))
    with pytest.raises(DataUnavailableError) as info:
        load_raw(dataset, tmp_path, download=False)
    message = str(info.value)
    assert "damaged" in message and "not found" not in message and str(folder) in message
    assert f"{len(names)} of its files" in message and names[0] in message
    assert "without --no-download" in message and "download=True" in message
    assert "\n" not in message


def test_damaged_cifar_through_the_command_is_one_paragraph(tmp_path, capsys):
    import torchvision

    folder = tmp_path / "data" / torchvision.datasets.CIFAR10.base_folder
    folder.mkdir(parents=True)
    (folder / "data_batch_1").write_bytes(b"garbage")
    code, _, err = main(["run", "cifar10-conv2", "--method", "dense", "--set", "epochs=1",
                         "--results", str(tmp_path / "results"), "--data", str(tmp_path / "data"),
                         "--no-download", "--device", "cpu", "--no-progress"], capsys)
    assert code == 2
    assert_one_paragraph_error(err, folder, "damaged", "data_batch_1")


# -- refusals that once left files behind, and what killed writers leave -------------------------

def _offline(monkeypatch):
    import torchvision

    def download(self, *args, **kwargs):  # as torchvision's: the folder first, then the network
        os.makedirs(self.root, exist_ok=True)
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", download)


@pytest.mark.parametrize("extra", [["--no-download"], []], ids=["no-download", "offline"])
@pytest.mark.parametrize("data", ["data", "new/parents/data"])
def test_missing_cifar_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch,
                                                              no_training, extra, data):
    _offline(monkeypatch)
    code, out, err = main(["run", "cifar10-conv2", "--method", "dense", "--device", "cpu",
                           "--results", str(tmp_path / "res"), "--data", str(tmp_path / data),
                           *extra], capsys)
    assert code == 2
    assert_one_paragraph_error(err, "cifar10", str(tmp_path / data))
    # no results folder, no plan, no lock, no data folder, nor the parents the download made
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_files_of_a_killed_writer_are_removed_by_the_next_run(tmp_path, capsys):
    from subnetbench import files

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tag = f"w{files._host_hash()}-{dead.pid}"
    left = [tmp_path / "runs" / f".{run_id()}.json.{tag}.abcd1234.tmp",
            tmp_path / "plans" / f".0123456789abcdef.json.{tag}.abcd1234.tmp"]
    live = [tmp_path / "runs" / f".other.json.w{files._host_hash()}-{os.getpid()}.abcd1234.tmp",
            tmp_path / "runs" / f".other.json.wffffffff-{dead.pid}.abcd1234.tmp",  # another host's
            tmp_path / "runs" / ".untagged.json.abcd1234.tmp"]
    for path in left + live:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{")
    code, _, err = main(RUN + ["--results", str(tmp_path)], capsys)
    assert code == 0, err
    assert [p for p in left if p.exists()] == []
    assert [p for p in live if not p.exists()] == []
    old = time.time() - files.STALE_AFTER_S - 60
    os.utime(live[1], (old, old))  # a day untouched: its writer is gone, wherever it ran
    assert files.remove_stale_temporaries(tmp_path / "runs") == [live[1]]
