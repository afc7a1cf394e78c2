"""Tests of helpers.plots: every figure function returns a Figure with the promised axes,
labels and data, works headless (Agg, no pyplot state), and saves to PNG."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from helpers import plots  # noqa: E402
from helpers.data import CIFAR10_CLASSES  # noqa: E402
from helpers.train import History  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _one_thread():
    """The figures' data are tiny: extra OpenMP/BLAS threads only spin on a shared 2-core machine."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


def saved_png(fig: Figure, path) -> bytes:
    fig.savefig(path, dpi=60)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 2_000
    return data


def line_data(ax) -> list[tuple[list[float], list[float]]]:
    return [(list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()]


@pytest.fixture
def history() -> History:
    """Ten epochs with the k-NN monitor every third epoch (None elsewhere)."""
    h = History()
    for epoch in range(1, 11):
        monitor = 0.3 + 0.04 * epoch if epoch % 3 == 0 else None
        h.append(epoch=epoch, loss=5.0 - 0.3 * epoch, monitor=monitor, lr=0.1, seconds=1.0)
    return h


# -- show_images -------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["uint8_hwc", "float_chw"])
def test_show_images_grid_titles_are_class_names(layout, tmp_path):
    """The seed's first task: a 3x3 grid of the first nine images titled with their classes."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (12, 32, 32, 3), dtype=torch.uint8, generator=generator)
    if layout == "float_chw":
        images = images.permute(0, 3, 1, 2).float() / 255  # (N, 3, 32, 32) in [0, 1]
    labels = torch.tensor([6, 9, 9, 4, 1, 1, 2, 7, 8, 3, 4, 7])
    fig = plots.show_images(images, labels)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 9
    assert [ax.get_title() for ax in fig.axes] == [CIFAR10_CLASSES[i] for i in labels[:9]]
    shown = fig.axes[0].get_images()[0].get_array()
    expected = images[0] if layout == "uint8_hwc" else images[0].permute(1, 2, 0) * 255
    np.testing.assert_allclose(np.asarray(shown) * 255, expected.float().numpy(), atol=0.5)
    saved_png(fig, tmp_path / "grid.png")


def test_show_images_fewer_images_than_cells_and_no_labels(tmp_path):
    images = np.zeros((5, 3, 8, 8), dtype=np.float32)
    fig = plots.show_images(images, nrows=2, ncols=4, title="five images")
    assert len(fig.axes) == 8
    assert sum(bool(ax.get_images()) for ax in fig.axes) == 5
    assert all(ax.get_title() == "" for ax in fig.axes)
    assert fig.get_suptitle() == "five images"
    saved_png(fig, tmp_path / "five.png")


def test_show_images_numbers_without_class_names_and_grayscale():
    fig = plots.show_images(torch.rand(2, 1, 8, 8), [3, 12], nrows=1, ncols=2, class_names=None)
    assert [ax.get_title() for ax in fig.axes] == ["3", "12"]
    assert fig.axes[0].get_images()[0].get_cmap().name == "gray"


def test_show_images_warns_about_normalised_inputs():
    with pytest.warns(UserWarning, match="expects float images in \\[0, 1\\]"):
        plots.show_images(torch.randn(1, 3, 8, 8) * 3, nrows=1, ncols=1)


def test_show_images_rejects_bad_shapes():
    with pytest.raises(ValueError, match="images must have shape"):
        plots.show_images(torch.zeros(2, 2, 3, 8, 8))


# -- plot_history --------------------------------------------------------------------------
@pytest.mark.parametrize("as_dict", [False, True])
def test_plot_history_loss_and_percent_accuracy(history, as_dict, tmp_path):
    """Loss and k-NN accuracy side by side; accuracy in percent on 0-100 (seed erratum 5)."""
    fig = plots.plot_history(history.to_dict() if as_dict else history, title="SimCLR", loss_label="NT-Xent loss")
    loss_ax, accuracy_ax = fig.axes
    assert loss_ax.get_xlabel() == accuracy_ax.get_xlabel() == "epoch"
    assert loss_ax.get_ylabel() == "NT-Xent loss"
    [(x, y)] = line_data(loss_ax)
    assert x == list(range(1, 11))
    np.testing.assert_allclose(y, history.loss)

    assert accuracy_ax.get_ylim() == (0.0, 100.0)
    assert "%" in accuracy_ax.get_ylabel() and "k-NN accuracy" in accuracy_ax.get_ylabel()
    [(x, y)] = line_data(accuracy_ax)
    assert x == [3, 6, 9]  # the epochs where the monitor ran; None entries are skipped
    np.testing.assert_allclose(y, [42.0, 54.0, 66.0])
    saved_png(fig, tmp_path / "history.png")


def test_plot_history_without_any_monitor_value(tmp_path):
    fig = plots.plot_history({"epoch": [1, 2], "loss": [2.0, 1.5], "monitor": [None, None]})
    accuracy_ax = fig.axes[1]
    assert all(len(x) == 0 for x, _ in line_data(accuracy_ax))
    assert accuracy_ax.get_ylim() == (0.0, 100.0)
    assert any("no k-NN accuracy recorded" in text.get_text() for text in accuracy_ax.texts)
    saved_png(fig, tmp_path / "no_monitor.png")


def test_plot_history_shows_train_accuracy_when_recorded():
    h = History()
    for epoch in (1, 2, 3):
        h.append(epoch=epoch, loss=1.0 / epoch, monitor=0.5 + 0.1 * epoch, train_accuracy=0.6 + 0.1 * epoch)
    accuracy_ax = plots.plot_history(h, metric_label="test accuracy").axes[1]
    assert [label.get_text() for label in accuracy_ax.get_legend().get_texts()] == ["test accuracy", "train accuracy"]
    np.testing.assert_allclose(line_data(accuracy_ax)[1][1], [70.0, 80.0, 90.0])


def test_plot_history_keeps_percentages_with_a_warning():
    with pytest.warns(UserWarning, match="look like percentages"):
        fig = plots.plot_history({"loss": [1.0, 0.5], "monitor": [40.0, 55.0]})
    np.testing.assert_allclose(line_data(fig.axes[1])[0][1], [40.0, 55.0])
    assert line_data(fig.axes[0])[0][0] == [1, 2]  # epochs default to 1, 2, ...


def test_plot_history_rejects_an_empty_history():
    with pytest.raises(ValueError, match="the history is empty"):
        plots.plot_history(History())


# -- plot_curves ---------------------------------------------------------------------------
def test_plot_curves_percent(tmp_path):
    """Fine-tuning's train vs test accuracy, in percent."""
    fig = plots.plot_curves(
        {"train": [0.5, 0.6, 0.7], "test": [0.45, None, 0.62]}, ylabel="accuracy", percent=True, title="fine-tuning"
    )
    [ax] = fig.axes
    assert ax.get_ylim() == (0.0, 100.0)
    assert ax.get_ylabel() == "accuracy (%)"
    assert ax.get_title() == "fine-tuning"
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["train", "test"]
    (x_train, y_train), (x_test, y_test) = line_data(ax)
    np.testing.assert_allclose(y_train, [50.0, 60.0, 70.0])
    assert x_test == [1, 3]
    np.testing.assert_allclose(y_test, [45.0, 62.0])
    saved_png(fig, tmp_path / "curves.png")


def test_plot_curves_raw_values_into_an_existing_axis():
    figure = Figure()
    left, right = figure.subplots(1, 2)
    returned = plots.plot_curves({"train": [2.0, 1.0], "test": [2.5, 1.8]}, ylabel="loss", ax=right)
    assert returned is figure
    assert right.get_ylabel() == "loss" and right.get_ylim() != (0.0, 100.0)
    assert not left.get_lines()


# -- plot_embedding ------------------------------------------------------------------------
def _embedding_data(n: int = 600, classes: int = 4):
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % classes
    features = torch.randn(n, 16, generator=generator) + 4.0 * torch.nn.functional.one_hot(labels, 16).float()
    return features, labels


def test_plot_embedding_pca(tmp_path):
    features, labels = _embedding_data()
    fig = plots.plot_embedding(features.requires_grad_(True), labels, max_points=200)
    [ax] = fig.axes
    assert [text.get_text() for text in ax.get_legend().get_texts()] == list(CIFAR10_CLASSES[:4])
    assert sum(len(collection.get_offsets()) for collection in ax.collections) == 200
    assert ax.get_xlabel().startswith("PC 1") and "% of variance" in ax.get_xlabel()
    again = plots.plot_embedding(features, labels, max_points=200).axes[0]
    for first, second in zip(ax.collections, again.collections):  # same subset, same signs
        np.testing.assert_allclose(first.get_offsets(), second.get_offsets())
    saved_png(fig, tmp_path / "pca.png")


def test_plot_embedding_pca_separates_the_classes():
    """The first two components span the class means here, so the classes' centres are far apart."""
    features, labels = _embedding_data(classes=2)
    ax = plots.plot_embedding(features, labels).axes[0]
    centres = [np.asarray(collection.get_offsets()).mean(axis=0) for collection in ax.collections]
    assert np.linalg.norm(centres[0] - centres[1]) > 4.0


def test_plot_embedding_tsne_with_own_class_names(tmp_path):
    features, labels = _embedding_data(n=60, classes=3)
    fig = plots.plot_embedding(features, labels, method="t-SNE", class_names=["a", "b", "c"])
    ax = fig.axes[0]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "t-SNE 1"
    saved_png(fig, tmp_path / "tsne.png")


def test_plot_embedding_rejects_unknown_method():
    features, labels = _embedding_data(n=10)
    with pytest.raises(ValueError, match="'pca' or 'tsne'"):
        plots.plot_embedding(features, labels, method="umap")


# -- plot_comparison -----------------------------------------------------------------------
RESULTS = {
    "random init": {"knn": 0.331, "linear": 0.384},
    "SimCLR": {"knn": 0.82, "linear": 0.853, "minutes": 31.5},
    "BYOL": {"knn": 0.85, "linear": None, "minutes": 40.0},
}


def test_plot_comparison_grouped_percent_bars_with_time(tmp_path):
    fig = plots.plot_comparison(RESULTS, title="CIFAR-10")
    accuracy_ax, time_ax = fig.axes
    assert accuracy_ax.get_ylim() == (0.0, 100.0)
    assert "%" in accuracy_ax.get_ylabel()
    assert [tick.get_text() for tick in accuracy_ax.get_xticklabels()] == list(RESULTS)
    assert [text.get_text() for text in accuracy_ax.get_legend().get_texts()] == ["k-NN", "linear probe"]
    knn_bars, linear_bars = accuracy_ax.containers
    np.testing.assert_allclose([bar.get_height() for bar in knn_bars], [33.1, 82.0, 85.0])
    np.testing.assert_allclose([bar.get_height() for bar in linear_bars], [38.4, 85.3, 0.0])
    labels = [text.get_text() for text in accuracy_ax.texts]
    assert {"33.1", "82.0", "85.0", "38.4", "85.3"} <= set(labels) and "0.0" not in labels  # no label for the gap
    assert time_ax.get_ylabel() == "training time (minutes)"
    np.testing.assert_allclose([bar.get_height() for bar in time_ax.containers[0]], [0.0, 31.5, 40.0])
    assert [text.get_text() for text in time_ax.texts] == ["-", "31.5", "40.0"]
    saved_png(fig, tmp_path / "comparison.png")


def test_plot_comparison_without_time_has_one_panel():
    fig = plots.plot_comparison({"random init": {"knn": 0.3}, "SimCLR": {"knn": 0.8}}, metrics=["knn"])
    assert len(fig.axes) == 1
    assert len(fig.axes[0].containers) == 1


# -- headless behaviour --------------------------------------------------------------------
def test_figures_stay_out_of_pyplot_and_render_in_notebooks(history):
    """No pyplot figures are opened (nothing to close, nothing shown twice), and Jupyter gets a PNG."""
    before = plt.get_fignums()
    fig = plots.plot_history(history)
    assert plt.get_fignums() == before
    assert fig._repr_png_().startswith(PNG_MAGIC)


def test_show_true_outside_a_notebook_uses_pyplot(monkeypatch, history):
    shown = []
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: shown.append(True))
    fig = plots.plot_history(history, show=True)
    assert shown == [True]
    assert fig.number in plt.get_fignums()
    plt.close(fig)


def test_no_warnings_for_regular_inputs(history):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.plot_history(history)
        plots.plot_curves({"train": [1.0, 0.5]}, ylabel="loss")
        plots.plot_comparison(RESULTS)
