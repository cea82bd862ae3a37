"""The rendered report, opened in headless Chromium (Debian's chromium + chromium-driver, via Selenium).

Checks the page as a reader gets it: the results tables have the expected rows, every image loaded,
the console has no errors, markup in names is shown as text and never runs, and a screenshot is
saved to ``test-artifacts/report.png``. Skipped, with the reason, when Chromium, its driver or
Selenium is missing, unless SUBNETBENCH_REQUIRE_BROWSER is set (as in .ci/run): then it fails.

Regenerate the README screenshot with ``python -m tests.test_report_browser [RESULTS_DIR]``.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from subnetbench import reports
from subnetbench.record_reading import READABLE_VERSIONS
from tests.report_fixtures import (
    XSS_METHOD,
    XSS_OPTION,
    make_result,
    write_hostile,
    write_result,
    write_results,
)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("SUBNETBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = (os.environ.get("SUBNETBENCH_CHROMEDRIVER") or shutil.which("chromedriver")
                or "/usr/bin/chromedriver")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1"]
WIDTH = 1280


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return (f"Chromium not found at {CHROMIUM} (install the Debian packages chromium and "
                "chromium-driver, or set SUBNETBENCH_CHROMIUM)")
    if not Path(CHROMEDRIVER).exists():
        return (f"chromedriver not found at {CHROMEDRIVER} (install the Debian package chromium-driver, or "
                "set SUBNETBENCH_CHROMEDRIVER)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    return None


def launch(user_data_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in CHROMIUM_ARGS + [f"--user-data-dir={user_data_dir}"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager never tries to download a browser or a driver.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_window_size(WIDTH, 1000)
    driver.set_page_load_timeout(60)
    return driver


def screenshot(driver, path: Path, height: int | None = None) -> Path:
    """A PNG of the whole page (or its top ``height`` pixels), through the DevTools protocol."""
    full = int(driver.execute_script("return document.documentElement.scrollHeight"))
    clip = {"x": 0, "y": 0, "width": WIDTH, "height": min(full, height or full), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                             "clip": clip})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def expected_rows(results_dir: Path) -> dict[str, set[str]]:
    """Family -> row ids, read straight from the completed result files (independently of reports)."""
    rows: dict[str, set[str]] = {}
    for path in (results_dir / "runs").glob("*.json"):
        try:
            data = json.loads(path.read_text())
            if data.get("status") != "completed" or data.get("format_version") not in READABLE_VERSIONS:
                continue
            v = data["variant"]
            rows.setdefault(data["family"], set()).add(
                f"{data['dataset']}|{data['network']}|DA={int(v['data_augmentation'])}|"
                f"SC={int(v['signed_constant'])}|SR={int(v['smart_rescale'])}")
            float(data["metrics"]["final_test_acc"])
        except (ValueError, KeyError, TypeError):
            continue  # a corrupt file: the report lists it as skipped, no row expected
    return rows


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    reason = _missing()
    if reason:
        if os.environ.get("SUBNETBENCH_REQUIRE_BROWSER"):  # CI: the browser test must run
            pytest.fail(f"SUBNETBENCH_REQUIRE_BROWSER is set but {reason}", pytrace=False)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("browser")
    results_dir = write_results(root / "results")
    write_hostile(results_dir)
    write_result(results_dir, make_result(  # a run that never left chance level: 2 epochs of Conv4
        protocol="digits-conv4", dataset="digits", network="conv4", method="aslp", seed=0,
        recipe={"epochs": 2}, final_acc=0.1, test_acc=0.1, epochs_run=2, curve_speed=1e9))
    html = reports.build_report(results_dir, root / "out", title="subnetbench report (browser test)")
    driver = launch(str(root / "chromium-profile"))
    try:
        driver.get(html.as_uri())
        driver.execute_script("return document.fonts ? document.fonts.ready : null")
        yield driver, results_dir
    finally:
        driver.quit()


def test_tables_have_the_expected_rows(page):
    driver, results_dir = page
    expected = expected_rows(results_dir)
    assert expected, "the fixture wrote no completed run"
    found: dict[str, set[str]] = driver.execute_script("""
        const out = {};
        for (const table of document.querySelectorAll('table.results')) {
            out[table.dataset.family] = Array.from(table.querySelectorAll('tbody tr'), tr => tr.dataset.row);
        }
        return out;""")
    assert {family: set(rows) for family, rows in found.items()} == expected
    headers = driver.execute_script(
        "return Array.from(document.querySelectorAll('table.results th.method'), th => th.textContent)")
    assert {"aslp", "supermask", "edge_popup", "random_pruning", "magnitude_pruning", "dense"} <= set(headers)
    verdicts = driver.execute_script(
        "return Array.from(document.querySelectorAll('table.results .badge'), b => b.textContent)")
    assert "reproduced" in verdicts and "no published value" in verdicts
    claims = driver.execute_script(
        "return Array.from(document.querySelectorAll('#claims-summary tbody tr'), tr => tr.dataset.claim)")
    assert claims == ["1", "2", "3", "4", "5"]


PUBLISHED_ROWS = """
    return Array.from(document.querySelectorAll('#published-values tr[data-entry]'),
                      tr => ({status: tr.dataset.status, shown: tr.getClientRects().length > 0,
                              height: tr.getBoundingClientRect().height,
                              dataset: tr.closest('tbody').dataset.dataset,
                              command: tr.querySelector('pre.command') !== null,
                              folded: Array.from(tr.querySelectorAll('details'), d => !d.open)}));"""


def test_the_reproduction_is_visible_at_the_top_and_long_provenance_is_collapsed(page):
    """What a researcher sees without scrolling through provenance: every published value with its
    status (the fixture reproduces some, not others), the commands of those not run; the runs and
    configurations tables are folded away, the provenance every run shares is said once."""
    driver, _ = page
    rows = driver.execute_script(PUBLISHED_ROWS)
    assert len(rows) == 33 and all(row["shown"] for row in rows)
    statuses = {row["status"] for row in rows}
    assert {"reproduced", "not run here"} <= statuses
    assert all(row["command"] == (row["status"] == "not run here") for row in rows)
    order = driver.execute_script(
        "return Array.from(document.querySelectorAll('section'), s => s.id)")
    # a published value was run: its verdict is the point, before the tables
    assert order.index("reproduction") < order.index("results") < order.index("claims")
    folded = driver.execute_script(
        "return ['runs-used', 'configs'].map(id => !document.getElementById(id).closest('details').open)")
    inconsistent = driver.execute_script("return document.getElementById('inconsistent') !== null")
    assert folded == [True, not inconsistent]  # the configurations open only to show a warning
    assert driver.execute_script("return document.getElementById('shared-provenance') !== null")
    detectable = driver.execute_script(
        "return Array.from(document.querySelectorAll('table.comparisons th'), th => th.textContent)")
    assert "Detectable" in detectable and "Seeds to decide" in detectable


def test_a_run_at_chance_level_is_flagged_at_the_top_with_its_likely_cause(page):
    driver, _ = page
    banner = driver.execute_script("""
        const b = document.getElementById('near-chance');
        if (!b) return null;
        const r = b.getBoundingClientRect();
        return {shown: b.getClientRects().length > 0, top: r.top + window.scrollY, text: b.textContent,
                inHeader: b.closest('header') !== null,
                summary: document.getElementById('summary').getBoundingClientRect().top + window.scrollY};""")
    assert banner is not None and banner["shown"] and banner["inHeader"]
    assert banner["top"] < banner["summary"]  # above the claims: seen before any number is read
    assert "1 run(s) ended near chance level" in " ".join(banner["text"].split())
    assert "digits-conv4.aslp" in banner["text"] and "raise epochs" in banner["text"]
    cell = driver.execute_script(
        "return Array.from(document.querySelectorAll('table.results .warnline.chance'), e => e.textContent)")
    assert any("1 of 1 run(s) near chance level" in text for text in cell)


def test_every_image_loaded(page):
    driver, _ = page
    images = driver.execute_script("""
        return Array.from(document.images, img => ({src: img.src.slice(0, 30), complete: img.complete,
                                                    width: img.naturalWidth, height: img.naturalHeight}));""")
    assert len(images) == 5
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        assert image["src"].startswith("data:image/png;base64,")


def test_no_console_errors(page):
    driver, _ = page
    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []


def test_markup_is_shown_as_text_and_never_runs(page):
    driver, _ = page
    count = "return document.querySelectorAll(arguments[0]).length"
    assert driver.execute_script(count, "script") == 0
    assert driver.execute_script(count, "[onerror], [onload], [onclick], iframe, object, embed") == 0
    body = driver.execute_script("return document.body.textContent")
    assert XSS_METHOD in body and XSS_OPTION in body
    headers = driver.execute_script(
        "return Array.from(document.querySelectorAll('table.results th.method'), th => th.textContent)")
    assert XSS_METHOD in headers
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - an alert() would have opened a dialog


def test_screenshot_is_saved(page):
    driver, _ = page
    path = screenshot(driver, ARTIFACTS / "report.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000


# -- the same page from real runs of the engine on digits ---------------------------------------------
REAL_METHODS = ("aslp", "supermask", "edge_popup", "random_pruning", "magnitude_pruning", "dense")


def write_real_digits_results(results_dir: Path) -> Path:
    """Real (short) runs of the engine: every method on digits-conv2, and ASLP with smart rescale
    and with signed constants, two seeds each, two epochs (about a minute on two cores)."""
    import torch

    from subnetbench.benchmark.config import make_config
    from subnetbench.benchmark.runner import execute

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the CLI's runs: one thread is fastest for these small networks
    cells = [(REAL_METHODS, {}), (("aslp",), {"method.smart_rescale": "true"}),
             (("aslp",), {"init": "signed_constant"})]
    for methods_, overrides in cells:
        for method in methods_:
            for seed in (0, 1):
                config = make_config("digits-conv2", method, seed,
                                     {"epochs": "2", "patience": "0", **overrides}, [method])
                execute(config, results_dir, device="cpu", progress=False)
    torch.set_num_threads(threads)
    return results_dir


@pytest.fixture(scope="module")
def real_page(tmp_path_factory):
    reason = _missing()
    if reason:
        if os.environ.get("SUBNETBENCH_REQUIRE_BROWSER"):
            pytest.fail(f"SUBNETBENCH_REQUIRE_BROWSER is set but {reason}", pytrace=False)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("browser-real")
    results_dir = write_real_digits_results(root / "results")
    html = reports.build_report(results_dir, root / "out", title="subnetbench report (digits runs)")
    driver = launch(str(root / "chromium-profile"))
    try:
        driver.get(html.as_uri())
        yield driver, results_dir
    finally:
        driver.quit()


def test_real_digits_report_in_the_browser(real_page):
    driver, results_dir = real_page
    found = driver.execute_script("""
        const out = {};
        for (const table of document.querySelectorAll('table.results')) {
            out[table.dataset.family] = Array.from(table.querySelectorAll('tbody tr'), tr => tr.dataset.row);
        }
        return out;""")
    assert {family: set(rows) for family, rows in found.items()} == expected_rows(results_dir)
    headers = driver.execute_script(
        "return Array.from(document.querySelectorAll('table.results th.method'), th => th.textContent)")
    assert set(REAL_METHODS) <= set(headers)
    verdicts = driver.execute_script(
        "return Array.from(document.querySelectorAll('table.results .badge'), b => b.textContent)")
    assert verdicts and set(verdicts) == {"no published value"}  # digits has none, never a guess
    images = driver.execute_script(
        "return Array.from(document.images, img => img.complete && img.naturalWidth > 0)")
    assert len(images) == 5 and all(images)
    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    path = screenshot(driver, ARTIFACTS / "report-digits.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


HEADLINE = """
    return Array.from(document.querySelectorAll('#claims-summary tbody tr'), tr => {
        const why = tr.querySelector('td.reason');
        const scope = why.querySelector('[data-scope]');
        const note = why.querySelector('[data-off-paper]');
        const badge = tr.querySelector('.badge');
        const first = why.firstChild ? document.createRange() : null;
        if (first) { first.selectNodeContents(why.firstChild); }
        return {claim: tr.dataset.claim, verdict: badge.textContent,
                badgeBg: getComputedStyle(badge).backgroundColor,
                reason: why.firstChild ? why.firstChild.textContent.trim() : '',
                scope: scope ? scope.textContent : null,
                scopeShown: scope ? scope.getClientRects().length > 0 : false,
                scopeTop: scope ? scope.getBoundingClientRect().top : 0,
                reasonBottom: first ? first.getBoundingClientRect().bottom : 0,
                note: note ? note.textContent : null};
    });"""


def test_real_digits_headline_names_each_verdicts_scope_and_says_when_seeds_are_too_few(real_page):
    """The claims at a glance, as a reader sees them: under each verdict's reason, on a line of its
    own, what it rests on (digits Conv2, seeds 0 and 1, the metric) and that the paper's claims
    are about CIFAR, with the command that would test them there; with two seeds, claims the
    seeds cannot decide say "too few seeds" and how many would decide."""
    driver, _ = real_page
    rows = driver.execute_script(HEADLINE)
    assert [r["claim"] for r in rows] == ["1", "2", "3", "4", "5"]
    for row in rows:
        assert row["scopeShown"] and row["scope"].startswith("Scope: "), row
        assert row["scopeTop"] >= row["reasonBottom"] - 1, row  # below the reason: its own line
        if row["claim"] != "4":  # claim 4 rests on a timing study, which these results lack
            assert "digits conv2 (protocol digits-conv2) · seeds 0, 1 (n=2) · metric: " in row["scope"]
            assert "The paper's claims are about CIFAR-10 and CIFAR-100" in row["note"]
            assert "subnetbench run --grid cifar10 --seeds 0,1,2,3,4" in row["note"]
    few = [r for r in rows if r["verdict"] == "too few seeds"]
    assert few, rows
    for row in few:
        assert "seeds would decide at the observed spread" in row["reason"], row
        assert row["badgeBg"] not in ("rgba(0, 0, 0, 0)", "transparent")  # styled as a warning


def test_real_digits_report_puts_its_own_results_first_and_every_published_value_compactly(real_page):
    """Digits has no published value: the page says so in one line near the top, shows the user's
    own tables before the list of published values, and lists all 33 one line each (commands
    folded, sources once under the table), grouped by dataset with the command of its grid."""
    driver, _ = real_page
    order = driver.execute_script("return Array.from(document.querySelectorAll('section'), s => s.id)")
    assert order.index("summary") < order.index("results") < order.index("reproduction")
    glance = driver.execute_script("""
        const g = document.getElementById('reproduction-glance');
        return g && {text: g.textContent, bottom: g.getBoundingClientRect().bottom + window.scrollY};""")
    assert glance and "none of the 33 was run here" in " ".join(glance["text"].split())
    assert glance["bottom"] < 1400  # the claims and the reproduction's status: within the first screens
    summary = driver.execute_script("return document.getElementById('reproduction-summary').textContent")
    assert "None of the 33 published values was run here" in " ".join(summary.split())
    rows = driver.execute_script(PUBLISHED_ROWS)
    assert len(rows) == 33 and all(row["shown"] and row["status"] == "not run here" for row in rows)
    assert all(row["command"] and row["folded"] == [True] for row in rows)
    assert max(row["height"] for row in rows) < 40  # one line a value
    assert {row["dataset"] for row in rows} == {"cifar10", "cifar100"}
    table = driver.execute_script("""
        const t = document.getElementById('published-values');
        return {height: t.getBoundingClientRect().height,
                grids: Array.from(t.querySelectorAll('code.grid-command'), c => c.textContent),
                sources: document.querySelectorAll('#published-sources li').length};""")
    assert table["height"] < 33 * 40 + 200
    assert table["grids"] == [
        f"subnetbench run --grid {d} --seeds 0,1,2,3,4 --results results/{d} --report report/{d}"
        for d in ("cifar10", "cifar100")]
    assert 2 <= table["sources"] < 33  # each source and note once, not once a row


def main(argv: list[str] | None = None) -> int:
    """Regenerate the README screenshot (the top of the report) from RESULTS_DIR, or from the fixture.

    ``python -m tests.test_report_browser [RESULTS_DIR] [--out docs/report.png] [--height 2100]``
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.test_report_browser")
    parser.add_argument("results", nargs="?", help="results directory (default: the synthetic fixture)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "report.png"))
    parser.add_argument("--height", type=int, default=2100, help="pixels from the top; 0: whole page")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    reason = _missing()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        results_dir = Path(args.results) if args.results else write_results(Path(tmp) / "results")
        html = reports.build_report(results_dir, Path(tmp) / "out", title=args.title)
        driver = launch(str(Path(tmp) / "profile"))
        try:
            driver.get(html.as_uri())
            screenshot(driver, Path(args.out), args.height or None)
        finally:
            driver.quit()
    print(f"screenshot written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
