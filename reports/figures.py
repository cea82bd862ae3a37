"""The report's figures, drawn with matplotlib's object API (``Figure``; no pyplot state, Agg for PNG).

Each figure function takes the configurations and returns a :class:`FigureSpec` with a drawing
function, or a note when there is nothing to draw. :func:`render_figures` saves every figure as PNG
and SVG (atomically) and keeps the PNG bytes for embedding in the HTML.
"""
from __future__ import annotations

import base64
import io
import math
import textwrap
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.patches
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from subnetbench.describe import axes_label, configuration_label
from subnetbench.files import atomic_write_bytes
from subnetbench.reports.loading import VARIANT_AXES
from subnetbench.reports.stats import summarise
from subnetbench.reports.tables import (
    MASK_ONLY,
    Config,
    dataset_sort_key,
    method_sort_key,
    natural_key,
)

MAX_PANELS = 12
PNG_DPI = 130
METHOD_COLOURS = {
    "aslp": "#1f5fa8", "supermask": "#d1701f", "edge_popup": "#2e8b57",
    "random_pruning": "#8c564b", "magnitude_pruning": "#9467bd", "dense": "#555555",
}
EXTRA_COLOURS = ["#c0392b", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#393b79"]
# Every variant (DA, SC, SR) has its own colour, line style and marker: told apart without colour.
VARIANT_STYLES = {
    "none": ("#4c72b0", "-", "o"), "SR": ("#c44e52", "--", "s"), "SC": ("#55a868", "-.", "^"),
    "SC+SR": ("#8172b3", ":", "D"), "DA": ("#937860", (0, (5, 1)), "v"),
    "DA+SR": ("#da8bc3", (0, (3, 1, 1, 1, 1, 1)), "P"), "DA+SC": ("#8c8c8c", (0, (1, 1)), "X"),
    "DA+SC+SR": ("#ccb974", (0, (6, 2, 1, 2)), "*"),
}
HATCH_INK = "#333333"  # a bar's edge, and so its hatch: dark on every method's colour
STYLE = {
    "font.size": 8.5, "axes.titlesize": 9, "axes.labelsize": 8.5, "legend.fontsize": 7,
    "xtick.labelsize": 7.5, "ytick.labelsize": 7.5, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.25, "grid.linewidth": 0.6,
    "svg.hashsalt": "subnetbench", "svg.fonttype": "path", "font.family": "DejaVu Sans",
}


def text(value: object) -> str:
    """A label safe for matplotlib: '$' would start mathtext (and can raise on odd input)."""
    return str(value).replace("$", r"\$")


def variant_style(variant: dict[str, bool]) -> tuple[str, Any, str]:
    """(colour, line style, marker) of a variant: of its paper column (supermask's DWR is drawn as
    the SR column it is; its label says DWR)."""
    return VARIANT_STYLES[axes_label(variant)]


def variant_marker(variant: dict[str, bool]) -> str:
    return variant_style(variant)[2]


class _Colours:
    def __init__(self, methods: list[str]):
        extra = iter(EXTRA_COLOURS * (1 + len(methods) // len(EXTRA_COLOURS)))
        self.map = {m: METHOD_COLOURS.get(m) or next(extra)
                    for m in sorted(set(methods), key=method_sort_key)}

    def __call__(self, method: str) -> str:
        return self.map.get(method, "#333333")


@dataclass
class FigureSpec:
    name: str
    title: str
    caption: str
    draw: Callable[[], Figure] | None = None
    note: str | None = None


@dataclass
class RenderedFigure:
    name: str
    title: str
    caption: str
    number: int
    note: str | None = None
    data_uri: str | None = None
    png: str | None = None  # file names relative to the output directory
    svg: str | None = None
    width: int | None = None
    height: int | None = None


def _grid(n: int, cols: int = 3, w: float = 3.3, h: float = 2.6,
          share: bool | str = True) -> tuple[Figure, list]:
    """A grid of n panels; panels that compare share their axes (``share``: True, "x" or "y")."""
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(w * cols + 0.4, h * rows + 0.7), layout="constrained")
    sharex = share is True or share == "x"
    sharey = share is True or share == "y"
    axes = fig.subplots(rows, cols, squeeze=False, sharex=sharex, sharey=sharey).ravel().tolist()
    for ax in axes:  # shared axes hide inner tick labels; each panel keeps its own, for reading
        ax.tick_params(labelbottom=True, labelleft=True)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _legend_columns(fig: Figure, handles: list) -> int:
    """As many legend columns as fit the figure's width (about 1.5 inches per entry)."""
    longest = max((len(h.get_label()) for h in handles), default=8)
    per_entry = 0.45 + 0.075 * longest
    return max(1, min(len(handles), int(fig.get_figwidth() / per_entry)))


def _panels(groups: dict, base_caption: str, sort_key: Callable) -> tuple[list, list, str]:
    """The panel keys in order, the first MAX_PANELS of them (drawn), and the caption saying so."""
    keys = sorted(groups, key=sort_key)
    shown = keys[:MAX_PANELS]
    omitted = (f" Only the first {len(shown)} of {len(keys)} panels are drawn."
               if len(keys) > len(shown) else "")
    return keys, shown, base_caption + omitted


# ---------------------------------------------------------------------------------------------------
def _kept_is_informative(configs: list[Config]) -> bool:
    """Whether the kept fractions differ at all (every method keeping 50% makes an empty axis)."""
    kept = [v for c in configs for v in c.values("kept_fraction")]
    return bool(kept) and max(kept) - min(kept) > 1e-6


def _dots_and_mean(ax, values: np.ndarray, yi: float, col: str, marker: str) -> None:
    """The mean as a large hollow marker, single runs as dark dots drawn above it and above any
    interval line, so that no run hides."""
    ax.scatter([values.mean()], [yi], s=44, facecolors="white", edgecolors=col, marker=marker,
               linewidths=1.3, zorder=3)
    ax.scatter(values, np.full(values.size, yi), s=11, color=col, edgecolors="#222", linewidths=0.4,
               zorder=4)


def _accuracy_caption(usable: list[Config], informative: bool) -> str:
    kept_all = [v for c in usable for v in c.values("kept_fraction")]
    right = ("the fraction of prunable weights kept, mean (hollow) with single runs (dots)" if informative
             else "epochs to the best validation accuracy, mean (hollow) with single runs (dots): every "
                  f"configuration keeps the same fraction of prunable weights "
                  f"({100 * kept_all[0]:.1f}%), so that axis would carry no information"
             if kept_all else "epochs to the best validation accuracy")
    return ("One row per configuration, grouped by dataset and network. Left: test accuracy of the "
            "extracted subnetwork (final_test_acc), mean over seeds (hollow marker) with its 95% "
            "Student-t CI (a line clipped to [0, 100]) and single runs (dots, drawn above both). "
            f"Right: {right}. Colour: method; marker: variant (none, SR, SC, DA and their "
            "combinations; also in the row label).")


def accuracy_vs_kept(configs: list[Config]) -> FigureSpec:
    name, title = "accuracy-vs-kept", "Test accuracy and kept fraction of every configuration"
    usable = [c for c in configs if c.values("final_test_acc")]
    informative = _kept_is_informative(usable)
    caption = _accuracy_caption(usable, informative)
    if not usable:
        return FigureSpec(name, title, caption, note="No completed runs: nothing to plot.")
    rows = sorted(usable, key=lambda c: (dataset_sort_key(c.dataset), natural_key(c.network),
                                         method_sort_key(c.method), c.variant_label, c.config_hash))
    colours = _Colours([c.method for c in rows])

    def draw() -> Figure:
        height = 1.0 + 0.24 * len(rows)
        fig = Figure(figsize=(9.6, height), layout="constrained")
        acc_ax, right_ax = fig.subplots(1, 2, sharey=True, width_ratios=(3, 1.3))
        y = np.arange(len(rows))[::-1]
        low_acc = 100.0
        for yi, c in zip(y, rows):
            col, marker = colours(c.method), variant_marker(c.variant)
            acc = np.array(c.values("final_test_acc", 100.0))
            summary = summarise(acc)
            low, high = summary.ci if summary.ci else (summary.mean, summary.mean)
            low, high = max(0.0, low), min(100.0, high)
            low_acc = min(low_acc, float(acc.min()))
            acc_ax.hlines(yi, low, high, color=col, lw=1.6, zorder=2)
            _dots_and_mean(acc_ax, acc, yi, col, marker)
            other = np.array(c.values("kept_fraction") if informative else c.values("epochs_to_best"))
            if other.size:
                _dots_and_mean(right_ax, other, yi, col, marker)
        labels = [text(f"{c.dataset} {c.network} {c.method} {c.variant_label}") for c in rows]
        acc_ax.set_yticks(y, labels, fontsize=7)
        acc_ax.set_xlim(max(0.0, np.floor(low_acc / 5) * 5 - 1), 100.5)
        acc_ax.set_xlabel("test accuracy, extracted (%)")
        if informative:
            right_ax.set_xlim(-0.02, 1.02)
            right_ax.set_xlabel("kept fraction")
        else:
            right_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            right_ax.set_xlabel("epochs to best validation")
        for ax in (acc_ax, right_ax):
            ax.set_ylim(-0.7, len(rows) - 0.3)
            ax.grid(axis="y", alpha=0.0)
        for boundary in _group_boundaries(rows):
            for ax in (acc_ax, right_ax):
                ax.axhline(y[boundary] + 0.5, color="#bbb", lw=0.6)
        handles = [Line2D([], [], color=colours(m), marker="o", ls="", label=text(m)) for m in colours.map]
        seen = sorted({c.variant_label for c in rows}, key=lambda v: (len(v), v))
        markers = {c.variant_label: variant_marker(c.variant) for c in rows}
        handles += [Line2D([], [], color="#444", marker=markers[v], ls="", markerfacecolor="white",
                           label=text(v)) for v in seen]
        fig.legend(handles=handles, loc="outside right upper", frameon=False)
        return fig

    return FigureSpec(name, title, caption, draw)


def _group_boundaries(rows: list[Config]) -> list[int]:
    """Indices of the rows that start a new (dataset, network) group, but the first."""
    return [i for i in range(1, len(rows))
            if (rows[i].dataset, rows[i].network) != (rows[i - 1].dataset, rows[i - 1].network)]


def validation_curves(configs: list[Config]) -> FigureSpec:
    name, title = "validation-curves", "Validation accuracy per epoch"
    base_caption = ("Validation accuracy per epoch of the mask-only methods: mean over seeds (line) and "
                    "mean ± one standard deviation (band, clipped to [0, 100]), one panel per dataset, "
                    "network and method. Each variant (none, SR: smart rescale or supermask's dynamic "
                    "weight rescaling, SC, DA and combinations) has its own colour, line style and marker, "
                    "the same in every panel. Runs stop at different epochs under early stopping; later "
                    "epochs average the runs still going.")
    groups: dict[tuple, list[Config]] = defaultdict(list)
    for c in configs:
        if c.family == MASK_ONLY and any(r.curves and r.curves.val_acc for r in c.runs):
            groups[(c.dataset, c.network, c.method)].append(c)
    if not groups:
        return FigureSpec(name, title, base_caption, note="No run of a mask-only method has a validation "
                                                          "curve (curves.val_acc): nothing to plot.")
    keys, shown, caption = _panels(groups, base_caption, lambda k: (
        dataset_sort_key(k[0]), natural_key(k[1]), method_sort_key(k[2])))

    def draw() -> Figure:
        fig, axes = _grid(len(shown))
        for ax, key in zip(axes, shown):
            for c in sorted(groups[key], key=lambda c: (c.variant_label, c.config_hash)):
                per_epoch: dict[int, list[float]] = defaultdict(list)
                for r in c.runs:
                    if not r.curves:
                        continue
                    for e, v in zip(r.curves.epoch, r.curves.val_acc):
                        if v is not None:
                            per_epoch[e].append(100.0 * v)
                if not per_epoch:
                    continue
                epochs = np.array(sorted(per_epoch))
                mean = np.array([np.mean(per_epoch[e]) for e in epochs])
                std = np.array([np.std(per_epoch[e], ddof=1) if len(per_epoch[e]) > 1 else 0.0
                                for e in epochs])
                col, ls, marker = variant_style(c.variant)
                label = f"{c.variant_label} (n={len(c.runs)})"
                ax.plot(epochs, mean, ls=ls, color=col, lw=1.2, marker=marker, ms=3.5,
                        markevery=max(1, len(epochs) // 8), label=text(label))
                ax.fill_between(epochs, np.clip(mean - std, 0, 100), np.clip(mean + std, 0, 100),
                                color=col, alpha=0.15, lw=0)
            ax.set_title(text(f"{key[0]} {key[1]}: {key[2]}"))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_ylabel("validation accuracy (%)")
            low, high = ax.get_ylim()
            ax.set_ylim(max(low, 0.0), min(high, 100.5))
            ax.legend(frameon=True, framealpha=0.85, edgecolor="none", loc="best", fontsize=6.5)
        return fig

    return FigureSpec(name, title, caption, draw)


VARIANT_HATCHES = {"none": "", "SR": "////", "SC": "\\\\\\\\", "SC+SR": "xx", "DA": "--", "DA+SR": "++",
                   "DA+SC": "||", "DA+SC+SR": "oo"}


def layer_kept(configs: list[Config]) -> FigureSpec:
    name, title = "layer-kept-fraction", "Kept fraction per layer"
    base_caption = ("Fraction of weights kept in each prunable layer of the extracted subnetwork, one bar "
                    "per configuration (method and variant: variants are never pooled): mean over its "
                    "seeds, single runs as dots above the bar. Colour: method; hatch: variant (none "
                    "plain, SR hatched; legend). One panel per dataset and network, on the same axes.")
    groups: dict[tuple, list[Config]] = defaultdict(list)
    for c in configs:
        if any(r.layer_kept_fraction for r in c.runs):
            groups[(c.dataset, c.network)].append(c)
    if not groups:
        return FigureSpec(name, title, base_caption, note="No run has per-layer kept fractions "
                                                          "(layer_kept_fraction): nothing to plot.")
    keys, shown, caption = _panels(groups, base_caption, lambda k: (
        dataset_sort_key(k[0]), natural_key(k[1])))
    colours = _Colours([c.method for k in keys for c in groups[k]])

    def draw() -> Figure:
        fig, axes = _grid(len(shown), cols=2, w=4.6, h=2.9, share="y")
        legend: dict[str, tuple[str, str]] = {}
        for ax, key in zip(axes, shown):
            items = sorted(groups[key], key=lambda c: (method_sort_key(c.method), c.variant_label != "none",
                                                       c.variant_label, c.config_hash))
            layers: list[str] = []
            for c in items:
                for r in c.runs:
                    layers += [layer for layer in (r.layer_kept_fraction or {}) if layer not in layers]
            width = 0.8 / len(items)
            x = np.arange(len(layers))
            for i, (c, label) in enumerate(zip(items, bar_labels(items))):
                maps = [r.layer_kept_fraction for r in c.runs if r.layer_kept_fraction]
                values = [[m[layer] for m in maps if layer in m] for layer in layers]
                xi = x - 0.4 + width * (i + 0.5)
                hatch = VARIANT_HATCHES.get(axes_label(c.variant), "")
                means = [np.mean(v) if v else np.nan for v in values]
                ax.bar(xi, means, width, color=colours(c.method), hatch=hatch, edgecolor=HATCH_INK,
                       linewidth=0.4, label=text(label), zorder=2)
                for xj, v in zip(xi, values):
                    ax.scatter(np.full(len(v), xj), v, s=7, color="#222", zorder=4, linewidths=0)
                legend.setdefault(label, (colours(c.method), hatch))
            ax.set_xticks(x, [text(layer) for layer in layers], rotation=35, ha="right")
            ax.set_ylim(0, 1.05)
            ax.set_ylabel("kept fraction")
            ax.set_title(text(f"{key[0]} {key[1]}"))
        handles = [matplotlib.patches.Patch(facecolor=colour, hatch=hatch, edgecolor=HATCH_INK,
                                            linewidth=0.4, label=text(label))
                   for label, (colour, hatch) in legend.items()]
        fig.legend(handles=handles, loc="outside upper center", ncols=_legend_columns(fig, handles),
                   frameon=False)
        return fig

    return FigureSpec(name, title, caption, draw)


def keep_probabilities(configs: list[Config]) -> FigureSpec:
    name, title = "keep-probabilities", "Learned keep probabilities"
    base_caption = ("Histogram of the learned keep probabilities at the end of training (methods that "
                    "learn them: aslp, supermask), counts summed over seeds and shown as the fraction of "
                    "prunable weights per bin; one line per variant (colours and line styles as in the "
                    "validation curves). Weights at or above 0.5 are kept "
                    "by the extraction.")
    groups: dict[tuple, dict[tuple, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    for c in configs:
        for r in c.runs:
            kp = r.keep_probabilities
            if kp:
                key = (c.variant_label, tuple(c.variant[a] for a in VARIANT_AXES), tuple(kp.bin_edges))
                groups[(c.method, c.dataset, c.network)][key].append(np.array(kp.counts, dtype=float))
    if not groups:
        return FigureSpec(name, title, base_caption, note="No run recorded keep probabilities "
                                                          "(keep_probabilities): nothing to plot.")
    keys, shown, caption = _panels(groups, base_caption, lambda k: (
        method_sort_key(k[0]), dataset_sort_key(k[1]), natural_key(k[2])))

    def draw() -> Figure:
        fig, axes = _grid(len(shown))
        for ax, key in zip(axes, shown):
            lines = groups[key]
            labels_seen = {}
            for (label, flags, edges), counts in sorted(lines.items()):
                col, ls, _ = variant_style(dict(zip(VARIANT_AXES, flags)))
                total = np.sum(counts, axis=0)
                frac = total / total.sum() if total.sum() > 0 else total
                n_label = labels_seen.setdefault(label, 0)
                labels_seen[label] += 1
                shown_label = f"{label} (n={len(counts)})" + (f" [{n_label + 1}]" if n_label else "")
                ax.stairs(frac, np.array(edges), color=col, ls=ls, lw=1.2, label=text(shown_label))
            ax.axvline(0.5, color="#999", lw=0.8, ls=":")
            ax.set_yscale("log")
            ax.set_xlabel("keep probability")
            ax.set_ylabel("fraction of weights")
            ax.set_title(text(f"{key[0]}: {key[1]} {key[2]}"))
            ax.legend(frameon=True, framealpha=0.85, edgecolor="none", loc="best", fontsize=6.5)
        return fig

    return FigureSpec(name, title, caption, draw)


def epochs_to_best(configs: list[Config]) -> FigureSpec:
    name, title = "epochs-to-best", "Epochs to the best validation accuracy"
    base_caption = ("Epochs (1-based, over all rounds) to the best validation accuracy "
                    "(metrics.epochs_to_best), per configuration, named by its method and variant under "
                    "its bar (methods also by colour, and set apart by thin rules): bar = mean over "
                    "seeds, points = single runs. Filled bars have smart rescale (SR; supermask: its DWR), "
                    "hatched bars do not. One panel per dataset and network.")
    groups: dict[tuple, list[tuple[Config, list[float]]]] = defaultdict(list)
    for c in configs:
        values = c.values("epochs_to_best")
        if values:
            groups[(c.dataset, c.network)].append((c, values))
    if not groups:
        return FigureSpec(name, title, base_caption, note="No run has metrics.epochs_to_best: nothing "
                                                          "to plot.")
    keys, shown, caption = _panels(groups, base_caption, lambda k: (
        dataset_sort_key(k[0]), natural_key(k[1])))
    colours = _Colours([c.method for k in keys for c, _ in groups[k]])

    def draw() -> Figure:
        fig, axes = _grid(len(shown), cols=2, w=4.6, h=3.0, share="y")
        for ax, key in zip(axes, shown):
            items = sorted(groups[key], key=lambda cv: (method_sort_key(cv[0].method),
                                                       cv[0].variant_label != "none", cv[0].variant_label,
                                                       cv[0].config_hash))
            for i, (c, values) in enumerate(items):
                col = colours(c.method)
                sr = c.variant["smart_rescale"]
                ax.bar(i, np.mean(values), 0.7, color=col if sr else "white", edgecolor=col,
                       hatch=None if sr else "////", lw=1.0)
                jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [0.0]
                ax.scatter(i + np.asarray(jitter), values, s=9, color="#222", zorder=3, linewidths=0)
            for i in range(1, len(items)):  # a rule between two methods: the groups read without colour
                if items[i][0].method != items[i - 1][0].method:
                    ax.axvline(i - 0.5, color="#999", lw=0.6, ls=":")
            ax.set_xticks(range(len(items)), [text(label) for label in bar_labels([c for c, _ in items])],
                          rotation=45, ha="right", fontsize=7)
            ax.set_xlim(-0.6, len(items) - 0.4)
            ax.set_ylabel("epochs to best validation")
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(text(f"{key[0]} {key[1]}"))
        handles = [matplotlib.patches.Patch(color=colours(m), label=text(m)) for m in colours.map]
        handles += [matplotlib.patches.Patch(facecolor="#888", edgecolor="#888", label="with SR (or DWR)"),
                    matplotlib.patches.Patch(facecolor="white", edgecolor="#888", hatch="////",
                                             label="without")]
        fig.legend(handles=handles, loc="outside upper center", ncols=_legend_columns(fig, handles),
                   frameon=False)
        return fig

    return FigureSpec(name, title, caption, draw)


def bar_labels(configs: list[Config]) -> list[str]:
    """Tick labels that name each bar's method and variant ('aslp SR', 'supermask DWR'); where two
    bars would read the same, their other options too, wrapped (a recipe preset's options would
    otherwise squeeze the axes away)."""
    short = [configuration_label(c.method, c.variant, {}) for c in configs]
    return [textwrap.fill(configuration_label(c.method, c.variant, c.non_default_options), 28)
            if short.count(label) > 1 else label for c, label in zip(configs, short)]


FIGURES = (accuracy_vs_kept, validation_curves, layer_kept, keep_probabilities, epochs_to_best)


def render_figures(configs: list[Config], out_dir: Path,
                   log: Callable[[str], None] | None = None) -> list[RenderedFigure]:
    """Draw every figure, write PNG and SVG under ``out_dir/figures``, return them for the HTML;
    ``log`` gets a line per figure."""
    fig_dir = out_dir / "figures"
    out = []
    for number, make in enumerate(FIGURES, start=1):
        spec = make(configs)
        if log is not None:
            log(f"report: figure {number}/{len(FIGURES)}, {spec.title.lower()}")
        rendered = RenderedFigure(spec.name, spec.title, spec.caption, number, note=spec.note)
        png_path, svg_path = fig_dir / f"{spec.name}.png", fig_dir / f"{spec.name}.svg"
        if spec.draw is None:
            for stale in (png_path, svg_path):  # a figure from an earlier report must not linger
                stale.unlink(missing_ok=True)
            out.append(rendered)
            continue
        with matplotlib.rc_context(STYLE):
            fig = spec.draw()
            png, svg = io.BytesIO(), io.BytesIO()
            fig.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
            fig.set_layout_engine("none")  # keep the layout computed for the PNG (saves a second pass)
            fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
            width, height = fig.get_size_inches() * PNG_DPI
        atomic_write_bytes(png_path, png.getvalue())
        atomic_write_bytes(svg_path, svg.getvalue())
        rendered.data_uri = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode("ascii")
        rendered.png = f"figures/{png_path.name}"
        rendered.svg = f"figures/{svg_path.name}"
        rendered.width, rendered.height = int(round(width)), int(round(height))
        out.append(rendered)
    return out
