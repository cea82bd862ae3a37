"""What `pip install subnetbench` puts on a machine: one top-level name, no benchmark suite, the
report's template and the published values; and plugins written before the namespace still load."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import REPO, last_json_line, run_python, write_distribution


@pytest.fixture(scope="module")
def wheel_install(tmp_path_factory):
    """The project built as a wheel and installed (offline, no dependencies) into a directory."""
    pytest.importorskip("setuptools")
    source, target = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("site")
    # Built from a copy: setuptools writes build/ and *.egg-info/ beside the sources.
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    for folder in ("subnetbench", "methods", "benchmark", "reports", "reference_results"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    # Verbose: setuptools' warnings about the package list show only then.
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--verbose", "--no-index", "--no-deps",
                          "--no-build-isolation", "--target", str(target), str(source)],
                         capture_output=True, text=True, timeout=600, cwd=target)
    if pip.returncode != 0 and "No module named pip" in pip.stderr:
        pytest.skip("pip is not available")
    assert pip.returncode == 0, pip.stderr
    # A folder of the sources that Python could import but `packages` does not list: setuptools
    # guesses (and will stop installing it); every such folder is listed in pyproject.toml.
    assert "absent from the `packages` configuration" not in pip.stdout + pip.stderr
    return target


def test_the_wheel_installs_one_top_level_name(wheel_install):
    top = {path.name for path in wheel_install.iterdir() if path.name != "bin"}
    assert {name for name in top if not name.endswith(".dist-info")} == {"subnetbench"}
    package = wheel_install / "subnetbench"
    assert {p.name for p in package.iterdir() if p.is_dir() and p.name != "__pycache__"} == {
        "methods", "benchmark", "reports", "reference_results"}
    assert not (package / "benchmark" / "suite").exists()  # the benchmark suite stays in the repo
    assert not list(package.rglob("test_*.py")) and not list(package.rglob("conftest.py"))
    assert (package / "reports" / "templates" / "report.html.j2").is_file()
    assert (package / "reference_results" / "published.json").is_file()


def test_the_installed_package_finds_its_methods_and_published_values(wheel_install):
    report = last_json_line(run_python('''
        import json, subnetbench
        from subnetbench import methods
        from subnetbench.reports.loading import load_reference
        reference = load_reference()
        print(json.dumps({"file": subnetbench.__file__, "names": methods.names(),
                          "published": len(reference.values), "problem": reference.problem}))
    ''', wheel_install))
    assert report["file"].startswith(str(wheel_install))
    assert report["names"] == ["aslp", "biprop", "dense", "edge_popup", "iterand",
                               "magnitude_pruning", "probmask", "random_pruning", "supermask"]
    assert report["published"] > 0 and report["problem"] is None


OLD_STYLE_PLUGIN = textwrap.dedent('''
    from dataclasses import dataclass

    import torch

    from methods.base import ScoredMaskMethod, ScoredMaskOptions


    @dataclass(frozen=True)
    class OldOptions(ScoredMaskOptions):
        mask_lr: float = 0.1


    class Old(ScoredMaskMethod):
        name = "old"
        Options = OldOptions

        def initial_scores(self, layer, generator):
            return torch.rand(layer.weight.shape, generator=generator) - 0.5

        def keep_mask(self, layer):
            return layer.scores > 0
''')


def test_a_plugin_importing_the_old_top_level_names_still_loads(tmp_path):
    """Plugins written against the guide of version 0.1 import ``methods.base``: it is an alias of
    ``subnetbench.methods.base`` (the same classes), with a DeprecationWarning."""
    write_distribution(tmp_path, "subnetbench-old", {"old": "subnetbench_old:Old"},
                       {"subnetbench_old": OLD_STYLE_PLUGIN})
    report = last_json_line(run_python('''
        import json, sys, warnings
        import torch
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            from subnetbench import methods
            from subnetbench.benchmark.networks import ConvNet
            cls = methods.get("old")
        model = cls().prepare(ConvNet("conv2", 1, 8, 10), torch.Generator().manual_seed(0))
        print(json.dumps({
            "base_is_shared": issubclass(cls, sys.modules["subnetbench.methods.base"].ScoredMaskMethod),
            "same_module": sys.modules["methods.base"] is sys.modules["subnetbench.methods.base"],
            "spec": sys.modules["subnetbench.methods.base"].__spec__.name,
            "warned": [str(w.message) for w in caught if w.category is DeprecationWarning],
            "masked": len(list(methods.masked_layers(model)))}))
    ''', tmp_path))
    assert report["base_is_shared"] and report["same_module"]
    assert report["spec"] == "subnetbench.methods.base"
    assert "'import methods' is deprecated; import subnetbench.methods instead" in report["warned"]
    assert report["masked"] == 5


def test_the_plugin_of_the_version_0_1_guide_runs_from_the_repository_root(tmp_path):
    """The guide's complete example of version 0.1 (``import methods.base``), installed as a
    distribution and run from the repository root (``python -m`` puts it first on the path, as
    pytest does): there the old name ``methods`` is this repository's own folder, which must alias
    ``subnetbench.methods`` rather than load a second copy whose ``Method`` the registry refuses.
    It then trains as a seed batch, with the results of separate runs (loop mode on a CPU)."""
    source = (REPO / "tests" / "data" / "plugin_of_version_0_1.py").read_text()
    write_distribution(tmp_path / "site", "subnetbench-threshold",
                       {"threshold": "subnetbench_threshold:ThresholdMask"},
                       {"subnetbench_threshold": source})
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "OMP_NUM_THREADS": "1"}
    run = [sys.executable, "-m", "subnetbench", "run", "digits-conv2", "--method", "threshold",
           "--seeds", "0,1", "--device", "cpu", "--set", "epochs=2", "--no-progress",
           "--no-save-subnetwork"]
    for extra, folder in ((["--seed-batch", "2"], "batched"), ([], "separate")):
        result = subprocess.run(run + extra + ["--results", str(tmp_path / folder)], env=env, cwd=REPO,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    batched = sorted((tmp_path / "batched" / "runs").glob("digits-conv2.threshold.*.json"))
    assert len(batched) == 2
    for path in batched:
        together = json.loads(path.read_text())
        alone = json.loads((tmp_path / "separate" / "runs" / path.name).read_text())
        assert together["status"] == "completed" and together["timings"]["seed_batch"] == 2
        assert together["metrics"] == alone["metrics"]


def test_the_declarations_default_to_the_option_fields_the_engine_of_version_0_1_read():
    """The engine of version 0.1 read ``eval_samples``, ``keep_fraction``, ``smart_rescale`` and
    ``dynamic_weight_rescale`` off a method's options; a plugin of that time that never declares
    anything keeps those meanings (its numbers do not change silently), and one without them gets
    the neutral defaults."""
    from dataclasses import dataclass

    from subnetbench.methods import Method

    @dataclass(frozen=True)
    class OldOptions:
        eval_samples: int = 7
        keep_fraction: float = 0.3
        smart_rescale: bool = True
        dynamic_weight_rescale: bool = False

    class Old(Method):
        Options = OldOptions

    old = Old()
    assert (old.evaluation_samples, old.fixed_keep_fraction, old.rescaling) == (7, 0.3, "smart_rescale")
    both = Old(dynamic_weight_rescale=True)
    assert both.rescaling == "dynamic_weight_rescale+smart_rescale"
    assert Old(smart_rescale=False).rescaling is None

    class Bare(Method):
        pass

    assert (Bare().evaluation_samples, Bare().fixed_keep_fraction, Bare().rescaling) == (1, None, None)
