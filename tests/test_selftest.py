"""``subnetbench selftest`` (benchmark/selftest.py) on the CPU: every check runs through the real run
lifecycle and says PASS, FAIL or SKIP; the checks can fail (a broken resume is caught); bad options
are one paragraph. bf16 autocast and torch.compile of every method run on the CPU as on CUDA."""
from __future__ import annotations

import re
import tempfile

import pytest
import torch

from subnetbench import cli
from subnetbench.benchmark import selftest, training
from tests.helpers import single_torch_thread  # noqa: F401  (autouse fixture)


@pytest.fixture(autouse=True)
def small(monkeypatch, tmp_path):
    """A few images and batches: the checks' mechanics, not their cost."""
    monkeypatch.setattr(selftest, "POOL_IMAGES", 160)
    monkeypatch.setattr(selftest, "TEST_IMAGES", 64)
    monkeypatch.setattr(selftest, "BUDGET", {"epochs": "2", "patience": "0", "batch_size": "48",
                                             "eval_batch_size": "64"})
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where its temporary folder goes


def lines(text: str) -> dict[str, str]:
    """check name -> its status word, from the printed check lines."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^  (PASS|FAIL|SKIP)\s+(.+?): ", text, re.M)}


def test_every_check_passes_on_the_cpu_and_says_what_it_did(capsys, tmp_path):
    code = cli.main(["selftest", "--device", "cpu", "--networks", "conv2", "--methods", "aslp,dense"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert lines(out) == {
        "aslp conv2": "PASS", "dense conv2": "PASS",
        "torch.compile (aslp conv2)": "PASS", "torch.compile (dense conv2)": "PASS",
        "channels_last (aslp conv2)": "PASS",
        "bf16 autocast (aslp conv2)": "PASS",
        "seed batch (aslp conv2)": "PASS", "resume (aslp conv2)": "PASS",
        "--deterministic twice (aslp conv2)": "PASS"}
    assert "2 seeds in one batch (loop): identical to separate runs" in out
    assert "resumed from its checkpoint: identical to the whole run" in out
    assert f"torch {torch.__version__}" in out.splitlines()[0]
    # compile compiled: every frame, no graph break, no fall-back to eager (dynamo's counters)
    assert re.search(r"^  PASS  torch.compile \(aslp conv2\): \d+ frames compiled, 0 graph breaks, 0 fell "
                     r"back to eager, 0 recompile-limit hits", out, re.M)
    assert re.search(r"^selftest PASSED on cpu \(.+, Python [\d.]+: 9 passed, 0 failed, 0 skipped, \d+ s$",
                     out, re.M)
    # its temporary folder is gone (inductor's kernel cache, torchinductor_*, may stay: torch's own)
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith("torchinductor")]


def test_the_resume_check_catches_a_resume_that_loses_a_random_stream(monkeypatch, tmp_path):
    """It compares with the uninterrupted run, so a resume that restores the network but not the
    mask-sampling stream fails it."""
    restore = training.Trainer.load_state_dict

    def forgetful(self, checkpoint):
        restore(self, checkpoint)
        self.generators["mask-sampling"].manual_seed(12345)

    monkeypatch.setattr(training.Trainer, "load_state_dict", forgetful)
    device = torch.device("cpu")
    runner = selftest._Runner(tmp_path, device, selftest.generated_raw())
    checks = dict(selftest._checks(runner, ("conv2",), []))
    with pytest.raises(AssertionError, match="interrupted after epoch 1 and resumed: metrics differ"):
        checks["resume (aslp conv2)"]()


def test_a_failing_check_fails_the_verdict_exits_1_and_the_other_checks_go_on(monkeypatch, capsys):
    monkeypatch.setattr(selftest, "check_result", lambda result, folder: (_ for _ in ()).throw(
        AssertionError("kept fraction 0.0")))
    assert cli.main(["selftest", "--device", "cpu", "--networks", "conv2", "--methods", "dense"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^  FAIL  dense conv2: AssertionError: kept fraction 0.0 \(test_selftest.py:\d+\)",
                     out, re.M)
    assert set(lines(out).values()) == {"FAIL"} and len(lines(out)) == 7
    assert re.search(r"^selftest FAILED on .*: 0 passed, 7 failed, 0 skipped, \d+ s; failed: dense conv2, "
                     r"torch.compile \(dense conv2\), channels_last \(aslp conv2\), bf16", out, re.M)


@pytest.mark.parametrize("argv, named", [
    (["--networks", "conv9"], "'conv9' is not allowed; expected names from: conv2, conv4, conv6"),
    (["--networks", ","], "names nothing"),
    (["--methods", "aslp,nope"], "nope"),
    (["--device", "tpu"], "device 'tpu' is not allowed"),
    (["--threads", "0"], "--threads 0 is not allowed"),
])
def test_bad_options_are_one_paragraph_before_anything_runs(argv, named, capsys):
    assert cli.main(["selftest", *argv]) == 2
    captured = capsys.readouterr()
    assert named in captured.err and "subnetbench: error:" in captured.err
    assert "PASS" not in captured.out and "Traceback" not in captured.err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_refused(capsys):
    assert cli.main(["selftest", "--device", "cuda"]) == 2
    assert "CUDA is not available here" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: run the tests on a GPU machine")
def test_every_check_passes_on_cuda_none_skipped():
    """On a GPU the same checks, with bf16 autocast and torch.compile, grouped seed batches, and a
    resumed and a repeated run under --deterministic that must equal the whole run bit for bit."""
    outcome = selftest.run_selftest("cuda", ("conv2",), ["aslp", "supermask", "edge_popup"])
    assert outcome.passed, [(c.name, c.detail) for c in outcome.checks if c.status == "fail"]
    assert [c.name for c in outcome.checks if c.status == "skip"] == []
