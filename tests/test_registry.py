"""The method registry: discovery by convention in methods/, entry points of installed distributions
(real ``*.dist-info`` directories, read by a fresh interpreter), name rules and errors."""
from __future__ import annotations

import json
import textwrap

import pytest

from subnetbench import methods
from subnetbench.methods.aslp import ASLP
from subnetbench.methods.base import Method
from subnetbench.methods.registry import RegistryError, _add
from tests.helpers import (
    last_json_line,
    run_python,
    single_torch_thread,  # noqa: F401  (autouse fixture)
    source_tree_copy,
    write_distribution,
)

# The paper's six methods and the three since (issue 25).
BUILT_IN = ["aslp", "biprop", "dense", "edge_popup", "iterand", "magnitude_pruning", "probmask",
            "random_pruning", "supermask"]

PLUGIN_SOURCE = textwrap.dedent('''
    from subnetbench.methods.weight_training import WeightTrainingMethod


    class Frozen(WeightTrainingMethod):
        """A trivial external method: dense, for registry tests."""
        name = "{name}"
''')

REPORT = '''
    import json
    from subnetbench import methods
    names = methods.names()
    print(json.dumps({"names": names, "origins": {n: methods.origin(n) for n in names}}))
'''


def test_in_repo_discovery_finds_exactly_the_built_in_methods():
    methods.refresh()
    assert methods.names() == BUILT_IN
    for name in BUILT_IN:
        cls = methods.get(name)
        assert issubclass(cls, Method) and cls.name == name
        assert methods.origin(name) == f"class {cls.__qualname__} in module subnetbench.methods.{name}"


def test_an_unknown_name_lists_the_registered_ones_and_suggests_the_closest():
    with pytest.raises(methods.UnknownMethodError) as info:
        methods.get("edge_pop")
    message = str(info.value)
    assert "'edge_pop'" in message
    assert all(name in message for name in BUILT_IN)
    assert message.endswith("did you mean 'edge_popup'?")
    assert isinstance(info.value, LookupError)
    # one vocabulary of bad options: a method name nobody registered is an OptionError like any other
    assert isinstance(info.value, methods.OptionError)
    with pytest.raises(methods.UnknownMethodError, match="did you mean 'supermask'"):
        methods.get("super_mask")
    with pytest.raises(methods.UnknownMethodError) as far:
        methods.get("xyzzy")
    assert "did you mean" not in str(far.value)
    with pytest.raises(methods.UnknownMethodError):
        methods.origin("xyzzy")


def test_a_name_claimed_twice_names_both_origins():
    found: dict = {}
    _add(found, ASLP, "origin one")
    _add(found, ASLP, "origin one again")  # the same class seen twice is not a conflict

    class Impostor(Method):
        name = "aslp"

    with pytest.raises(methods.RegistryError) as info:
        _add(found, Impostor, "origin two")
    assert "'aslp'" in str(info.value)
    assert "origin one" in str(info.value) and "origin two" in str(info.value)


@pytest.mark.parametrize("bad", ["", "Aslp", "9lives", "with-dash", "with space", None])
def test_names_must_be_lower_case_identifiers(bad):
    class Bad(Method):
        name = bad

    with pytest.raises(RegistryError, match="must match"):
        _add({}, Bad, "here")


def test_non_methods_are_refused():
    with pytest.raises(RegistryError, match="not.*Method|does not give"):
        _add({}, object, "here")


def test_discovery_by_convention_of_a_new_module_in_methods(tmp_path):
    """A module dropped into methods/ is found with no registration code; private ones are not."""
    package = source_tree_copy(tmp_path) / "methods"
    (package / "frozen.py").write_text(PLUGIN_SOURCE.format(name="frozen"))
    (package / "_private.py").write_text(PLUGIN_SOURCE.format(name="private"))
    result = run_python(REPORT, tmp_path)
    report = last_json_line(result)
    assert report["names"] == sorted(BUILT_IN + ["frozen"])
    assert report["origins"]["frozen"] == "class Frozen in module subnetbench.methods.frozen"


def test_an_external_plugin_is_found_through_its_entry_point(tmp_path):
    write_distribution(tmp_path, "subnetbench-frozen", {"frozen": "subnetbench_frozen:Frozen"},
                       {"subnetbench_frozen": PLUGIN_SOURCE.format(name="frozen")})
    result = run_python(REPORT + '''
    import torch
    from subnetbench.benchmark.networks import ConvNet
    method = methods.get("frozen")()
    model = method.prepare(ConvNet("conv2", 1, 8, 10))
    print(json.dumps({"out": list(model(torch.zeros(2, 1, 8, 8)).shape),
                      "module": type(method).__module__}))
    ''', tmp_path)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    report, run = json.loads(lines[0]), json.loads(lines[1])
    assert report["names"] == sorted(BUILT_IN + ["frozen"])
    origin = report["origins"]["frozen"]
    assert origin == ("entry point 'frozen' = subnetbench_frozen:Frozen "
                      "(distribution subnetbench-frozen)")
    assert run == {"out": [2, 10], "module": "subnetbench_frozen"}


def test_an_entry_point_whose_class_name_differs_is_an_error(tmp_path):
    write_distribution(tmp_path, "subnetbench-misnamed", {"frozen": "subnetbench_misnamed:Frozen"},
                       {"subnetbench_misnamed": PLUGIN_SOURCE.format(name="thawed")})
    result = run_python(REPORT, tmp_path, check=False)
    assert result.returncode != 0
    assert "methods.registry.RegistryError" in result.stderr
    assert "entry point 'frozen'" in result.stderr and "'thawed'" in result.stderr
    assert "subnetbench-misnamed" in result.stderr


def test_an_external_plugin_claiming_a_builtin_name_is_an_error(tmp_path):
    write_distribution(tmp_path, "subnetbench-fake-aslp", {"aslp": "subnetbench_fake:Frozen"},
                       {"subnetbench_fake": PLUGIN_SOURCE.format(name="aslp")})
    result = run_python(REPORT, tmp_path, check=False)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("subnetbench.methods.registry.RegistryError: method name 'aslp' is "
                           "claimed twice")
    assert "class ASLP in module subnetbench.methods.aslp" in last
    assert "entry point 'aslp' = subnetbench_fake:Frozen (distribution subnetbench-fake-aslp)" in last


def test_refresh_discovers_a_distribution_installed_later(tmp_path):
    (tmp_path / "subnetbench_late.py").write_text(PLUGIN_SOURCE.format(name="late"))
    result = run_python(f'''
    import json, pathlib
    from subnetbench import methods
    before = methods.names()
    dist = pathlib.Path({str(tmp_path)!r}) / "subnetbench_late-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\\nName: subnetbench-late\\nVersion: 0.1.0\\n")
    (dist / "entry_points.txt").write_text("[subnetbench.methods]\\nlate = subnetbench_late:Frozen\\n")
    cached = methods.names()
    methods.refresh()
    print(json.dumps({{"before": before, "cached": cached, "after": methods.names()}}))
    ''', tmp_path)
    report = last_json_line(result)
    assert report["before"] == report["cached"] == BUILT_IN
    assert report["after"] == sorted(BUILT_IN + ["late"])
