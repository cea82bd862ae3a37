"""The fast paths compute what the plain path computes.

- seed batching (benchmark/runner.py, --seed-batch): in ``loop`` mode the result files of k seeds trained
  together equal those of k separate runs (timings aside), per-seed early stopping and best
  checkpoints included; in ``grouped`` mode (one grouped convolution for all seeds, the GPU path) the
  logits and gradients of a step agree to float tolerance and the seeds' accuracies stay close;
- ``channels_last`` gives the same numbers to float tolerance on a CPU; ``autocast=bf16`` runs the
  device's autocast, on a CPU as on CUDA; the fast-path options at their defaults leave result files
  unchanged;
- CPU runs stay bit-reproducible;
- ``subnetbench speed`` writes the documented JSON (a smoke test on a tiny budget: speed
  targets live in the benchmark's output, never in tests).
"""
from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch

from subnetbench import cli, methods
from subnetbench.benchmark import speed
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.data import DATASET_INFO, DeviceData, Split
from subnetbench.benchmark.grouped import grouped_forward
from subnetbench.benchmark.networks import build_network
from subnetbench.benchmark.recipe import Recipe
from subnetbench.benchmark.runner import execute, execute_runs
from subnetbench.benchmark.speed import cli as speed_cli
from subnetbench.benchmark.speed import study
from subnetbench.benchmark.training import TRAINING_STREAMS, Trainer, fit
from subnetbench.methods.options import OptionError
from tests.helpers import single_torch_thread  # noqa: F401  (autouse: one torch thread per module)

PROTOCOL = "digits-conv2"
OVERRIDES = {"epochs": "2", "patience": "0"}
SEEDS = (0, 1)


def _comparable(result: dict) -> dict:
    """A result without what legitimately differs between two sessions (wall times, provenance)."""
    result = copy.deepcopy(result)
    result.pop("timings")
    result.pop("provenance")
    result.pop("skipped", None)
    result.pop("sha256")  # the digest covers the timings
    return result


def _configs(method: str, overrides: dict | None = None) -> list:
    return [make_config(PROTOCOL, method, seed, overrides or OVERRIDES) for seed in SEEDS]


@pytest.fixture(scope="module")
def separate_aslp(tmp_path_factory) -> list[dict]:
    results = tmp_path_factory.mktemp("separate")
    return [execute(c, results, device="cpu", progress=False) for c in _configs("aslp")]


# -- seed batching, end to end ------------------------------------------------------------------------
def test_seed_batch_loop_writes_the_result_files_of_separate_runs(separate_aslp, tmp_path):
    batched = execute_runs(_configs("aslp"), tmp_path, device="cpu", progress=False,
                                 seed_batch_mode="loop", save_subnetwork=True)
    assert [r["run_id"] for r in batched] == [r["run_id"] for r in separate_aslp]
    for alone, together in zip(separate_aslp, batched):
        assert _comparable(together) == _comparable(alone)  # curves, metrics, histograms: exact
        assert together["timings"]["seed_batch"] == len(SEEDS)
        assert together["timings"]["seed_batch_mode"] == "loop"
        stored = json.loads((tmp_path / "runs" / f"{together['run_id']}.json").read_text())
        assert stored["status"] == "completed" and stored["run_id"] == together["run_id"]
        assert (tmp_path / "subnetworks" / f"{together['run_id']}.pt").exists()
    assert not list((tmp_path / "checkpoints").glob("*.pt"))
    # asked again, the finished seeds are skipped, as with separate runs
    again = execute_runs(_configs("aslp"), tmp_path, device="cpu", progress=False, seed_batch_mode="loop")
    assert all(r.get("skipped") for r in again)


def test_seed_batch_grouped_stays_close_to_separate_runs(separate_aslp, tmp_path):
    grouped = execute_runs(_configs("aslp"), tmp_path, device="cpu", progress=False,
                                 seed_batch_mode="grouped")
    for alone, together in zip(separate_aslp, grouped):
        assert together["run_id"] == alone["run_id"]
        assert together["metrics"]["epochs_run"] == alone["metrics"]["epochs_run"]
        # the first epoch's loss agrees to float tolerance; later, rare mask flips may diverge
        assert together["curves"]["train_loss"][0] == pytest.approx(alone["curves"]["train_loss"][0],
                                                                    rel=1e-4)
        assert abs(together["metrics"]["final_test_acc"] - alone["metrics"]["final_test_acc"]) <= 0.05
    mean = lambda rs: sum(r["metrics"]["final_test_acc"] for r in rs) / len(rs)  # noqa: E731
    assert abs(mean(grouped) - mean(separate_aslp)) <= 0.03


