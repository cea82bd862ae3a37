"""Fault injection into ``subnetbench report`` and ``subnetbench speed``, and the CSV exports.

- the report: output paths that are files, under files or not writable; a missing or unreadable
  ``--reference``; damaged, sealed-but-wrong, newer-format and deeply nested result files (listed
  as skipped, never fatal); spreadsheet formulas in result strings (CSV cells neutralised, numbers
  kept as numbers, LaTeX and HTML still escaped);
- the speed study: a ``--json`` path that cannot be written is refused before anything is measured;
  when the write still fails afterwards, the measurement is kept and the error says where.
"""
from __future__ import annotations

import csv
import errno
import importlib
import io
import json

import pytest

from subnetbench import cli, reports
from subnetbench.benchmark.speed import cli as speed_cli
from subnetbench.errors import FileFault
from subnetbench.files import finite_or_null
from subnetbench.records import FORMAT_VERSION, seal
from subnetbench.reference_results import PUBLISHED
from subnetbench.reports.loading import load_results
from subnetbench.reports.output import csv_cell, csv_text
from tests.fault_injection import (
    FAULTS,
    NOT_REGULAR,
    assert_one_paragraph_error,
    failing_writes,
    must_not_hang,
    plant_not_regular,
)
from tests.report_fixtures import make_result, write_result

SPEED = ["speed", "--quick", "--device", "cpu", "--dataset", "digits", "--networks", "conv2",
         "--methods", "dense", "--variants", "none", "--seed-batches", "none", "--batch-size", "4",
         "--batches", "1", "--repeats", "1", "--eval-images", "4", "--reference-workers", "0",
         "--silent"]


@pytest.fixture
def results(tmp_path):
    """A results directory with one good result (format version 1, as the fixtures write)."""
    write_result(tmp_path / "res", make_result(protocol="digits-conv2", dataset="digits",
                                               network="conv2", method="aslp", seed=0))
    return tmp_path / "res"


def report(argv: list[str], capsys) -> tuple[int, str]:
    code = cli.main(["report", *argv])
    return code, capsys.readouterr().err


# -- output paths and the reference file ------------------------------------------------------------

@pytest.mark.parametrize("out, named", [("file", "file"), ("file/inner", "file")])
def test_a_report_directory_that_is_or_is_under_a_file_is_one_paragraph(results, tmp_path, capsys,
                                                                        out, named):
    (tmp_path / "file").write_text("x")
    code, err = report(["--results", str(results), "--out", str(tmp_path / out)], capsys)
    assert code == 2
    assert_one_paragraph_error(err, tmp_path / named, "is a file", prefix="subnetbench report")


@pytest.mark.parametrize("code, words", [(errno.EACCES, "permission denied"), (errno.ENOSPC, "disk is full")])
def test_an_unwritable_report_directory_is_one_paragraph(results, tmp_path, capsys, monkeypatch,
                                                         code, words):
    failing_writes(monkeypatch, code, lambda d: d.name in ("out", "tables", "figures"))
    status, err = report(["--results", str(results), "--out", str(tmp_path / "out")], capsys)
    assert status == 2
    assert_one_paragraph_error(err, tmp_path / "out", words, prefix="subnetbench report")


@pytest.mark.parametrize("content, words", [(None, "not found"), (b"{not json", "unreadable"),
                                            (b'{"format": "other"}', "unreadable")])
def test_an_unusable_reference_file_is_an_error_not_a_silent_omission(results, tmp_path, capsys,
                                                                      content, words):
    reference = tmp_path / "published.json"
    if content is not None:
        reference.write_bytes(content)
    code, err = report(["--results", str(results), "--out", str(tmp_path / "out"), "--reference",
                        str(reference)], capsys)
    assert code == 2
    assert_one_paragraph_error(err, reference, words, "--reference", prefix="subnetbench report")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", NOT_REGULAR)
