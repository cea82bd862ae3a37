"""docs/plugins.md and its example plugin: the guide's code is the example file, and the example
really works as an external plugin (a real entry point, read by a fresh interpreter)."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from subnetbench import methods
from subnetbench.methods.layers import MaskedLayer, masked_layers
from tests.helpers import (
    REPO,
    digits_batch,
    digits_net,
    last_json_line,
    run_python,
    single_torch_thread,  # noqa: F401  (autouse fixture)
    source_tree_copy,
    write_distribution,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

GUIDE = REPO / "docs" / "plugins.md"
EXAMPLE = REPO / "docs" / "examples" / "example_plugin.py"


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", GUIDE.read_text(), flags=re.S | re.M)


def load_example():
    """The example file as a module (in sys.modules, which its dataclass needs), not registered."""
    name = "docs_example_plugin"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def snippet() -> dict:
    blocks = code_blocks("toml")
    assert len(blocks) == 1
    return tomllib.loads(blocks[0])


def test_the_guide_shows_the_example_file_verbatim():
    assert EXAMPLE.read_text() in code_blocks("python")


def test_the_guide_quotes_real_messages():
    text = " ".join(GUIDE.read_text().split())
    with pytest.raises(methods.OptionError) as info:
        methods.get("aslp")(temperature=0.0)
    assert f"`{info.value}`" in text
    assert f"`{methods.origin('aslp')}`" in text
    with pytest.raises(methods.UnknownMethodError) as unknown:
        methods.get("edge_pop")
    assert str(unknown.value).endswith("did you mean 'edge_popup'?")
    assert "did you mean 'edge_popup'?" in text
    assert "methods.get(\"edge_pop\")" in text
    assert f"`{methods.ENTRY_POINT_GROUP}`" in text


def test_the_pyproject_snippet_declares_the_example():
    project = snippet()
    entry_points = project["project"]["entry-points"][methods.ENTRY_POINT_GROUP]
    example = load_example()
    (name, value), = entry_points.items()
    assert name == example.ThresholdMask.name == "threshold"
    module, attribute = value.split(":")
    assert attribute == "ThresholdMask"
    assert project["tool"]["setuptools"]["py-modules"] == [module]


def test_the_example_meets_the_common_method_properties():
    example = load_example()
    method = example.ThresholdMask(smart_rescale=True, threshold=0.002)
    model = method.prepare(digits_net(), torch.Generator().manual_seed(0))
    assert methods.trainable_tensor_names(model) == method.traits().trainable_tensors == \
        {"scores", "scale"}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters()
              if n.rpartition(".")[2] in ("weight", "bias")}
    scores = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("scores")}
    optimisers = [spec.build() for spec in method.optimizer_specs(model)]
    model.train()
    for index, (_, layer) in enumerate(masked_layers(model)):
        # straight-through: d loss / d mask = upstream * w * s reaches the scores unchanged
        upstream = torch.randn(layer.weight.shape, generator=torch.Generator().manual_seed(index))
        (method.sampled_weight(layer) * upstream).sum().backward()
        torch.testing.assert_close(layer.scores.grad, upstream * layer.weight * layer.scale.detach())
        assert torch.equal(method.sampled_weight(layer).detach() != 0, method.keep_mask(layer))
    model.zero_grad()
    F.cross_entropy(model(digits_batch()), torch.arange(6)).backward()
    for optimiser in optimisers:
        optimiser.step()
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    assert any(not torch.equal(p, scores[n]) for n, p in model.named_parameters() if n in scores)
    extracted, stats = method.extract(model)
    assert (stats.kept, stats.total) == methods.count_nonzero_weights(extracted)
    assert 0 < stats.kept < stats.total
    assert not any(isinstance(m, MaskedLayer) for m in extracted.modules())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(extracted(digits_batch()), model(digits_batch()))
    with pytest.raises(methods.OptionError, match="init_range=0"):
        example.ThresholdMask(init_range=0)


RUN_THE_PLUGIN = '''
    import json
    import torch
    from torch.nn import functional as F
    from subnetbench import methods
    from subnetbench.benchmark.networks import ConvNet

    Method = methods.get("threshold")
    method = Method(smart_rescale=True)
    model = method.prepare(ConvNet("conv2", in_channels=1, image_size=8, num_classes=10),
                           torch.Generator().manual_seed(0))
    weights = [p.detach().clone() for n, p in model.named_parameters() if n.endswith("weight")]
    optimisers = [spec.build() for spec in method.optimizer_specs(model)]
    model.train()
    x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    loss = F.cross_entropy(model(x), torch.arange(8) % 10)
    loss.backward()
    grads = [bool(torch.count_nonzero(layer.scores.grad)) for _, layer in methods.masked_layers(model)]
    for optimiser in optimisers:
        optimiser.step()
    after = [p for n, p in model.named_parameters() if n.endswith("weight")]
    extracted, stats = method.extract(model)
    model.eval()
    with torch.no_grad():
        same = bool(torch.allclose(extracted(x), model(x), atol=1e-6))
    print(json.dumps({
        "names": methods.names(), "origin": methods.origin("threshold"),
        "module": Method.__module__, "loss": float(loss), "score_grads": grads,
        "weights_frozen": all(torch.equal(a, b) for a, b in zip(weights, after)),
        "kept": stats.kept, "total": stats.total,
        "nonzero": list(methods.count_nonzero_weights(extracted)), "extracted_matches": same,
    }))
'''


def check_report(report: dict, module: str, origin: str) -> None:
    assert "threshold" in report["names"]
    assert report["names"] == sorted(["aslp", "biprop", "dense", "edge_popup", "iterand",
                                      "magnitude_pruning", "probmask", "random_pruning",
                                      "supermask", "threshold"])
    assert report["origin"] == origin
    assert report["module"] == module
    assert report["loss"] == report["loss"] and report["loss"] > 0  # finite, not nan
    assert report["score_grads"] == [True] * 5
    assert report["weights_frozen"]
    assert report["nonzero"] == [report["kept"], report["total"]]
    assert 0 < report["kept"] < report["total"]
    assert report["extracted_matches"]


def test_the_example_runs_as_an_external_plugin(tmp_path):
    """The entry point of the guide's pyproject snippet, in a real dist-info directory."""
    project = snippet()
    dist = project["project"]["name"]
    entry_points = project["project"]["entry-points"][methods.ENTRY_POINT_GROUP]
    module = project["tool"]["setuptools"]["py-modules"][0]
    write_distribution(tmp_path, dist, entry_points, {module: EXAMPLE.read_text()})
    report = last_json_line(run_python(RUN_THE_PLUGIN, tmp_path))
    check_report(report, module, f"entry point 'threshold' = {entry_points['threshold']} "
                                 f"(distribution {dist})")


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory) -> Path:
    """The guide's pyproject.toml and example, built and installed by pip (offline) into a
    directory: a real distribution, as a user installs it."""
    pytest.importorskip("setuptools")
    source, target = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("site")
    module = snippet()["tool"]["setuptools"]["py-modules"][0]
    (source / "pyproject.toml").write_text(code_blocks("toml")[0])
    shutil.copy(EXAMPLE, source / f"{module}.py")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                          "--no-build-isolation", "--target", str(target), str(source)],
                         capture_output=True, text=True, timeout=300)
    if pip.returncode != 0 and "No module named pip" in pip.stderr:
        pytest.skip("pip is not available")
    assert pip.returncode == 0, pip.stderr
    return target


