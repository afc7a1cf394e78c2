"""helpers.comparison: ssl_methods' table of probe accuracies, filled by the student's own probes."""

from __future__ import annotations

import torch

from helpers.comparison import Comparison, last_monitored
from helpers.train import History


class _Recorder:
    """Stand-ins for the student's functions that record how they are called."""

    def __init__(self):
        self.calls = []

    def extract(self, model, dataloader, normalize=False):
        self.calls.append(("extract", model, dataloader, normalize))
        n = 4 if dataloader == "train" else 2
        return torch.full((n, 3), float(n)), torch.arange(n)

    def knn(self, train_features, train_labels, test_features, test_labels):
        self.calls.append(("knn", train_features.shape, test_features.shape))
        return 0.5

    def linear(self, train_features, train_labels, test_features, test_labels):
        self.calls.append(("linear", train_features.shape, test_features.shape))
        return 0.25


def _history(monitor):
    history = History()
    for epoch, value in enumerate(monitor, start=1):
        history.append(epoch=epoch, loss=1.0, monitor=value, seconds=30.0)
    return history


def test_rows_come_from_the_students_probes_on_normalised_features(capsys):
    """Both probes see the train and test features extracted with normalize=True; rows keep fractions and minutes."""
    probes = _Recorder()
    comparison = Comparison(probes.extract, probes.knn, probes.linear, "train", "test")
    encoder = torch.nn.Identity()
    assert comparison.add("random init", encoder) == {"knn": 0.5, "linear": 0.25, "minutes": None}
    assert probes.calls == [
        ("extract", encoder, "train", True),
        ("extract", encoder, "test", True),
        ("knn", (4, 3), (2, 3)),
        ("linear", (4, 3), (2, 3)),
    ]
    assert capsys.readouterr().out == "random init: k-NN (k=5) 50.0 %, linear probe 25.0 %\n"
    comparison.add("SimCLR", encoder, _history([None, 0.4, None, 0.625, None]))
    assert comparison.results["SimCLR"]["minutes"] == 2.5  # five epochs of 30 s
    assert capsys.readouterr().out.splitlines()[1] == (
        "(monitor: weighted k-NN, k=200, 62.5 % after epoch 4; pre-training took 2.5 min)"
    )
    comparison.print_table()
    assert capsys.readouterr().out.splitlines() == [
        "method          k-NN (k=5)  linear probe   pre-training",
        "random init         50.0 %        25.0 %              -",
        "SimCLR              50.0 %        25.0 %        2.5 min",
    ]


def test_last_monitored_is_the_last_epoch_with_a_value():
    assert last_monitored(_history([0.1, None, 0.3, None])) == (3, 0.3)
    assert last_monitored(_history([None, None])) == (None, None)
    assert last_monitored(_history([])) == (None, None)