def test_a_reference_that_is_not_a_regular_file_is_refused_without_blocking(results, tmp_path,
                                                                            capsys, kind):
    reference = tmp_path / "published.json"
    plant_not_regular(reference, kind)
    with must_not_hang():
        code, err = report(["--results", str(results), "--out", str(tmp_path / "out"),
                            "--reference", str(reference)], capsys)
    assert code == 2
    assert_one_paragraph_error(err, reference, "not a regular file", "--reference",
                               prefix="subnetbench report")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_reference_with_non_finite_values_is_refused(results, tmp_path, capsys, token):
    reference = tmp_path / "published.json"
    text = PUBLISHED.read_text()
    value = json.loads(text)["results"][0]["test_acc_percent"]
    reference.write_text(text.replace(f'"test_acc_percent": {json.dumps(value)}',
                                      f'"test_acc_percent": {token}', 1))
    assert token in reference.read_text()
    code, err = report(["--results", str(results), "--out", str(tmp_path / "out"), "--reference",
                        str(reference)], capsys)
    assert code == 2
    assert_one_paragraph_error(err, reference, "non-finite", prefix="subnetbench report")


@pytest.mark.parametrize("kind", NOT_REGULAR)
def test_a_result_file_that_is_not_regular_is_skipped_without_blocking(results, tmp_path, capsys,
                                                                       kind):
    plant_not_regular(results / "runs" / "odd.json", kind)
    with must_not_hang():
        code, err = report(["--results", str(results), "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    reasons = {s.file: s.reason for s in load_results(results).skipped}
    assert "not a regular file" in reasons["odd.json"]


def test_a_results_path_that_is_a_file_is_one_paragraph(tmp_path, capsys):
    (tmp_path / "res").write_text("x")
    code, err = report(["--results", str(tmp_path / "res"), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert_one_paragraph_error(err, tmp_path / "res", prefix="subnetbench report")


# -- bad result files are listed, never fatal --------------------------------------------------------

def test_damaged_newer_and_deep_result_files_are_skipped_with_reasons(tmp_path, capsys):
    good = make_result(protocol="digits-conv2", dataset="digits", network="conv2", method="aslp", seed=0)
    sealed = seal(json.loads(json.dumps(good)))
    runs = tmp_path / "res" / "runs"
    write_result(tmp_path / "res", sealed, "sealed.json")
    text = (runs / "sealed.json").read_bytes()
    files = {f"{kind}.json": FAULTS[kind](text, 0.43) for kind in FAULTS}
    files["edited.json"] = text.replace(b'"seed": 0', b'"seed": 7')
    files["newer.json"] = json.dumps(dict(sealed, format_version=FORMAT_VERSION + 1)).encode()
    files["deep.json"] = json.dumps(dict(good, options={"x": json.loads('{"a":' * 40 + "1" + "}" * 40)}),
                                    ).encode()
    files["metrics-list.json"] = json.dumps(seal(dict(good, metrics=[0.9]))).encode()
    for name, content in files.items():
        (runs / name).write_bytes(content)
    code, err = report(["--results", str(tmp_path / "res"), "--out", str(tmp_path / "out")], capsys)
    assert code == 0 and "Traceback" not in err
    skipped = reports.build_report.__globals__["load_results"](tmp_path / "res").skipped
    reasons = {s.file: s.reason for s in skipped}
    assert set(files) - {"appended.json"} <= set(reasons)  # bytes after the end: invalid JSON too
    assert "does not match its SHA-256" in reasons["edited.json"]
    assert "newer" in reasons["newer.json"] and "upgrade subnetbench" in reasons["newer.json"]
    assert "nested more than 32 levels" in reasons["deep.json"]
    assert "expected dict" in reasons["metrics-list.json"]


@pytest.mark.parametrize("count", [1, 5])
def test_a_directory_whose_result_files_are_all_unusable_is_an_error_not_an_empty_success(
        tmp_path, capsys, count):
    """Every result file damaged (generated faults of a sealed file): the report is still written
    (it lists each file and why), but the command says on stderr that no run could be used and
    exits 2, instead of exit 0 and "0 completed runs"."""
    good = seal(make_result(protocol="digits-conv2", dataset="digits", network="conv2",
                            method="aslp", seed=0))
    text = json.dumps(good, indent=1).encode()
    runs = tmp_path / "res" / "runs"
    runs.mkdir(parents=True)
    kinds = ["empty", "truncated", "random", "zeroed-block", "appended"][:count]
    for i, kind in enumerate(kinds):
        (runs / f"r{i}.json").write_bytes(FAULTS[kind](text, 0.3))
    code, err = report(["--results", str(tmp_path / "res"), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    err = "\n".join(line for line in err.splitlines() if not line.startswith("report: "))  # steps
    line = assert_one_paragraph_error(err, f"none of the {count} result files", runs, "r0.json",
                                      prefix="subnetbench report")
    assert ("and 2 more" in line) == (count == 5)
    assert (tmp_path / "out" / "report.html").exists()


def test_an_empty_results_directory_is_a_note_not_an_error(tmp_path, capsys):
    (tmp_path / "res" / "runs").mkdir(parents=True)
    code, err = report(["--results", str(tmp_path / "res"), "--out", str(tmp_path / "out")], capsys)
    assert code == 0 and "Traceback" not in err
    assert "note: there are no result files" in err and ": error: " not in err


# -- CSV: formulas neutralised, numbers kept, LaTeX and HTML escaped ----------------------------------

@pytest.mark.parametrize("cell, written", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3+cmd", "'-2+3+cmd"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("-1.25", "-1.25"),        # a difference the report formats: stays a number
    ("+0.5", "+0.5"),
    ("-3e-05", "-3e-05"),
    ("aslp", "aslp"),
    (-1.25, -1.25),
    (None, ""),
])
def test_csv_cells_are_neutralised_against_formulas(cell, written):
    assert csv_cell(cell) == written


def test_hostile_result_strings_reach_the_csv_files_neutralised(tmp_path, capsys):
    hostile = "=cmd|' /C calc'!A0"
    for seed in (0, 1):
        result = make_result(protocol="digits-conv2", dataset="digits", network="conv2",
                             method="@SUM(A1)", seed=seed, final_acc=0.9 + 0.01 * seed)
        result["run_id"] = f"+run{seed}"
        result["config_hash"] = hostile
        write_result(tmp_path / "res", result, f"r{seed}.json")
    failed = make_result(protocol="digits-conv2", dataset="digits", network="conv2", method="dense",
                         seed=0, status="failed", error="-1+1 went wrong")
    write_result(tmp_path / "res", failed, "failed.json")
    code, err = report(["--results", str(tmp_path / "res"), "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    for table in (tmp_path / "out" / "tables").glob("*.csv"):
        for row in csv.reader(io.StringIO(table.read_text())):
            for cell in row:
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), (table.name, cell)
                assert not cell.startswith("-") or cell.replace(".", "", 1).lstrip("-").isdigit(), cell
    runs = (tmp_path / "out" / "tables" / "runs.csv").read_text()
    assert "'+run0" in runs and "'-1+1 went wrong" in runs and "'@SUM(A1)" in runs
    html = (tmp_path / "out" / "report.html").read_text()
    assert "=cmd|&#39; /C calc&#39;!A0" in html  # still HTML-escaped (LaTeX: tests/test_report.py)


def test_csv_text_keeps_numbers_numeric():
    text = csv_text(["difference"], [["-1.25"], [-0.5], ["=1+1"]])
    assert text.splitlines() == ["difference", "-1.25", "-0.5", "'=1+1"]


# -- the speed study -----------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["file/x.json", "dir", ""])
def test_a_speed_json_path_that_cannot_be_written_is_refused_before_measuring(tmp_path, capsys,
                                                                             monkeypatch, target):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir").mkdir()

    def no_measurement(*args, **kwargs):
        raise AssertionError("measured although the --json path was bad")

    monkeypatch.setattr(speed_cli.Bench, "run", no_measurement)
    path = str(tmp_path / target) if target else ""
    code = cli.main([*SPEED, "--json", path])
    err = capsys.readouterr().err
    assert code == 2
    assert_one_paragraph_error(err, "--json", prefix="subnetbench speed")


def _replace(argv: list[str], option: str, value: str) -> list[str]:
    if option in argv:
        i = argv.index(option)
        return argv[:i + 1] + [value] + argv[i + 2:]
    return argv + [option, value]


@pytest.mark.parametrize("option, value, named", [
    ("--networks", ",", "--networks ','"),
    ("--networks", " , ,", "--networks ' , ,'"),
    ("--networks", "none", "--networks 'none'"),
    ("--methods", ",", "--methods ','"),
    ("--epochs-to-best", "0", "--epochs-to-best 0"),
    ("--epochs-to-best", "-5", "--epochs-to-best -5"),
    ("--epochs-to-best", "1001", "--epochs-to-best 1001"),
    ("--threads", "0", "--threads 0"),
    ("--threads", "1000000", "--threads 1000000"),
    ("--seed-batches", "1,two", "--seed-batches '1,two' is not allowed; expected comma-separated "
                                "integers such as 1,2,4,8"),
    ("--seed-batches", "2,0", "--seed-batches: every k must be >= 1"),
    ("--grouped-seed-batches", "x", "--grouped-seed-batches 'x' is not allowed"),
    ("--grouped-seed-batches", "1,-2", "--grouped-seed-batches: every k must be >= 1"),
])
def test_a_speed_option_that_measures_nothing_or_nonsense_is_refused_before_measuring(
        capsys, monkeypatch, option, value, named):
    def no_measurement(*args, **kwargs):
        raise AssertionError("measured although an option was bad")

    monkeypatch.setattr(speed_cli.Bench, "run", no_measurement)
    code = cli.main(_replace(SPEED, option, value))
    assert code == 2
    assert_one_paragraph_error(capsys.readouterr().err, named, prefix="subnetbench speed")


def test_a_speed_json_write_that_fails_after_measuring_keeps_the_measurement(tmp_path, capsys,
                                                                           monkeypatch):
    target = tmp_path / "speed.json"

    def disk_full(path, text):
        raise FileFault(f"cannot write {path}: No space left on device (errno 28); the disk is full")

    monkeypatch.setattr(speed_cli, "atomic_write_text", disk_full)
    monkeypatch.setattr(speed_cli.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    code = cli.main([*SPEED, "--json", str(target)])
    captured = capsys.readouterr()
    assert code == 2
    line = assert_one_paragraph_error(captured.err, target, "the measurement is kept",
                                      prefix="subnetbench speed")
    (kept,) = (tmp_path / "tmp").glob("subnetbench-speed-*.json")
    assert str(kept) in line
    data = json.loads(kept.read_text(), parse_constant=lambda token: pytest.fail(token))
    assert data["rows"] and data["table"] in captured.out  # the table was printed too


def test_speed_json_replaces_non_finite_figures_with_null():
    assert finite_or_null({"a": [1.0, float("inf")], "b": float("nan"), "c": "x"}) == {
        "a": [1.0, None], "b": None, "c": "x"}


# -- the report folder is written as a whole ------------------------------------------------------

def _snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_report_killed_halfway_leaves_the_old_report_whole(results, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert report(["--results", str(results), "--out", str(out)], capsys)[0] == 0
    (out / "figures" / "from_an_older_version.png").write_bytes(b"old")
    before = _snapshot(out)
    build_module = importlib.import_module("subnetbench.reports.build")  # the package's build is a function

    def killed(*args, **kwargs):  # after the figures, before the tables and the HTML
        raise KeyboardInterrupt

    monkeypatch.setattr(build_module, "write_tables", killed)
    assert cli.main(["report", "--results", str(results), "--out", str(out)]) == 130
    assert _snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left
    monkeypatch.undo()
    assert report(["--results", str(results), "--out", str(out)], capsys)[0] == 0
    assert not (out / "figures" / "from_an_older_version.png").exists()  # replaced as a whole
    assert (out / "report.html").is_file() and (out / "tables").is_dir()


def test_a_report_keeps_files_of_the_user_in_its_folder(results, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert report(["--results", str(results), "--out", str(out)], capsys)[0] == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "report.html").is_file()


def test_a_staging_folder_of_a_killed_report_is_removed_by_the_next(results, tmp_path, capsys):
    import subprocess
    import sys

    from subnetbench import files

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    staging = tmp_path / f".out.w{files._host_hash()}-{dead.pid}.abcd1234.staging"
    (staging / "figures").mkdir(parents=True)
    assert report(["--results", str(results), "--out", str(tmp_path / "out")], capsys)[0] == 0
    assert not staging.exists()
