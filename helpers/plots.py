"""Figures of the notebooks: image grids, training curves, embeddings and the final comparison.

Every function builds a `matplotlib.figure.Figure` without pyplot (so it works with the Agg
backend on a headless grader, in threads, and leaves no open pyplot figures behind), returns
it, and displays it only when asked with `show=True`. In a notebook either end the cell with
the call (Jupyter renders the returned figure once) or pass `show=True`; save a figure with
`fig.savefig("curves.png", dpi=150)`.

Accuracies arrive as fractions in [0, 1] (what `helpers.probes.knn_accuracy`, the probes
and `evaluate` return) and are drawn in percent on a 0-100 axis labelled "%". The EPFL
seed plotted fractions against a "k-NN Accuracy (%)" axis limited to (0, 1) (seed erratum 5);
these functions never mix the two.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from helpers.data import CIFAR10_CLASSES
from helpers.figures import finish, new_figure

__all__ = [
    "plot_comparison",
    "plot_curves",
    "plot_embedding",
    "plot_history",
    "show_images",
]

#: Colours of the ten CIFAR-10 classes (matplotlib's tab10, readable for most colour-blind readers).
_CLASS_COLOURS = tuple("#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f #bcbd22 #17becf".split())
_METRIC_NAMES = {
    "knn": "k-NN",
    "knn_accuracy": "k-NN",
    "linear": "linear probe",
    "linear_probe": "linear probe",
    "linear_accuracy": "linear probe",
    "finetune": "fine-tuned",
}


# --------------------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------------------
def _to_numpy(values: Any, name: str) -> np.ndarray:
    """A tensor (any device, any grad state), array or sequence as a NumPy array."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    try:
        return np.asarray(values)
    except Exception as err:  # pragma: no cover - only odd user input lands here
        raise TypeError(f"`{name}` must be a tensor, array or sequence, got {type(values).__name__}") from err


def _series(values: Sequence[Any] | None) -> np.ndarray:
    """A list of floats that may contain None (epochs where nothing was measured) -> float array with NaN."""
    if values is None:
        return np.zeros(0)
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().double().numpy().reshape(-1)
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _to_percent(values: np.ndarray, what: str) -> np.ndarray:
    """Fractions in [0, 1] -> percent. Values already in percent (> 1) are kept, with a warning."""
    finite = values[np.isfinite(values)]
    if finite.size and finite.max() > 1.0 + 1e-6:
        warnings.warn(
            f"{what} has values above 1 (max {finite.max():.3g}); they look like percentages "
            "already and are plotted unchanged. Pass accuracies as fractions in [0, 1].",
            stacklevel=3,
        )
        return values
    return 100.0 * values


def _label_for(label: Any, class_names: Sequence[str] | None) -> str:
    """Class name of an integer label (or str(label) when there are no names / out of range)."""
    index = int(label)
    if class_names is not None and 0 <= index < len(class_names):
        return str(class_names[index])
    return str(index)


def _field(history: Any, key: str) -> Any:
    """`history.key` for a helpers.train.History (or any object), `history[key]` for a dict."""
    if isinstance(history, Mapping):
        return history.get(key)
    return getattr(history, key, None)


# --------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------
def _images_hwc(images: Any) -> np.ndarray:
    """Images as float (N, H, W, C) in [0, 1] (C = 1 or 3) from uint8 HWC or float CHW input.

    Accepted: uint8 `(N, H, W, 3)` (how `helpers.data.load_cifar10` stores them), float
    `(N, 3, H, W)` in [0, 1] (a batch from a DataLoader), `(N, 1, H, W)` / `(N, H, W)`
    grayscale, and a single image of any of these without the N.
    """
    array = _to_numpy(images, "images")
    if array.ndim == 2 or (array.ndim == 3 and (array.shape[0] in (1, 3) or array.shape[-1] in (1, 3))):
        array = array[None]  # a single image -> (1, ...)
    if array.ndim == 3:  # (N, H, W) grayscale
        array = array[..., None]
    if array.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, 3) uint8 or (N, 3, H, W) float, got {tuple(array.shape)}")
    if array.shape[1] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    array = array.astype(np.float32)
    if np.nanmin(array) < -1e-3 or np.nanmax(array) > 1 + 1e-3:
        warnings.warn(
            "show_images expects float images in [0, 1]; these range over "
            f"[{np.nanmin(array):.2f}, {np.nanmax(array):.2f}] (normalised inputs?) and are clipped. "
            "Show the images before Normalize, or undo it: x * std + mean.",
            stacklevel=3,
        )
    return np.clip(array, 0.0, 1.0)


