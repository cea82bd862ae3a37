"""What `pip install subnetbench` puts on a machine: one top-level name, no benchmark suite, the
report's template and the published values; and no alias of the unreleased 0.1 names."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.helpers import REPO, last_json_line, run_python


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


def test_the_old_top_level_names_are_not_aliased(tmp_path):
    """Version 0.1 was never released: ``import methods`` names no module of subnetbench (no import
    hook, no DeprecationWarning), whatever ``subnetbench`` has loaded."""
    report = last_json_line(run_python('''
        import importlib, json, sys, warnings
        warnings.simplefilter("error")
        import subnetbench
        from subnetbench import methods
        methods.names()
        missing = []
        for name in ("methods", "methods.base", "benchmark", "reports"):
            try:
                importlib.import_module(name)
            except ModuleNotFoundError:
                missing.append(name)
        hooks = [type(f).__name__ for f in sys.meta_path if "subnetbench" in type(f).__module__]
        print(json.dumps({"missing": missing, "hooks": hooks}))
    ''', tmp_path))
    assert report == {"missing": ["methods", "methods.base", "benchmark", "reports"], "hooks": []}


def test_the_traits_are_the_methods_own_declaration():
    """The traits are the method's own: option fields that happen to be called ``eval_samples``,
    ``keep_fraction`` or ``smart_rescale`` change nothing the engine reads, and a method that
    declares no traits is refused by name."""
    from dataclasses import dataclass

    from subnetbench.methods import MASK_ONLY, Method, MethodTraits

    @dataclass(frozen=True)
    class Options:
        eval_samples: int = 7
        keep_fraction: float = 0.3
        smart_rescale: bool = True
        dynamic_weight_rescale: bool = True

    class Quiet(Method):
        def traits(self) -> MethodTraits:
            return MethodTraits(family=MASK_ONLY, trainable_tensors=frozenset())

    class Silent(Method):
        pass

    Quiet.Options = Options
    traits = Quiet().traits()
    assert (traits.evaluation_samples, traits.fixed_keep_fraction, traits.rescaling) == (1, None, None)
    with pytest.raises(NotImplementedError, match="Silent must define traits"):
        Silent().traits()
