"""The report's figures as matplotlib objects (reports/figures.py), not as pixels: what they promise
in their captions. Intervals, bands and axes stay within [0, 100] %; every variant, and every method
where the figure sets methods side by side, is told apart by more than colour (a marker, a line
style, a hatch, or a tick label that names it); figure 1's kept-fraction panel shows every
configuration at its mean kept fraction."""
from __future__ import annotations

import io
import warnings

import matplotlib
import pytest
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.container import BarContainer
from matplotlib.lines import Line2D

from subnetbench.describe import configuration_label
from subnetbench.reports import figures
from subnetbench.reports.loading import load_results
from subnetbench.reports.tables import group_configs
from tests.report_fixtures import make_result, write_result, write_results


def draw(spec: figures.FigureSpec):
    assert spec.draw is not None, spec.note
    with matplotlib.rc_context(figures.STYLE):
        fig = spec.draw()
    fig.canvas.draw()  # the layout and the tick labels as saved
    return fig


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    """The synthetic grid (every method, the paper's SR/DWR, SC and DA variants), plus digits-conv4
    ASLP runs near 100 % whose seeds spread widely: a mean +- std band would pass 100 %."""
    results = write_results(tmp_path_factory.mktemp("figures") / "results")
    for seed, (final, curve) in enumerate([(0.999, 1.0), (1.0, 0.99), (0.93, 0.55)]):
        result = make_result(protocol="digits-conv4", dataset="digits", network="conv4", method="aslp",
                             seed=seed, final_acc=final, test_acc=final, kept=0.3 + 0.1 * seed)
        result["curves"]["val_acc"] = [min(1.0, curve * v / max(result["curves"]["val_acc"]))
                                       for v in result["curves"]["val_acc"]]
        write_result(results, result)
    loaded = load_results(results)
    assert not loaded.skipped[3:], loaded.skipped  # the fixture's three bad files only
    return group_configs(loaded.completed)


# -- figure 1: accuracy and kept fraction ---------------------------------------------------------
def test_figure_1_intervals_and_axis_stay_within_0_and_100(configs):
    fig = draw(figures.accuracy_vs_kept(configs))
    acc_ax, kept_ax = fig.axes[:2]
    low, high = acc_ax.get_xlim()
    assert 0 <= low and high <= 100.5  # a half-point margin for the markers at 100 %
    segments = [seg for c in acc_ax.collections if isinstance(c, LineCollection) for seg in c.get_segments()]
    assert len(segments) == len(configs)  # one CI bar a configuration
    assert all(0 <= x <= 100 for seg in segments for x in seg[:, 0])
    points = [xy for c in acc_ax.collections if isinstance(c, PathCollection) for xy in c.get_offsets()]
    assert all(0 <= x <= 100 for x, _ in points)


def test_figure_1_has_a_kept_fraction_panel_with_every_configuration_at_its_mean(configs):
    fig = draw(figures.accuracy_vs_kept(configs))
    acc_ax, kept_ax = fig.axes[:2]
    assert kept_ax.get_xlabel() == "kept fraction"
    low, high = kept_ax.get_xlim()
    assert -0.05 <= low <= 0 and 1 <= high <= 1.05
    assert kept_ax.get_shared_y_axes().joined(acc_ax, kept_ax)  # a row is one configuration in both
    # the mean markers (the larger points), one a row, at the configuration's mean kept fraction
    means = sorted((round(float(y)), round(float(x), 6)) for c in kept_ax.collections
                   if isinstance(c, PathCollection) and c.get_sizes().max() > 20 for x, y in c.get_offsets())
    labels = [t.get_text() for t in acc_ax.get_yticklabels()]
    assert len(means) == len(configs) == len(labels)
    by_label = {f"{c.dataset} {c.network} {c.method} {c.variant_label}": c for c in configs}
    ticks = dict(zip((round(float(y)) for y in acc_ax.get_yticks()), labels))
    for y, x in means:
        c = by_label[ticks[y]]
        kept = c.values("kept_fraction")
        assert x == pytest.approx(sum(kept) / len(kept), abs=1e-6)


def test_figure_1_names_every_variant_by_a_marker_of_its_own(configs):
    fig = draw(figures.accuracy_vs_kept(configs))
    handles = fig.legends[0].legend_handles
    variants = {c.variant_label for c in configs}
    markers = {h.get_label(): h.get_marker() for h in handles if h.get_label() in variants}
    assert set(markers) == variants
    # one marker a paper column: DWR is supermask's SR column and shares its marker, nothing else does
    columns = {figures.axes_label(c.variant): c.variant_label for c in configs}
    assert len({markers[v] for v in columns.values()}) == len(columns)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert all(any(label.endswith(" " + v) for v in variants) for label in labels)  # also in words


def test_every_variant_style_differs_in_line_style_and_marker():
    styles = list(figures.VARIANT_STYLES.values())
    assert len({str(ls) for _, ls, _ in styles}) == len(styles)
    assert len({marker for _, _, marker in styles}) == len(styles)


