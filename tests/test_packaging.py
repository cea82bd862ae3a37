"""What `pip install subnetbench` puts on a machine: one top-level name, no benchmark suite, the
report's template and the published values; and plugins written before the namespace still load."""
from __future__ import annotations

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
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                          "--no-build-isolation", "--target", str(target), str(source)],
                         capture_output=True, text=True, timeout=600, cwd=target)
    if pip.returncode != 0 and "No module named pip" in pip.stderr:
        pytest.skip("pip is not available")
    assert pip.returncode == 0, pip.stderr
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
    assert report["names"] == ["aslp", "dense", "edge_popup", "magnitude_pruning", "random_pruning",
                               "supermask"]
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