def test_seed_batch_through_the_command_line(separate_aslp, tmp_path, capsys):
    code = cli.main(["run", PROTOCOL, "--method", "aslp", "--seeds", ",".join(map(str, SEEDS)),
                     "--set", "epochs=2", "--set", "patience=0", "--results", str(tmp_path),
                     "--device", "cpu", "--no-progress", "--seed-batch", "2",
                     "--seed-batch-mode", "loop"])
    assert code == 0
    for alone in separate_aslp:
        stored = json.loads((tmp_path / "runs" / f"{alone['run_id']}.json").read_text())
        assert _comparable(stored) == _comparable(alone)


def test_seed_batch_is_refused_with_parallel_jobs(tmp_path, capsys):
    code = cli.main(["run", PROTOCOL, "--method", "aslp", "--seeds", "0,1", "--results",
                     str(tmp_path), "--device", "cpu", "--seed-batch", "2", "--jobs", "2"])
    assert code == 2 and "--seed-batch" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_seed_batch_refuses_what_it_does_not_support(tmp_path):
    with pytest.raises(OptionError, match="magnitude_pruning trains in 2 rounds"):
        execute_runs(_configs("magnitude_pruning"), tmp_path, device="cpu")
    mixed = [make_config(PROTOCOL, "aslp", 0, OVERRIDES), make_config(PROTOCOL, "aslp", 1)]
    with pytest.raises(OptionError, match="differ in more than the seed"):
        execute_runs(mixed, tmp_path, device="cpu")
    with pytest.raises(OptionError, match="compile"):
        execute_runs(_configs("aslp", {**OVERRIDES, "compile": "true"}), tmp_path,
                           device="cpu")
    assert not (tmp_path / "runs").exists()  # refused before anything was written


# -- seed batching, the loop and the step -------------------------------------------------------------
def _split(n: int, seed: int) -> Split:
    generator = torch.Generator().manual_seed(seed)
    return Split(torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=generator),
                 torch.randint(0, 10, (n,), generator=generator))


def _trainer(seed: int, method_name: str = "aslp", **recipe) -> Trainer:
    data = DeviceData(DATASET_INFO["digits"], _split(40, seed), _split(8, 100 + seed),
                      _split(8, 200 + seed))
    recipe = Recipe(**{"batch_size": 16, "epochs": 6, "patience": 2, "augmentation": True,
                       **recipe})
    torch.manual_seed(seed)
    model = build_network("conv2", 1, 8, 10)
    method = methods.get(method_name)()
    method.prepare(model, torch.Generator().manual_seed(seed + 1))
    generators = {name: torch.Generator().manual_seed(10 * seed + i)
                  for i, name in enumerate(TRAINING_STREAMS)}
    method.set_sample_generator(generators["mask-sampling"])
    return Trainer(model, method, data, recipe, generators)


def _scripted(trainer: Trainer, values: list[float]) -> Trainer:
    queue = list(values)
    trainer.validate = lambda: queue.pop(0)
    return trainer


# Validation accuracies per seed: seed 0 stops after epoch 4 (patience 2), seed 1 after 3, seed 2
# runs all 6 epochs; each ends on its own best checkpoint.
SCRIPTS = [[0.1, 0.5, 0.4, 0.3, 0.9, 0.9], [0.6, 0.2, 0.1, 0.9, 0.9, 0.9],
           [0.1, 0.2, 0.3, 0.2, 0.4, 0.3]]


def test_fit_stops_each_seed_on_its_own_and_keeps_its_best_checkpoint():
    alone = [_scripted(_trainer(seed), script) for seed, script in enumerate(SCRIPTS)]
    for trainer in alone:
        trainer.fit()
    together = [_scripted(_trainer(seed), script) for seed, script in enumerate(SCRIPTS)]
    finished = []
    fit(together, on_finished=lambda t: finished.append(together.index(t)))
    assert [len(t.state.history) for t in together] == [4, 3, 6]
    assert finished == [1, 0, 2]  # in the order they stopped
    for a, b in zip(alone, together):
        assert b.state.history == [dict(r, seconds=h["seconds"]) for r, h in
                                   zip(a.state.history, b.state.history)]
        assert (b.state.best_epoch, b.state.best_val_acc) == (a.state.best_epoch, a.state.best_val_acc)
        for key, value in a.model.state_dict().items():
            assert torch.equal(value, b.model.state_dict()[key]), key