# -- figure 2: validation curves --------------------------------------------------------------------
def test_figure_2_bands_and_axes_stay_within_0_and_100(configs):
    fig = draw(figures.validation_curves(configs))
    panels = [ax for ax in fig.axes if ax.get_visible()]
    conv4 = next(ax for ax in panels if ax.get_title() == "digits conv4: aslp")
    for ax in panels:
        low, high = ax.get_ylim()
        assert 0 <= low and high <= 100.5
        for band in (c for c in ax.collections if isinstance(c, PolyCollection)):
            ys = [y for path in band.get_paths() for _, y in path.vertices]
            assert all(0 <= y <= 100 for y in ys), ax.get_title()
    # the wide band of conv4 really was cut at 100 (without the clip it would pass it)
    top = max(y for c in conv4.collections if isinstance(c, PolyCollection)
              for path in c.get_paths() for _, y in path.vertices)
    assert top == pytest.approx(100)


def test_figure_2_variants_differ_in_line_style_and_marker_in_every_panel(configs):
    fig = draw(figures.validation_curves(configs))
    for ax in (ax for ax in fig.axes if ax.get_visible()):
        lines = [line for line in ax.get_lines() if line.get_label() and not line.get_label().startswith("_")]
        # get_linestyle() says '--' for every custom dash pattern: compare the patterns drawn
        styles = [(str(getattr(line, "_unscaled_dash_pattern", line.get_linestyle())), line.get_marker())
                  for line in lines]
        assert len(set(styles)) == len(styles), ax.get_title()
        assert len({ls for ls, _ in styles}) == len(styles) and len({m for _, m in styles}) == len(styles)


# -- figure 3: kept fraction per layer ------------------------------------------------------------
def test_figure_3_methods_differ_by_hatch_not_colour_alone(configs):
    fig = draw(figures.layer_kept(configs))
    for ax in (ax for ax in fig.axes if ax.get_visible()):
        bars = {c.get_label(): {p.get_hatch() or "" for p in c.patches}
                for c in ax.containers if isinstance(c, BarContainer)}
        assert all(len(hatches) == 1 for hatches in bars.values())  # one hatch a method
        hatches = [h.pop() for h in bars.values()]
        assert len(set(hatches)) == len(hatches), ax.get_title()
        assert all(bars_method in figures.METHOD_HATCHES for bars_method in bars)
    # the cifar10 conv2 panel sets all six methods side by side
    assert max(sum(isinstance(c, BarContainer) for c in ax.containers) for ax in fig.axes) == 6
    legend = {h.get_label(): h.get_hatch() or "" for h in fig.legends[0].legend_handles}
    assert len(set(legend.values())) == len(legend)  # the legend shows each method's hatch
    assert legend["supermask"] == figures.METHOD_HATCHES["supermask"]


def test_figure_3_gives_an_unknown_method_a_hatch_of_its_own():
    hatches = figures._Hatches(["aslp", "supermask", "plugin_a", "plugin_b"])
    values = [hatches(m) for m in ("aslp", "supermask", "plugin_a", "plugin_b")]
    assert len(set(values)) == 4


# -- figure 5: epochs to best ---------------------------------------------------------------------
def test_figure_5_tick_labels_name_the_method_and_variant_of_every_bar(configs):
    fig = draw(figures.epochs_to_best(configs))
    for ax in (ax for ax in fig.axes if ax.get_visible()):
        dataset, network = ax.get_title().split()
        shown = [c for c in configs
                 if (c.dataset, c.network) == (dataset, network) and c.values("epochs_to_best")]
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert len(set(labels)) == len(labels) == len(shown)  # every bar named, no two alike
        assert sorted(labels) == sorted(configuration_label(c.method, c.variant, {}) for c in shown)
        bars = [p for c in ax.containers if isinstance(c, BarContainer) for p in c.patches]
        assert len(bars) == len(labels)
        # SR (or DWR) filled, the others hatched: also without colour
        for bar, label in zip(bars, labels):
            rescaled = " SR" in label or " DWR" in label or "+SR" in label or "+DWR" in label
            assert (bar.get_hatch() in (None, "")) == rescaled, label
        # a rule between two methods
        rules = [line for line in ax.get_lines() if isinstance(line, Line2D) and line.get_linestyle() == ":"]
        methods = [label.split()[0] for label in labels]
        assert len(rules) == sum(a != b for a, b in zip(methods, methods[1:]))


def test_figure_5_tells_apart_two_bars_of_one_method_and_variant_by_their_options(tmp_path):
    """Two aslp configurations without a variant, one with a long recipe: the labels differ, and
    are wrapped so that the axes keep their room."""
    for seed in (0, 1):
        write_result(tmp_path, make_result(protocol="digits-conv2", dataset="digits", network="conv2",
                                           method="aslp", seed=seed))
        write_result(tmp_path, make_result(protocol="digits-conv2", dataset="digits", network="conv2",
                                           method="aslp", seed=seed, recipe={
                                               "batch_size": 128, "epochs": 100, "schedule": "cosine"}))
    configs = group_configs(load_results(tmp_path).completed)
    labels = figures.bar_labels(configs)
    assert len(set(labels)) == 2 and all(label.startswith("aslp") for label in labels)
    assert any("schedule=cosine" in label.replace("\n", " ") for label in labels)
    assert all(len(line) <= 28 for label in labels for line in label.splitlines())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = draw(figures.epochs_to_best(configs))
        fig.savefig(io.BytesIO(), format="png")
    assert not [w for w in caught if "constrained_layout not applied" in str(w.message)]
