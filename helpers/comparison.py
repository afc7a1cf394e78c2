"""The comparison of ``ssl_methods``: every encoder probed the same way, one row per method.

`Comparison` holds the student's own probes of section 2 (their `extract_features_and_labels`,
`run_knn_probe` and `run_linear_probe`, passed in; nothing here computes a probe itself) and
the un-augmented train / test loaders. `Comparison.add` probes a frozen encoder on
L2-normalised representations, prints its line, and keeps its row (k-NN and linear-probe
test accuracy as fractions, pre-training minutes); `Comparison.print_table` prints them all,
and `Comparison.results` is what `helpers.plots.plot_comparison` draws.

Usage, in the notebook::

    comparison = Comparison(extract_features_and_labels, run_knn_probe, run_linear_probe,
                            train_eval_loader, test_eval_loader)
    comparison.add("random init", random_encoder)
    comparison.add("SimCLR", simclr_model, simclr_history)  # model(x) returns (repr, ...)
    comparison.print_table()
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from torch.utils.data import DataLoader


def last_monitored(history) -> tuple[int | None, float | None]:
    """The last epoch at which `fit`'s monitor ran, and its value (a fraction); (None, None) if never."""
    measured = [(epoch, value) for epoch, value in zip(history.epoch, history.monitor) if value is not None]
    return measured[-1] if measured else (None, None)


class Comparison:
    """Probe encoders with the student's probes and collect one row per method.

    Args:
        extract_features_and_labels: ``(model, dataloader, normalize) -> (features (N, D), labels (N,))``.
        run_knn_probe: ``(train_features, train_labels, test_features, test_labels) -> float`` (k = 5).
        run_linear_probe: the same signature, logistic regression.
        train_loader: the training images, un-augmented, float (B, 3, 32, 32) in [0, 1], with labels.
        test_loader: the test images, likewise.
    """

    def __init__(
        self,
        extract_features_and_labels: Callable,
        run_knn_probe: Callable,
        run_linear_probe: Callable,
        train_loader: DataLoader,
        test_loader: DataLoader,
    ):
        self.extract, self.knn_probe, self.linear_probe = extract_features_and_labels, run_knn_probe, run_linear_probe
        self.train_loader, self.test_loader = train_loader, test_loader
        #: method -> {"knn": fraction, "linear": fraction, "minutes": pre-training time or None}
        self.results: dict[str, dict] = {}

    def probe(self, encoder: nn.Module) -> dict[str, float]:
        """k-NN (k = 5) and linear-probe test accuracies (fractions) of a frozen encoder."""
        train_features, train_labels = self.extract(encoder, self.train_loader, normalize=True)
        test_features, test_labels = self.extract(encoder, self.test_loader, normalize=True)
        return {
            "knn": self.knn_probe(train_features, train_labels, test_features, test_labels),
            "linear": self.linear_probe(train_features, train_labels, test_features, test_labels),
        }

    def add(self, name: str, encoder: nn.Module, history=None) -> dict:
        """Probe `encoder`, keep and print its row; with `fit`'s history, also its time and last monitor value."""
        row = {**self.probe(encoder), "minutes": None if history is None else sum(history.seconds) / 60}
        self.results[name] = row
        print(f"{name}: k-NN (k=5) {100 * row['knn']:.1f} %, linear probe {100 * row['linear']:.1f} %")
        epoch, value = last_monitored(history) if history is not None else (None, None)
        if value is not None:
            print(
                f"(monitor: weighted k-NN, k=200, {100 * value:.1f} % after epoch {epoch}; "
                f"pre-training took {row['minutes']:.1f} min)"
            )
        return row

    def print_table(self) -> None:
        """Every row so far: k-NN and linear-probe accuracy in percent, pre-training time."""
        print(f"{'method':<14}{'k-NN (k=5)':>12}{'linear probe':>14}{'pre-training':>15}")
        for method, row in self.results.items():
            minutes = "-" if row["minutes"] is None else f"{row['minutes']:.1f} min"
            print(f"{method:<14}{100 * row['knn']:>10.1f} %{100 * row['linear']:>12.1f} %{minutes:>15}")
