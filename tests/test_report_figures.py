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
def test_figure_3_draws_one_bar_a_configuration_never_pooling_variants(configs):
    fig = draw(figures.layer_kept(configs))
    panels = [ax for ax in fig.axes if ax.get_visible()]
    for ax in panels:
        dataset, network = ax.get_title().split()
        shown = [c for c in configs if (c.dataset, c.network) == (dataset, network)
                 and any(r.layer_kept_fraction for r in c.runs)]
        bars = [c for c in ax.containers if isinstance(c, BarContainer)]
        assert len(bars) == len(shown)  # one set of bars a configuration: SR, SC, DA apart
        looks = [(tuple(b.patches[0].get_facecolor()), b.patches[0].get_hatch() or "") for b in bars]
        assert len(set(looks)) == len(looks), ax.get_title()  # no two configurations alike
        by_method: dict[str, set] = {}
        for c, (_, hatch) in zip(sorted(shown, key=lambda c: (figures.method_sort_key(c.method),
                                                               c.variant_label != "none", c.variant_label,
                                                               c.config_hash)), looks):
            by_method.setdefault(c.method, set()).add((c.variant_label, hatch))
        for method, pairs in by_method.items():  # a method's variants differ by hatch, not colour
            assert len({h for _, h in pairs}) == len({v for v, _ in pairs}), method
        # every run's value is a dot drawn above its bar
        dots = [c for c in ax.collections if isinstance(c, PathCollection)]
        assert dots and min(d.get_zorder() for d in dots) > max(b.patches[0].get_zorder() for b in bars)
        layers = len(ax.get_xticks())
        assert sum(len(d.get_offsets()) for d in dots) == sum(
            len([r for r in c.runs if r.layer_kept_fraction]) for c in shown) * layers
    assert len(panels) > 1 and all(ax.get_ylim() == panels[0].get_ylim() for ax in panels)
    legend = [h.get_label() for h in fig.legends[0].legend_handles]
    assert "supermask DWR" in legend and "aslp SR" in legend and "aslp" in legend


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


# -- what every figure promises ---------------------------------------------------------------------
def _panels(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


@pytest.mark.parametrize("make", [figures.validation_curves, figures.keep_probabilities,
                                  figures.epochs_to_best])
def test_panels_that_compare_share_their_axes(configs, make):
    panels = _panels(draw(make(configs)))
    assert len(panels) > 1
    assert all(panels[0].get_shared_y_axes().joined(panels[0], ax) for ax in panels)
    assert all(ax.get_ylim() == panels[0].get_ylim() for ax in panels)


def test_epoch_axes_have_integer_ticks_even_for_a_two_epoch_run(tmp_path):
    for seed in (0, 1):
        result = make_result(protocol="digits-conv2", dataset="digits", network="conv2", method="aslp",
                             seed=seed, recipe={"epochs": 2})
        for key in ("epoch", "round", "train_loss", "train_acc", "val_acc"):
            result["curves"][key] = result["curves"][key][:2]
        result["metrics"]["epochs_to_best"] = 1 + seed
        write_result(tmp_path, result)
    configs = group_configs(load_results(tmp_path).completed)
    curves = _panels(draw(figures.validation_curves(configs)))[0]
    ticks = [t for t in curves.get_xticks() if curves.get_xlim()[0] <= t <= curves.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    best = _panels(draw(figures.epochs_to_best(configs)))[0]
    assert all(float(t).is_integer() for t in best.get_yticks())


def test_figure_1_replaces_a_kept_fraction_axis_that_carries_no_information(tmp_path):
    """Every configuration keeping 50 %: the right panel shows the epochs to the best validation
    accuracy instead, and the caption says why."""
    for method in ("edge_popup", "random_pruning"):
        for seed in (0, 1, 2):
            write_result(tmp_path, make_result(protocol="digits-conv2", dataset="digits", network="conv2",
                                               method=method, seed=seed, kept=0.5))
    configs = group_configs(load_results(tmp_path).completed)
    spec = figures.accuracy_vs_kept(configs)
    assert "same fraction of prunable weights (50.0%)" in spec.caption
    fig = draw(spec)
    assert fig.axes[1].get_xlabel() == "epochs to best validation"
    # the single runs are drawn above the interval lines and the means: none hides
    acc_ax = fig.axes[0]
    lines = [c for c in acc_ax.collections if isinstance(c, LineCollection)]
    dots = [c for c in acc_ax.collections if isinstance(c, PathCollection) and c.get_sizes().max() < 20]
    means = [c for c in acc_ax.collections if isinstance(c, PathCollection) and c.get_sizes().max() > 20]
    assert min(d.get_zorder() for d in dots) > max(c.get_zorder() for c in lines + means)
    assert sum(len(d.get_offsets()) for d in dots) == 6