def test_the_snippet_installs_with_pip(installed_plugin):
    installed = list(installed_plugin.glob("*.dist-info/entry_points.txt"))
    assert len(installed) == 1
    assert "[subnetbench.methods]\nthreshold = subnetbench_threshold:ThresholdMask" in \
        installed[0].read_text()
    report = last_json_line(run_python(RUN_THE_PLUGIN, installed_plugin))
    check_report(report, "subnetbench_threshold", "entry point 'threshold' = "
                 "subnetbench_threshold:ThresholdMask (distribution subnetbench-threshold)")


def subnetbench(site: Path, *args: str) -> subprocess.CompletedProcess:
    """The subnetbench command in a fresh interpreter that has the plugin installed."""
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "subnetbench", *args], env=env, cwd=site,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def test_an_installed_plugin_gets_seed_batching_the_speed_study_and_the_report(installed_plugin,
                                                                               tmp_path):
    """The README's promise: adding a method is writing one plugin. Installed, and nothing else
    changed, the plugin trains as a seed batch, is timed by the speed study and is in the report."""
    run = ["run", "digits-conv2", "--method", "threshold", "--seeds", "0,1", "--device", "cpu",
           "--set", "epochs=2", "--set", "patience=0", "--set", "threshold.smart_rescale=true",
           "--no-progress"]
    subnetbench(installed_plugin, *run, "--seed-batch", "2", "--results", str(tmp_path / "batched"))
    subnetbench(installed_plugin, *run, "--results", str(tmp_path / "separate"))
    batched = sorted((tmp_path / "batched" / "runs").glob("*.json"))
    assert [p.name for p in batched] == sorted(p.name for p in (tmp_path / "separate" / "runs").glob("*"))
    assert len(batched) == 2
    for path in batched:
        together = json.loads(path.read_text())
        alone = json.loads((tmp_path / "separate" / "runs" / path.name).read_text())
        assert together["method"] == "threshold" and together["variant"]["smart_rescale"]
        assert (together["timings"]["seed_batch"], together["timings"]["seed_batch_mode"]) == (2, "loop")
        assert together["metrics"] == alone["metrics"]  # loop mode: the arithmetic of separate runs

    speed_json = tmp_path / "speed.json"
    subnetbench(installed_plugin, "speed", "--quick", "--device", "cpu", "--dataset", "digits",
                "--networks", "conv2", "--methods", "threshold,threshold+sr", "--variants", "none",
                "--seed-batches", "1,2", "--seed-modes", "loop", "--seed-method", "threshold",
                "--batch-size", "4", "--batches", "1", "--repeats", "1", "--eval-images", "4",
                "--reference-workers", "0", "--silent", "--json", str(speed_json))
    rows = json.loads(speed_json.read_text())["rows"]
    assert {(r["method"], r["seeds_batched"]) for r in rows} == {
        ("threshold", None), ("threshold+sr", None), ("threshold", 1), ("threshold", 2)}
    assert all(r["ours_images_per_s"] > 0 and r["reference_images_per_s"] > 0 for r in rows)

    out = tmp_path / "report"
    subnetbench(installed_plugin, "report", "--results", str(tmp_path / "batched"), "--out", str(out))
    html = (out / "report.html").read_text()
    assert '<th class="method">threshold</th>' in html
    lines = (out / "tables" / "results.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines[1:]]
    assert [(r[0], r[7], r[10]) for r in rows] == [("mask-only", "threshold", "2")]


def test_the_example_works_as_an_in_repo_module(tmp_path):
    """As the guide says: saved as methods/threshold.py, it is found by convention."""
    shutil.copy(EXAMPLE, source_tree_copy(tmp_path) / "methods" / "threshold.py")
    report = last_json_line(run_python(RUN_THE_PLUGIN, tmp_path))
    check_report(report, "subnetbench.methods.threshold",
                 "class ThresholdMask in module subnetbench.methods.threshold")


def test_the_guide_describes_every_interface_method():
    """Every public attribute of the Method interface (hooks) and every field of the traits it
    declares is in the guide."""
    text = GUIDE.read_text()
    public = [name for name in vars(methods.Method) if not name.startswith("_")]
    assert {"prepare", "keep_mask", "traits", "optimizer_specs"} <= set(public)
    fields = [f.name for f in dataclasses.fields(methods.MethodTraits)]
    assert {"evaluation_samples", "seed_batch_refusal", "test_options"} <= set(fields)
    for hook in public + fields:
        assert f"`{hook}" in text, hook
    assert Path(REPO / "docs" / "examples" / "example_plugin.py").exists()


# The guide's command that checks an installed plugin, run as the guide says.
CHECK_COMMAND = '''python -c "from subnetbench import methods; print(methods.names(), methods.origin('threshold'))"'''  # noqa: E501


def test_the_guides_check_command_finds_the_installed_plugin(installed_plugin):
    assert CHECK_COMMAND in GUIDE.read_text()
    env = {**os.environ, "PYTHONPATH": str(installed_plugin)}
    done = subprocess.run(shlex.split(CHECK_COMMAND.replace("python", sys.executable, 1)), env=env,
                          cwd=installed_plugin, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "'threshold'] entry point 'threshold' = subnetbench_threshold:ThresholdMask" in done.stdout


FIXED_MASK = REPO / "docs" / "examples" / "fixed_mask_plugin.py"


def test_the_guide_shows_the_method_that_learns_nothing_verbatim():
    assert FIXED_MASK.read_text() in code_blocks("python")


def test_a_method_that_learns_nothing_is_run_evaluated_extracted_and_reported(tmp_path):
    """The fixed random mask (no trainable tensor, no optimiser) as an in-repo module: `subnetbench
    run` trains it without a backward pass (the loss of every epoch is that of the same network),
    evaluates and extracts it, and the report shows it."""
    shutil.copy(FIXED_MASK, source_tree_copy(tmp_path) / "methods" / "fixed_random_mask.py")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
    results = tmp_path / "results"
    for args in (["run", "digits-conv2", "--method", "fixed_random_mask", "--seeds", "0",
                  "--set", "epochs=2", "--set", "patience=0", "--device", "cpu", "--no-progress",
                  "--results", str(results)],
                 ["report", "--results", str(results), "--out", str(tmp_path / "report")]):
        done = subprocess.run([sys.executable, "-m", "subnetbench", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    (path,) = (results / "runs").glob("*.json")
    result = json.loads(path.read_text())
    assert result["status"] == "completed" and result["family"] == "mask-only"
    # nothing trained: both epochs evaluate the same network on the same validation split
    assert result["curves"]["val_acc"][0] == result["curves"]["val_acc"][1]
    assert abs(result["metrics"]["kept_fraction"] - 0.5) < 1e-3
    assert 0 < result["metrics"]["final_test_acc"] < 1
    html = (tmp_path / "report" / "report.html").read_text()
    assert '<th class="method">fixed_random_mask</th>' in html