@pytest.mark.parametrize("method_name", ["aslp", "supermask", "edge_popup", "dense"])
def test_grouped_step_matches_separate_steps(method_name):
    trainers = [_trainer(seed, method_name) for seed in range(3)]
    twins = [_trainer(seed, method_name) for seed in range(3)]
    images = [t.preprocess(t.data.train.images[:16]) for t in trainers]
    labels = [t.data.train.labels[:16] for t in trainers]
    for t in trainers + twins:
        t.model.train()
    logits = grouped_forward(trainers, images)
    torch.autograd.backward([torch.nn.functional.cross_entropy(out, y)
                             for out, y in zip(logits, labels)])
    for i, twin in enumerate(twins):  # same masks: the twins sample from identical generators
        alone = twin.model(images[i])
        torch.nn.functional.cross_entropy(alone, labels[i]).backward()
        torch.testing.assert_close(logits[i], alone, rtol=1e-5, atol=1e-5)
        grads = {n: p.grad for n, p in trainers[i].model.named_parameters() if p.grad is not None}
        expected = {n: p.grad for n, p in twin.model.named_parameters() if p.grad is not None}
        assert grads.keys() == expected.keys() and grads
        for name in grads:
            torch.testing.assert_close(grads[name], expected[name], rtol=1e-4, atol=1e-5)


# -- fast-path options ----------------------------------------------------------------------------
def test_one_logistic_draw_trains_like_the_official_two_gumbel_draws(tmp_path):
    """The fast estimator end to end: ASLP on digits-conv2 with ``estimator=logistic`` (ours, one
    logistic draw per weight) and ``gumbel_pair`` (the official two-logit Gumbel-Softmax) over the
    same 4 seeds. The draws differ, so the runs are not identical, but the accuracy distributions
    must agree: a paired t-test of the per-seed differences at the 1 % level (|mean| <= t * SE with
    t = 5.841, the 0.995 quantile of Student's t with 3 degrees of freedom), plus one test image
    of slack (1/359) so that a difference of identical runs never fails on rounding."""
    seeds, accuracies = (0, 1, 2, 3), {}
    for estimator in ("logistic", "gumbel_pair"):
        overrides = {"epochs": "4", "patience": "0", "aslp.estimator": estimator}
        accuracies[estimator] = [
            execute(make_config(PROTOCOL, "aslp", seed, overrides), tmp_path, device="cpu",
                    progress=False)["metrics"]["final_test_acc"] for seed in seeds]
    assert min(accuracies["logistic"] + accuracies["gumbel_pair"]) > 0.7  # both train (chance: 0.1)
    differences = torch.tensor(accuracies["logistic"], dtype=torch.float64) - torch.tensor(
        accuracies["gumbel_pair"], dtype=torch.float64)
    standard_error = float(differences.std()) / len(seeds) ** 0.5
    assert abs(float(differences.mean())) <= 5.841 * standard_error + 1 / 359, accuracies


@pytest.mark.parametrize("method_name", ["aslp", "dense"])
def test_channels_last_gives_the_same_numbers_within_float_tolerance(method_name):
    plain = _trainer(0, method_name, epochs=2, patience=0)
    fast = _trainer(0, method_name, epochs=2, patience=0, channels_last=True)
    assert fast.model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    a, b = plain.fit(), fast.fit()
    for ra, rb in zip(a.history, b.history):
        assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-4)
        assert rb["train_acc"] == pytest.approx(ra["train_acc"], abs=1 / 40)
    for key, value in plain.model.state_dict().items():
        torch.testing.assert_close(fast.model.state_dict()[key].contiguous(), value, rtol=1e-3,
                                   atol=1e-3)


def test_bf16_autocast_runs_on_the_cpu_as_on_cuda_and_is_validated(tmp_path):
    """The same code path on both devices (torch.autocast of the run's device type): the training
    forward computes in bfloat16, evaluation in float32, and a run completes."""
    trainer = _trainer(0, "aslp", autocast="bf16")
    trainer.model.train()
    x = trainer.preprocess(trainer.data.train.images[:8])
    with trainer.autocast():
        assert trainer.forward(x).dtype == torch.bfloat16
    assert trainer.model.eval()(x).dtype == torch.float32
    config = make_config(PROTOCOL, "dense", 0, {"autocast": "bf16", "epochs": "1"})
    assert execute(config, tmp_path, device="cpu", progress=False)["status"] == "completed"
    with pytest.raises(OptionError, match="autocast"):
        Recipe(autocast="fp16")
    with pytest.raises(OptionError, match="channels_last"):
        Recipe(channels_last="yes")


