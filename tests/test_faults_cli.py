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
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from subnetbench import cli
from subnetbench.benchmark import runner, training
from subnetbench.benchmark.results import checkpoint_path, run_path
from subnetbench.benchmark.runner import execute, make_config
from subnetbench.integrity import QUARANTINE_MARK, digest_path
from subnetbench.records import FORMAT_VERSION, seal
from tests.fault_injection import (
    RUNNING_AS_ROOT,
    assert_one_paragraph_error,
    damage,
    failing_writes,
    full_disk_after,
    interrupt_after_epochs,
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
    """How ``run`` names the run in its line (runner.run_label)."""
    return runner.run_label(make_config(PROTOCOL, "dense", seed, CONFIG))


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
    checkpoint_path(tmp_path, run_id()).mkdir(parents=True)
    code, _, err = main(RUN + ["--results", str(tmp_path)], capsys)
    assert code == 2
    assert_one_paragraph_error(err, checkpoint_path(tmp_path, run_id()), "directory")


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
    assert json.loads(run_path(tmp_path, run_id(0)).read_text())["status"] == "completed"
    assert json.loads(run_path(tmp_path, run_id(1)).read_text())["status"] == "failed"
    monkeypatch.undo()
    epochs = []
    real = training.train_epoch
    monkeypatch.setattr(training, "train_epoch", lambda *a, **k: epochs.append(1) or real(*a, **k))
    code, out, err = main(RUN + ["--seeds", "0,1", "--results", str(tmp_path)], capsys)
    assert code == 0, err
    assert f"{run_label(0)}: skipped (done)" in out and len(epochs) == 1  # seed 1 resumed at epoch 2
    for seed in (0, 1):
        stored = json.loads(run_path(tmp_path, run_id(seed)).read_text())
        assert stored["metrics"] == clean[seed]["metrics"]


def test_a_full_disk_at_the_result_write_loses_no_training(clean, tmp_path, capsys, monkeypatch):
    full_disk_after(monkeypatch, writes=1, where=lambda folder: folder.name == "runs")
    code, _, err = main(RUN + ["--results", str(tmp_path)], capsys)
    assert code == 2
    assert_one_paragraph_error(err, run_id(), "disk is full")
    assert "could not record run" in err  # the failed record could not be written either: said so
    assert checkpoint_path(tmp_path, run_id()).exists()  # the finished training is kept
    monkeypatch.undo()
    monkeypatch.setattr(training, "train_epoch", _no_epoch)
    code, _, err = main(RUN + ["--results", str(tmp_path)], capsys)
    assert code == 0, err
    assert json.loads(run_path(tmp_path, run_id()).read_text())["metrics"] == clean[0]["metrics"]


def _no_epoch(*args, **kwargs):
    raise AssertionError("the finished training was not kept")


# -- files of a newer format, damaged files ----------------------------------------------------------

def test_a_result_of_a_newer_format_is_refused_and_left_as_it_is(clean, tmp_path, capsys, no_training):
    path = run_path(tmp_path, run_id())
    path.parent.mkdir(parents=True)
    data = dict(clean[0], format_version=FORMAT_VERSION + 1, status="running")
    path.write_text(json.dumps(data))
    before = path.read_bytes()
    code, _, err = main(RUN + ["--results", str(tmp_path), "--force"], capsys)
    assert code == 2
    assert_one_paragraph_error(err, path, "upgrade subnetbench", "newer")
    assert path.read_bytes() == before and len(list(path.parent.iterdir())) == 1


def test_a_stored_result_with_other_options_is_still_refused(clean, tmp_path, capsys, no_training):
    path = run_path(tmp_path, run_id())
    path.parent.mkdir(parents=True)
    data = json.loads(json.dumps(clean[0]))
    data["options"]["recipe"]["batch_size"] = 64
    path.write_text(json.dumps(seal(data)))
    code, _, err = main(RUN + ["--results", str(tmp_path)], capsys)
    assert code == 2
    assert_one_paragraph_error(err, "other options")


def test_the_real_command_moves_a_garbled_checkpoint_aside_and_says_so(clean, tmp_path, monkeypatch):
    """The issue's case: a checkpoint garbled in place. Through the real command: a warning naming
    the file, where it went and that the run starts from scratch; the clean result; exit 0."""
    interrupt_after_epochs(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        execute(make_config(PROTOCOL, "dense", 0, CONFIG), tmp_path, device="cpu", progress=False)
    ckpt = checkpoint_path(tmp_path, run_id())
    damage(ckpt, "zeroed-block", 0.5)
    result = _subprocess(RUN + ["--results", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("subnetbench: warning:")]
    (moved,) = [p for p in ckpt.parent.iterdir()
                if QUARANTINE_MARK in p.name and not p.name.endswith(".sha256")]
    assert str(ckpt) in warning and str(moved) in warning and "from scratch" in warning
    assert digest_path(moved).exists()
    stored = json.loads(run_path(tmp_path, run_id()).read_text())
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
    (["--method", "dense", "--set", "validation_fraction=0.0003"], "validation_fraction=0.0003"),
    (["--method", "dense", "--set", "validation_fraction=nan"], "validation_fraction='nan'"),
    (["--method", "dense", "--seeds", "1,,2"], "'1,,2'"),
    (["--method", "dense", "--seeds", "0,"], "'0,'"),
    (["--method", "dense", "--checkpoint-every", "0"], "--checkpoint-every 0"),
    (["--method", "dense", "--threads", "0"], "--threads 0"),
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

    monkeypatch.setattr(cli, "cmd_list", bug)  # main builds its parser, which binds cmd_list, anew
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
    path = checkpoint_path(source, run_id())
    path.parent.mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", path)  # any file without a digest where a checkpoint goes
    code, _, err = main(RUN + ["--results", str(source)], capsys)
    assert code == 0, err
    assert "has no digest file" in err and "from scratch" in err
    assert json.loads(run_path(source, run_id()).read_text())["metrics"] == clean[0]["metrics"]
