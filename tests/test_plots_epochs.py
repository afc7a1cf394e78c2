"""Training curves of short runs: whole-epoch ticks, and a one-epoch run says why it is a dot."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from helpers.plots import plot_curves, plot_history  # noqa: E402


def _ticks(ax) -> list[float]:
    ax.figure.canvas.draw()
    low, high = ax.get_xlim()
    return [t for t in ax.get_xticks() if low <= t <= high]


@pytest.mark.parametrize("epochs", [1, 2, 7, 100])
def test_curves_have_whole_epoch_ticks(epochs):
    """Are the epoch ticks whole numbers for any run length (a one-epoch run included)?"""
    values = [1.0 / (k + 1) for k in range(epochs)]
    for ax in (
        plot_curves({"train": values, "test": values}, ylabel="loss").axes[0],
        *plot_history({"epoch": list(range(1, epochs + 1)), "loss": values, "monitor": values}).axes,
    ):
        ticks = _ticks(ax)
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert 1 in ticks or epochs > 10
        notes = [t.get_text() for t in ax.texts]
        assert ("one epoch: a single point per curve" in notes) == (epochs == 1), notes