def test_fast_path_options_at_their_defaults_change_no_result_file():
    plain = make_config(PROTOCOL, "aslp", 0)
    explicit = make_config(PROTOCOL, "aslp", 0, {"channels_last": "false", "autocast": "none",
                                                 "compile": "false"})
    assert explicit.run_id == plain.run_id
    assert explicit.options_dict() == plain.options_dict()
    assert not {"channels_last", "autocast", "compile"} & set(plain.options_dict()["recipe"])
    fast = make_config(PROTOCOL, "aslp", 0, {"channels_last": "true"})
    assert fast.run_id != plain.run_id
    assert fast.options_dict()["recipe"]["channels_last"] is True
    recipe = dataclasses.asdict(plain.recipe)
    assert {k: recipe[k] for k in ("channels_last", "autocast", "compile")} == {
        "channels_last": False, "autocast": "none", "compile": False}


def test_cpu_runs_are_bit_reproducible(separate_aslp, tmp_path):
    again = [execute(c, tmp_path / "again", device="cpu", progress=False) for c in _configs("aslp")]
    assert [_comparable(r) for r in again] == [_comparable(r) for r in separate_aslp]
    grouped = [execute_runs(_configs("aslp"), tmp_path / f"grouped{i}", device="cpu",
                                  progress=False, seed_batch_mode="grouped") for i in range(2)]
    assert [_comparable(r) for r in grouped[0]] == [_comparable(r) for r in grouped[1]]


# -- the speed benchmark (smoke) ------------------------------------------------------------------
ROW_KEYS = {"network", "method", "device", "variant", "seeds_batched", "seed_batch_mode",
            "batch_size", "ours_images_per_s", "reference_images_per_s", "ratio", "ours_epoch_s",
            "reference_epoch_s", "peak_memory_kind", "ours_peak_memory_bytes",
            "reference_peak_memory_bytes", "train_flop_per_image", "ours_flop_per_s",
            "reference_flop_per_s"}