def show_images(
    images: Any,
    labels: Any = None,
    nrows: int = 3,
    ncols: int = 3,
    class_names: Sequence[str] | None = CIFAR10_CLASSES,
    title: str | None = None,
    show: bool = False,
) -> Figure:
    """A grid of images with their class names as titles (the EPFL seed's first task).

    The first `nrows * ncols` images are drawn row by row; missing cells stay empty.

    Args:
        images: uint8 `(N, 32, 32, 3)` HWC (as stored by `load_cifar10`) or float
            `(N, 3, H, W)` in [0, 1] (as a DataLoader yields them); tensor or array.
        labels: optional integer labels `(N,)`; each image's title is its class name.
        nrows, ncols: grid size (3 x 3 shows the first nine images).
        class_names: names indexed by label (CIFAR-10's by default); None shows the numbers.
        title: optional title above the grid.
        show: display the figure now instead of only returning it.

    Returns:
        The figure; `fig.axes[i]` is the i-th cell, titled with the i-th image's class name.

    Example:
        >>> images, labels = load_cifar10("train")
        >>> show_images(images[:9], labels[:9])
    """
    if nrows < 1 or ncols < 1:
        raise ValueError(f"nrows and ncols must be >= 1, got {nrows} x {ncols}")
    pictures = _images_hwc(images)  # (N, H, W, C) float in [0, 1]
    label_list = None if labels is None else _to_numpy(labels, "labels").reshape(-1).tolist()
    if label_list is not None and len(label_list) < min(len(pictures), nrows * ncols):
        raise ValueError(f"got {len(pictures)} images but only {len(label_list)} labels")

    fig = new_figure((1.7 * ncols, 1.85 * nrows + (0.3 if title else 0.0)), show)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index >= len(pictures):
            continue
        picture = pictures[index]
        if picture.shape[-1] == 1:
            ax.imshow(picture[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(picture, interpolation="nearest")
        if label_list is not None:
            ax.set_title(_label_for(label_list[index], class_names), fontsize=10)
    if title:
        fig.suptitle(title)
    return finish(fig, show)


# --------------------------------------------------------------------------------------
# Training curves
# --------------------------------------------------------------------------------------
def _epoch_axis(ax: Axes, first: float, last: float) -> None:
    """Whole epochs on the x axis, half an epoch of margin; a one-epoch run says why it is a dot.

    matplotlib's integer locator still falls back to fractional ticks (0.945, 0.96, ...) when
    the axis spans fewer than two whole numbers, which a one-epoch (smoke) run always does.
    """
    ax.set_xlim(first - 0.5, last + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if last - first < 1:
        ax.text(
            0.5,
            0.04,
            "one epoch: a single point per curve",
            transform=ax.transAxes,
            ha="center",
            va="bottom",
            fontsize=8,
            color="0.4",
        )


def _plot_percent_panel(ax: Axes, x: np.ndarray, values: np.ndarray, label: str, colour: str) -> None:
    """Accuracy in percent on a 0-100 axis; epochs without a measurement (NaN) are skipped."""
    measured = np.isfinite(values)
    ax.plot(x[measured], values[measured], marker="o", markersize=4, color=colour, label=label)
    ax.set_ylim(0, 100)
    if measured.any():
        last = np.flatnonzero(measured)[-1]
        ax.annotate(
            f"{values[last]:.1f} %",
            (x[last], values[last]),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
            fontsize=9,
        )


def plot_history(
    history: Any,
    title: str | None = None,
    loss_label: str = "loss",
    metric_label: str = "k-NN accuracy",
    show: bool = False,
) -> Figure:
    """Training loss and monitored k-NN accuracy per epoch, side by side.

    Args:
        history: a `helpers.train.History` (attributes `epoch`, `loss`, `monitor`,
            optionally `train_accuracy`) or its `to_dict()` / a dict with those keys.
            `monitor` holds fractions in [0, 1] and None for epochs where the monitor did not
            run (`monitor_every > 1`); a recorded `train_accuracy` is drawn beside it.
        title: optional figure title (e.g. the method's name).
        loss_label: y label of the loss panel (e.g. "NT-Xent loss").
        metric_label: name of the monitored metric; the axis reads "<metric_label> (%)".
        show: display the figure now instead of only returning it.

    Returns:
        The figure with two axes: `[0]` loss vs epoch, `[1]` accuracy in percent vs epoch
        (limits 0-100; a note instead of a line when nothing was measured).
    """
    loss = _series(_field(history, "loss"))
    monitor = _series(_field(history, "monitor"))
    epochs = _series(_field(history, "epoch"))
    if loss.size == 0 and monitor.size == 0:
        raise ValueError(
            "the history is empty (no `loss` or `monitor` entries); train for at least one epoch "
            "or pass a helpers.train.History / its to_dict()"
        )
    length = max(loss.size, monitor.size)
    if epochs.size != length:  # older dicts without epochs: count from 1
        epochs = np.arange(1, length + 1, dtype=float)

    fig = new_figure((10.0, 3.8), show)
    loss_ax, metric_ax = fig.subplots(1, 2)

    if loss.size:
        x = epochs[: loss.size]
        measured = np.isfinite(loss)
        loss_ax.plot(
            x[measured], loss[measured], marker="o" if length <= 30 else None, markersize=3, color=_CLASS_COLOURS[0]
        )
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel(loss_label)
    loss_ax.set_title(f"training {loss_label}")

    percent = _to_percent(monitor, "history.monitor")
    _plot_percent_panel(metric_ax, epochs[: percent.size], percent, metric_label, _CLASS_COLOURS[1])
    train_percent = _to_percent(_series(_field(history, "train_accuracy")), "history.train_accuracy")
    if np.isfinite(train_percent).any():  # supervised runs (views=1) also record the training accuracy
        _plot_percent_panel(metric_ax, epochs[: train_percent.size], train_percent, "train accuracy", _CLASS_COLOURS[2])
        metric_ax.legend(loc="lower right")
    elif not np.isfinite(percent).any():
        metric_ax.text(
            0.5,
            0.5,
            f"no {metric_label} recorded\n(monitor=None)",
            ha="center",
            va="center",
            transform=metric_ax.transAxes,
            color="0.4",
        )
    metric_ax.set_xlabel("epoch")
    metric_ax.set_ylabel(f"{metric_label} (%)")
    metric_ax.set_title(metric_label)

    for ax in (loss_ax, metric_ax):
        ax.grid(alpha=0.3)
        if length:
            _epoch_axis(ax, min(epochs[0], 1), epochs[-1])
    if title:
        fig.suptitle(title)
    return finish(fig, show)


def plot_curves(
    series: Mapping[str, Sequence[Any]],
    ylabel: str,
    percent: bool = False,
    title: str | None = None,
    xlabel: str = "epoch",
    epochs: Sequence[float] | None = None,
    ax: Axes | None = None,
    show: bool = False,
) -> Figure:
    """Several curves on one axis, e.g. train vs test loss (or accuracy) of fine-tuning.

    Args:
        series: name -> values per epoch (None entries are skipped), e.g.
            `{"train": train_losses, "test": test_losses}`.
        ylabel: what the values are ("cross-entropy loss", "accuracy").
        percent: values are fractions in [0, 1]; plot them in percent on a 0-100 axis whose
            label ends in "(%)".
        title: optional axis title.
        xlabel: x axis label.
        epochs: x values shared by all series; default 1, 2, ... per series.
        ax: draw into this existing axis (e.g. one panel of your own figure) instead of a
            new figure.
        show: display the figure now instead of only returning it.

    Returns:
        The figure (the one `ax` belongs to, when given).

    Example (the CMU report's fine-tuning plots):
        >>> plot_curves({"train": train_loss, "test": test_loss}, ylabel="loss")
        >>> plot_curves({"train": train_acc, "test": test_acc}, ylabel="accuracy", percent=True)
    """
    if not series:
        raise ValueError("`series` is empty; pass e.g. {'train': [...], 'test': [...]}")
    if ax is None:
        fig = new_figure((6.0, 4.0), show)
        ax = fig.subplots()
    else:
        fig = ax.figure
    for index, (name, values) in enumerate(series.items()):
        y = _series(values)
        if percent:
            y = _to_percent(y, f"series {name!r}")
        x = np.arange(1, y.size + 1, dtype=float) if epochs is None else _series(epochs)[: y.size]
        measured = np.isfinite(y)
        ax.plot(
            x[measured],
            y[measured],
            marker="o" if y.size <= 30 else None,
            markersize=3,
            label=str(name),
            color=_CLASS_COLOURS[index % len(_CLASS_COLOURS)],
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} (%)" if percent else ylabel)
    if percent:
        ax.set_ylim(0, 100)
    xs = [
        x
        for values in series.values()
        for x in (np.arange(1, _series(values).size + 1) if epochs is None else _series(epochs)[: _series(values).size])
    ]
    if xs:
        _epoch_axis(ax, min(xs), max(xs))
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return finish(fig, show)


# --------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------
def _pca_2d(features: torch.Tensor, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates on the first two principal components and their explained-variance fractions.

    `torch.pca_lowrank` is a randomised SVD (Halko et al. 2011); it runs under a forked,
    seeded RNG so the picture is reproducible and the caller's random stream is untouched.
    Component signs are fixed (largest loading positive) for the same reason.
    """
    x = features.double()
    x = x - x.mean(dim=0, keepdim=True)  # (N, D) centred
    q = min(6, *x.shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, singular, components = torch.pca_lowrank(x, q=q, center=False, niter=6)  # V: (D, q)
    components = components[:, :2]  # (D, 2)
    signs = torch.sign(components.gather(0, components.abs().argmax(dim=0, keepdim=True)))  # (1, 2)
    coordinates = x @ (components * signs)  # (N, 2)
    total = (x**2).sum()
    explained = (singular[:2] ** 2 / total).numpy() if total > 0 else np.zeros(2)
    return coordinates.numpy(), explained


def plot_embedding(
    features: Any,
    labels: Any,
    method: str = "pca",
    class_names: Sequence[str] | None = CIFAR10_CLASSES,
    max_points: int = 2000,
    seed: int = 0,
    title: str | None = None,
    show: bool = False,
) -> Figure:
    """A 2-D map of representations, one colour per class.

    Args:
        features: `(N, D)` representations (tensor on any device, or array).
        labels: `(N,)` integer class labels.
        method: "pca" (the first two principal components, via `torch.pca_lowrank`; fast) or
            "tsne" (scikit-learn's t-SNE, van der Maaten & Hinton 2008; slower, shows clusters
            better).
        class_names: legend names indexed by label (CIFAR-10's by default).
        max_points: at most this many points, a random subset drawn with `seed` (the same
            subset every call).
        seed: seed of the subset, the randomised PCA and t-SNE.
        title: optional title.
        show: display the figure now instead of only returning it.

    Returns:
        The figure; its axis has one scatter per class and a legend of class names.
    """
    method = method.lower().replace("-", "")
    if method not in ("pca", "tsne"):
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    x = torch.as_tensor(_to_numpy(features, "features"), dtype=torch.float64)
    y = torch.as_tensor(_to_numpy(labels, "labels")).reshape(-1).long()
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"features must be (N, D) and labels (N,), got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] < 3:
        raise ValueError(f"need at least 3 points for a 2-D embedding, got {x.shape[0]}")
    if max_points and x.shape[0] > max_points:
        generator = torch.Generator().manual_seed(seed)
        keep = torch.randperm(x.shape[0], generator=generator)[:max_points].sort().values
        x, y = x[keep], y[keep]

    if method == "pca":
        coordinates, explained = _pca_2d(x, seed)
        axis_names = [f"PC {i + 1} ({100 * explained[i]:.0f} % of variance)" for i in range(2)]
    else:
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (x.shape[0] - 1) / 3)))
        tsne = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed)
        coordinates = tsne.fit_transform(x.numpy())
        axis_names = ["t-SNE 1", "t-SNE 2"]

    fig = new_figure((6.8, 5.2), show)
    ax = fig.subplots()
    classes = sorted(set(y.tolist()))
    for label in classes:
        chosen = (y == label).numpy()
        colour = _CLASS_COLOURS[label % len(_CLASS_COLOURS)] if len(classes) <= 10 else None
        ax.scatter(
            coordinates[chosen, 0],
            coordinates[chosen, 1],
            s=8,
            alpha=0.7,
            color=colour,
            label=_label_for(label, class_names),
            linewidths=0,
        )
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    if method == "tsne":
        ax.set_xticks([])
        ax.set_yticks([])
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=2, frameon=False)
    ax.set_title(title or f"{'PCA' if method == 'pca' else 't-SNE'} of {x.shape[0]} representations")
    return finish(fig, show)


# --------------------------------------------------------------------------------------
# Final comparison
# --------------------------------------------------------------------------------------
def plot_comparison(
    results: Mapping[str, Mapping[str, float | None]],
    metrics: Sequence[str] | None = None,
    time_key: str = "minutes",
    title: str | None = None,
    show: bool = False,
) -> Figure:
    """Grouped bars of probe accuracies per method (in %), and optionally training time.

    Args:
        results: method -> {metric: value}. Accuracies are fractions in [0, 1], e.g.
            `{"random init": {"knn": 0.33, "linear": 0.38},
              "SimCLR": {"knn": 0.82, "linear": 0.85, "minutes": 31.5}, ...}`.
            A missing metric (or None) leaves a gap.
        metrics: which accuracy keys to draw, in order; default every key but `time_key`,
            in first-seen order. "knn" and "linear" are shown as "k-NN" and "linear probe".
        time_key: the key holding training minutes; when any method has it, a second panel
            shows the minutes per method (methods without it, like "random init", show "-").
        title: optional figure title.
        show: display the figure now instead of only returning it.

    Returns:
        The figure: `axes[0]` the accuracy bars (y in %, 0-100, value labels on the bars),
        `axes[1]` the training minutes when present.
    """
    if not results:
        raise ValueError("`results` is empty; pass {method: {'knn': acc, 'linear': acc}, ...}")
    methods = list(results)
    if metrics is None:
        metrics = []
        for values in results.values():
            metrics += [key for key in values if key != time_key and key not in metrics]
    if not metrics:
        raise ValueError("no accuracy metrics in `results` (only the time key?)")
    has_time = any(results[m].get(time_key) is not None for m in methods)

    fig = new_figure((max(6.0, 1.6 * len(methods) + 2.5) + (3.8 if has_time else 0.0), 4.2), show)
    if has_time:
        accuracy_ax, time_ax = fig.subplots(1, 2, width_ratios=(1.0 + 0.25 * len(metrics), 0.8))
    else:
        accuracy_ax, time_ax = fig.subplots(), None

    positions = np.arange(len(methods), dtype=float)
    width = 0.8 / len(metrics)
    for index, metric in enumerate(metrics):
        raw = np.array([np.nan if results[m].get(metric) is None else float(results[m][metric]) for m in methods])
        values = _to_percent(raw, f"metric {metric!r}")
        offsets = positions - 0.4 + width * (index + 0.5)
        bars = accuracy_ax.bar(
            offsets,
            np.nan_to_num(values),
            width * 0.92,
            label=_METRIC_NAMES.get(metric, metric),
            color=_CLASS_COLOURS[index % len(_CLASS_COLOURS)],
        )
        accuracy_ax.bar_label(bars, labels=["" if math.isnan(v) else f"{v:.1f}" for v in values], padding=2, fontsize=8)
    accuracy_ax.set_xticks(positions, methods)
    accuracy_ax.set_ylim(0, 100)
    accuracy_ax.set_ylabel("test accuracy (%)")
    accuracy_ax.set_title("probe accuracy")
    accuracy_ax.grid(axis="y", alpha=0.3)
    accuracy_ax.legend(loc="best", fontsize=9)

    if time_ax is not None:
        minutes = [results[m].get(time_key) for m in methods]
        bars = time_ax.bar(positions, [0.0 if v is None else float(v) for v in minutes], 0.6, color="0.55")
        time_ax.bar_label(
            bars, labels=["-" if v is None else f"{float(v):.1f}" for v in minutes], padding=2, fontsize=8
        )
        time_ax.set_xticks(positions, methods)
        time_ax.set_ylabel("training time (minutes)")
        time_ax.set_title("pre-training time")
        time_ax.margins(y=0.15)
        time_ax.grid(axis="y", alpha=0.3)
    for ax in fig.axes:
        if len(methods) > 4:
            ax.tick_params(axis="x", labelrotation=20)
    if title:
        fig.suptitle(title)
    return finish(fig, show)
