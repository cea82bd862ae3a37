"""Claim 4's timing study: ``subnetbench timing`` (benchmark/rescaling_study.py) measures each
rescaling interleaved with its baseline, repeated, in one process; the report (reports/timing.py)
judges the medians, says "inconclusive: too noisy" when the noise exceeds the effect, and says
that the machine's load was not controlled."""
from __future__ import annotations

import json

import numpy as np
import pytest

from subnetbench import cli, reports
from subnetbench.benchmark import rescaling_study
from subnetbench.reports import stats
from subnetbench.reports.claims import evaluate_claims
from subnetbench.reports.timing import analyse, load_studies
from tests.report_fixtures import make_result, write_result


def synthetic_study(sr: float, dwr: float, noise: float, repeats: int = 15, seed: int = 0) -> dict:
    """A study whose epochs take 1 s without rescaling, 1 + sr with SR, 1 + dwr with DWR (and
    1 + sr / 2 with SR in one pass), each times a lognormal factor of spread ``noise``."""
    rng = np.random.default_rng(seed)
    base = {"aslp": 1.0, "aslp SR": 1.0 + sr, "aslp SR joint": 1.0 + sr / 2, "supermask": 1.0,
            "supermask DWR": 1.0 + dwr}
    arms = {name: {"method": name.split()[0], "options": {},
                   "epoch_s": list(seconds * rng.lognormal(0.0, noise, size=repeats))}
            for name, seconds in base.items()}
    return {"format": rescaling_study.FORMAT, "format_version": rescaling_study.FORMAT_VERSION,
            "study": rescaling_study.STUDY, "protocol": "digits-conv2", "dataset": "digits",
            "network": "conv2", "seed": 0, "repeats": repeats, "device": "cpu", "threads": 1,
            "load_controlled": False, "arms": arms}


def test_the_study_times_every_arm_in_turn_in_one_process():
    study = rescaling_study.measure("digits-conv2", seed=0, repeats=2)
    assert list(study["arms"]) == ["aslp", "aslp SR", "aslp SR joint", "supermask", "supermask DWR"]
    assert study["arms"]["aslp SR joint"]["options"]["method.smart_rescale_update"] == "joint"
    assert not study["arms"]["aslp"]["options"] and not study["arms"]["supermask"]["options"]
    assert all(len(arm["epoch_s"]) == 2 and min(arm["epoch_s"]) > 0 for arm in study["arms"].values())
    assert study["order"][0][0] == "aslp" and study["order"][1][0] == "aslp SR"  # the order rotates
    assert study["load_controlled"] is False
    json.dumps(study, allow_nan=False)  # strict JSON
    analysed = analyse("s.json", study, 5.0)
    assert [e.name for e in analysed.overheads] == ["aslp SR", "aslp SR joint", "supermask DWR"]
    assert analysed.verdict.label == stats.INCONCLUSIVE  # 2 repeats: a median needs 6 for an interval


@pytest.mark.parametrize("sr, dwr, noise, label", [
    (0.10, 0.40, 0.02, stats.SUPPORTED),       # SR 30 points cheaper, little noise
    (0.40, 0.10, 0.02, stats.NOT_SUPPORTED),   # the opposite
    (0.10, 0.12, 0.50, stats.TOO_NOISY),       # 2 points apart under noise of tens of points
])
def test_claim4_is_judged_on_the_median_and_calls_noise_by_its_name(sr, dwr, noise, label):
    study = analyse("s.json", synthetic_study(sr, dwr, noise), 5.0)
    assert study.verdict.label == label
    assert study.overheads[0].median == pytest.approx(100 * sr, abs=40 * noise + 1)
    low, high = study.difference.ci
    assert low <= study.difference.median <= high


def test_the_report_shows_the_study_its_scope_and_that_the_load_was_not_controlled(tmp_path):
    results = tmp_path / "results"
    write_result(results, make_result(protocol="digits-conv2", dataset="digits", network="conv2",
                                      method="aslp", seed=0))
    (results / "timing").mkdir()
    (results / "timing" / "rescaling-overhead.digits-conv2.seed0.json").write_text(
        json.dumps(synthetic_study(0.10, 0.12, 0.5)))
    (results / "timing" / "broken.json").write_text("{not json")
    html = reports.build_report(results, tmp_path / "out").read_text()
    claim4 = html[html.index('id="claim-4"'):html.index('id="claim-5"')]
    assert "inconclusive: too noisy" in claim4 and "the noise exceeds the effect" in claim4
    assert "The machine&rsquo;s load was not controlled" in claim4
    assert "Scope: digits conv2 (protocol digits-conv2) · networks of seed 0" in claim4
    assert "timing/broken.json" in html[html.index('id="skipped"'):]  # listed, not fatal
    studies, skipped = load_studies(results, 5.0)
    assert len(studies) == 1 and len(skipped) == 1


def test_claim4_takes_every_study_of_the_results(tmp_path):
    (tmp_path / "timing").mkdir()
    for seed in (0, 1):
        (tmp_path / "timing" / f"s{seed}.json").write_text(json.dumps(synthetic_study(0.1, 0.4, 0.02,
                                                                                       seed=seed)))
    studies, _ = load_studies(tmp_path, 5.0)
    claim = evaluate_claims([], studies)[3]
    assert claim.verdict.label == stats.SUPPORTED and len(claim.parts[0].timings) == 2


def test_the_timing_command_checks_its_options_before_measuring(tmp_path, capsys):
    assert cli.main(["timing", "nope-conv2", "--results", str(tmp_path)]) != 0
    assert "unknown protocol 'nope-conv2'" in capsys.readouterr().err
    assert cli.main(["timing", "digits-conv2", "--threads", "0", "--results", str(tmp_path)]) != 0
    assert "--threads 0 is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "timing").exists() or not any((tmp_path / "timing").iterdir())


def test_the_command_prints_each_median_and_the_verdicts():
    text = rescaling_study.summary(analyse("s.json", synthetic_study(0.10, 0.40, 0.02), 5.0))
    assert "aslp SR " in text and "supermask DWR" in text and ": supported" in text
    assert "the machine's load was not controlled" in text