def test_speed_benchmark_writes_the_documented_json(tmp_path, capsys):
    path = tmp_path / "speed.json"
    code = speed_cli.main(["--quick", "--device", "cpu", "--dataset", "digits", "--networks", "conv2",
                       "--methods", "aslp", "--variants", "channels_last", "--seed-batches", "1,2",
                       "--seed-modes", "loop", "--batch-size", "4", "--batches", "1", "--repeats",
                       "1", "--eval-images", "4", "--reference-workers", "1", "--silent",
                       "--json", str(path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "ours img/s" in out and "ratio" in out
    result = json.loads(path.read_text())
    assert result["format"] == "subnetbench.speed" and result["device"] == "cpu"
    rows = result["rows"]
    assert [(r["variant"], r["seeds_batched"]) for r in rows] == [
        ("default", None), ("channels_last", None), ("default", 1), ("default", 2)]
    for row in rows:
        assert ROW_KEYS <= set(row)
        assert row["network"] == "conv2" and row["method"] == "aslp"
        assert row["ours_images_per_s"] > 0 and row["reference_images_per_s"] > 0
        assert row["ratio"] == pytest.approx(row["ours_images_per_s"] / row["reference_images_per_s"])
        assert row["peak_memory_kind"] in ("cpu_peak_rss_growth", "cpu_ru_maxrss_growth")
        assert row["train_flop_per_image"] == 6 * speed.forward_macs(
            build_network("conv2", 1, 8, 10), 8)
    assert rows[3]["seed_batch_mode"] == "loop"
    for row in rows[1:]:  # timed in alternation with epochs of the default pipeline
        assert row["speedup_vs_default"] > 0 and len(row["default_epoch_s_all"]) == 1
    assert result["eval"][0]["network"] == "conv2"
    assert result["grid_estimate"] is None  # digits: no CIFAR grid


def test_a_failing_row_is_recorded_and_the_others_are_measured(tmp_path, monkeypatch, capsys):
    """One row that raises (a method that does not compile, memory) is a row with its error; the
    other rows are measured, the JSON is written, and the exit code is 1."""
    real = speed.study.Bench.measure_variant

    def failing(self, network, method, variant, baseline):
        if variant == "compile":
            raise RuntimeError("the compiler\ncrashed")
        return real(self, network, method, variant, baseline)

    monkeypatch.setattr(speed.study.Bench, "measure_variant", failing)
    path = tmp_path / "speed.json"
    argv = ["speed", "--quick", "--device", "cpu", "--dataset", "digits", "--networks", "conv2",
            "--methods", "dense", "--variants", "compile,bf16", "--variant-methods", "dense",
            "--seed-batches", "none",
            "--batch-size", "4", "--batches", "1", "--repeats", "1", "--eval-images", "4",
            "--reference-workers", "0", "--silent", "--json", str(path)]
    assert cli.main(argv) == 1
    result = json.loads(path.read_text())
    rows = {r["variant"]: r for r in result["rows"]}
    assert rows["compile"]["error"] == "RuntimeError: the compiler crashed"
    assert "ours_images_per_s" not in rows["compile"] and result["failed_rows"] == 1
    assert rows["bf16"]["ours_images_per_s"] > 0 and rows["default"]["ours_images_per_s"] > 0
    assert "compile          FAILED: RuntimeError: the compiler crashed" in capsys.readouterr().out


def test_subnetbench_speed_is_the_same_benchmark(tmp_path, capsys):
    path = tmp_path / "speed.json"
    argv = ["speed", "--quick", "--device", "cpu", "--dataset", "digits", "--networks", "conv2",
            "--methods", "dense", "--variants", "none", "--seed-batches", "none", "--batch-size",
            "4", "--batches", "1", "--repeats", "1", "--eval-images", "4",
            "--reference-workers", "0", "--silent", "--json", str(path)]
    assert cli.main(argv) == 0
    result = json.loads(path.read_text())
    assert result["command"] == "subnetbench " + " ".join(argv)
    assert [(r["network"], r["method"]) for r in result["rows"]] == [("conv2", "dense")]
    assert list(tmp_path.iterdir()) == [path]  # written atomically: no temporary file left
    assert cli.main(["speed", "--networks", "conv9"]) == 2
    assert "'conv9' is not allowed" in capsys.readouterr().err


def test_grid_estimate_arithmetic():
    samples = {"aslp": 10, "supermask": 10, "edge_popup": 1}
    rows = [{"network": "conv2", "method": m, "variant": "default", "seeds_batched": None,
             "seed_batch_mode": None, "ours_images_per_s": 4500.0, "reference_images_per_s": 900.0,
             "checkpoint_s": 0.5, "evaluation_samples": samples[m]}
            for m in ("aslp", "supermask", "edge_popup")]
    rows.append({"network": "conv4", "method": "aslp", "variant": "default", "seeds_batched": None,
                 "seed_batch_mode": None, "error": "RuntimeError: out of memory"})  # a failed row
    evals = [{"network": "conv2", "method": m, "ours_images_per_s": 5000.0,
              "reference_images_per_s": 1000.0} for m in samples]
    g = speed.grid_estimate(rows, evals, epochs_to_best=200)
    assert g["epochs_per_run"] == 300
    assert (g["networks"], g["runs"]) == (["conv2"], 40)  # the networks measured, not 120 runs
    cells = {c["method"]: c for c in g["cells"]}
    assert cells["aslp"]["ours_epoch_s"] == pytest.approx(45000 / 4500 + 5000 / 5000)
    assert cells["aslp"]["reference_epoch_s"] == pytest.approx(45000 / 900 + 5000 / 1000)
    # aslp+SR: both pipelines step twice per batch (Lightning 1.x, one training_step per optimiser;
    # ours: smart_rescale_update=alternating)
    assert cells["aslp+sr"]["reference_epoch_s"] == pytest.approx(2 * 45000 / 900 + 5000 / 1000)
    assert cells["aslp+sr"]["ours_epoch_s"] == pytest.approx(2 * 45000 / 4500 + 5000 / 5000)
    assert cells["aslp+sr"]["reference_estimated_from_aslp"] is True
    # the test: 10 sampled masks and the extracted network, over 10,000 images
    assert cells["aslp"]["ours_test_s"] == pytest.approx(11 * 10000 / 5000)
    assert cells["edge_popup"]["ours_test_s"] == pytest.approx(2 * 10000 / 5000)
    # checkpoints at the default interval: one when 50 times its cost was trained, first and last
    assert cells["aslp"]["ours_checkpoints_s"] == pytest.approx(300 * 11 / 50 + 2 * 0.5)
    assert speed.estimate.checkpoint_s(10.0, 300, 0.5) == pytest.approx(10 / 50 + 1)
    assert speed.estimate.checkpoint_s(10_000.0, 3, 0.5) == pytest.approx(1.5)  # one an epoch at most
    run_s = {m: 300 * c["ours_epoch_s"] + c["ours_checkpoints_s"] + c["ours_test_s"]
             for m, c in cells.items()}
    per_config = 10  # 2 (SC or not) x 5 seeds
    assert g["ours_hours"] == pytest.approx(per_config * sum(run_s.values()) / 3600)
    assert g["missing"] == []  # of the measured networks; conv4 and conv6 were not measured
    assert g["ours_hours_upper_bound"] == pytest.approx(g["ours_hours"] * 1000 / 300)


def test_forward_macs_of_conv2_on_cifar():
    model = build_network("conv2", 3, 32, 10)
    expected = 32 * 32 * 64 * 3 * 9 + 32 * 32 * 64 * 64 * 9 + 16384 * 256 + 256 * 256 + 256 * 10
    assert speed.forward_macs(model, 32) == expected


# -- the speed benchmark takes any registered method -----------------------------------------------
TINY_BUDGET = ["--quick", "--device", "cpu", "--dataset", "digits", "--networks", "conv2",
               "--batch-size", "4", "--batches", "1", "--repeats", "1", "--eval-images", "4",
               "--reference-workers", "0", "--silent"]


def test_speed_benchmark_times_a_method_with_plus_sr_and_seed_batches_of_another(tmp_path):
    path = tmp_path / "speed.json"
    code = cli.main(["speed", *TINY_BUDGET, "--methods", "edge_popup+sr", "--variants", "none",
                     "--seed-batches", "1,2", "--seed-method", "edge_popup", "--json", str(path)])
    assert code == 0
    rows = json.loads(path.read_text())["rows"]
    # edge_popup, the seed method, is not among --methods: its own pair is timed for the seed rows
    assert [(r["method"], r["seeds_batched"], r["seed_batch_mode"]) for r in rows] == [
        ("edge_popup+sr", None, None), ("edge_popup", None, None), ("edge_popup", 1, "loop"),
        ("edge_popup", 2, "loop"), ("edge_popup", 1, "grouped"), ("edge_popup", 2, "grouped")]
    for row in rows:
        assert ROW_KEYS <= set(row) and row["variant"] == "default"
        assert row["ours_images_per_s"] > 0 and row["reference_images_per_s"] > 0
    assert rows[0]["reference_epoch_s_all"] != rows[1]["reference_epoch_s_all"]  # two references
    for row in rows[2:]:
        assert row["reference_epoch_s_all"] == rows[1]["reference_epoch_s_all"]
        assert row["per_seed_images_per_s"] == pytest.approx(row["ours_images_per_s"]
                                                             / row["seeds_batched"])


def test_plus_sr_gives_both_pipelines_the_smart_rescale():
    config = study.method_config("digits-conv2", "edge_popup+sr", 0)
    assert config.method == "edge_popup" and config.method_options.smart_rescale is True
    assert study.method_config("digits-conv2", "edge_popup", 0).method_options.smart_rescale is False
    reference = study.reference_run("conv2", "edge_popup+sr", DATASET_INFO["digits"],
                                    torch.device("cpu"))
    assert len(reference.optimizers) == 2  # scores and scales: two training steps a batch
    assert reference.method.options.smart_rescale is True
    choices = study.method_choices()  # what --methods all selects
    assert set(methods.names()) <= set(choices)
    assert {"aslp+sr", "supermask+sr", "edge_popup+sr"} <= set(choices)
    assert "dense+sr" not in choices and "random_pruning+sr" not in choices


@pytest.mark.parametrize("option, value, reason", [
    ("--methods", "no_such_method", "unknown method 'no_such_method'"),
    ("--methods", "dense+sr", "dense has no smart rescale"),
    ("--variant-methods", "dense+sr", "dense has no smart rescale"),
    ("--seed-method", "no_such_method", "unknown method 'no_such_method'"),
    ("--seed-method", "magnitude_pruning", methods.get("magnitude_pruning")().traits().seed_batch_refusal),
])
def test_speed_benchmark_refuses_what_is_not_a_method_of_the_study(option, value, reason, capsys):
    assert cli.main(["speed", *TINY_BUDGET, option, value]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before anything was measured
    [line] = captured.err.strip().splitlines()
    assert line.startswith(f"subnetbench speed: error: {option} {value!r} is not allowed: ")
    assert reason in line
    if "+sr" in value or "unknown" in reason:  # the error lists what is allowed
        assert f"registered methods: {', '.join(methods.names())}" in line
