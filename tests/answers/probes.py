"""Answers to `probes` (its cell defines `run_knn_probe`, `run_linear_probe`; graded in ssl_methods.ipynb).

The correct ways students write it and their known mistakes; tests/answers/__init__.py says
what each field promises.
"""

from __future__ import annotations

from . import correct, wrong

ANSWERS = [
    correct(
        "seed",
        "the seed's probes with accuracy_score (tensors converted by sklearn)",
        """
import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier


def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=5, n_jobs=-1)
    knn.fit(train_features, train_labels)
    return skm.accuracy_score(test_labels, knn.predict(test_features))


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    logreg = LogisticRegression(max_iter=1000, n_jobs=-1)
    logreg.fit(train_features, train_labels)
    return skm.accuracy_score(test_labels, logreg.predict(test_features))
""",
        sample=True,
    ),
    correct(
        "mean_of_matches",
        "accuracy as the mean of matches, numpy conversions",
        """
import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier


def _np(a):
    return a.numpy() if hasattr(a, "numpy") else np.asarray(a)


def run_knn_probe(train_features, train_labels, test_features, test_labels):
    model = KNeighborsClassifier(5).fit(_np(train_features), _np(train_labels))
    return float((model.predict(_np(test_features)) == _np(test_labels)).mean())


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    model = LogisticRegression(max_iter=2000).fit(_np(train_features), _np(train_labels))
    return float((model.predict(_np(test_features)) == _np(test_labels)).mean())
""",
        sample=True,
    ),
    correct(
        "knn_score",
        "KNeighborsClassifier(5).score, converted to a Python float",
        """
import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier


def run_knn_probe(train_features, train_labels, test_features, test_labels):
    return float(KNeighborsClassifier(5).fit(train_features, train_labels).score(test_features, test_labels))


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    logreg = LogisticRegression(max_iter=1000)
    logreg.fit(train_features, train_labels)
    return skm.accuracy_score(test_labels, logreg.predict(test_features))
""",
    ),
    wrong(
        "percent",
        "returns the k-NN accuracy in percent",
        """
import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier


def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=5).fit(np.asarray(train_features), np.asarray(train_labels))
    return 100.0 * knn.score(np.asarray(test_features), np.asarray(test_labels))

def run_linear_probe(train_features, train_labels, test_features, test_labels):
    classifier = LogisticRegression(max_iter=1000)
    classifier.fit(np.asarray(train_features), np.asarray(train_labels))
    return float(classifier.score(np.asarray(test_features), np.asarray(test_labels)))
""",
        hint="return the accuracy as a fraction",
        sample=True,
        loses=(
            "probes: run_knn_probe: test accuracy of a k-NN (k = 5) classifier, as a fraction.",
            "probes: Both probes also accept NumPy arrays and return Python floats.",
        ),
    ),
    wrong(
        "train_accuracy",
        "scores the linear probe on the training set",
        """
import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=5)
    knn.fit(np.asarray(train_features), np.asarray(train_labels))
    return float(knn.score(np.asarray(test_features), np.asarray(test_labels)))


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    classifier = LogisticRegression(max_iter=1000).fit(np.asarray(train_features), np.asarray(train_labels))
    return float(classifier.score(np.asarray(train_features), np.asarray(train_labels)))
""",
        hint="that is the training accuracy",
        sample=True,
        loses=(
            "probes: run_linear_probe: test accuracy of a logistic regression, as a fraction.",
            "probes: Both probes also accept NumPy arrays and return Python floats.",
        ),
    ),
    wrong(
        "k1",
        "1-nearest neighbour instead of k = 5",
        """
import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier


def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=1).fit(np.asarray(train_features), np.asarray(train_labels))
    return float(knn.score(np.asarray(test_features), np.asarray(test_labels)))

def run_linear_probe(train_features, train_labels, test_features, test_labels):
    classifier = LogisticRegression(max_iter=1000)
    classifier.fit(np.asarray(train_features), np.asarray(train_labels))
    return float(classifier.score(np.asarray(test_features), np.asarray(test_labels)))
""",
        hint="KNeighborsClassifier(n_neighbors=5)",
        sample=True,
        loses=(
            "probes: run_knn_probe: test accuracy of a k-NN (k = 5) classifier, as a fraction.",
            "probes: Both probes also accept NumPy arrays and return Python floats.",
        ),
    ),
    wrong(
        "linear_is_knn",
        "the linear probe is a k-NN classifier",
        """
import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=5)
    knn.fit(np.asarray(train_features), np.asarray(train_labels))
    return float(knn.score(np.asarray(test_features), np.asarray(test_labels)))


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    model = KNeighborsClassifier(n_neighbors=5).fit(np.asarray(train_features), np.asarray(train_labels))
    return float(model.score(np.asarray(test_features), np.asarray(test_labels)))
""",
        hint="must fit a linear classifier (LogisticRegression)",
        sample=True,
        loses=(
            "probes: run_linear_probe: test accuracy of a logistic regression, as a fraction.",
            "probes: Both probes also accept NumPy arrays and return Python floats.",
        ),
    ),
    wrong(
        "tensor_result",
        "returns torch tensors instead of Python floats",
        """
import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

import torch


def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=5).fit(np.asarray(train_features), np.asarray(train_labels))
    return torch.tensor(knn.score(np.asarray(test_features), np.asarray(test_labels)))


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    model = LogisticRegression(max_iter=1000).fit(np.asarray(train_features), np.asarray(train_labels))
    return torch.tensor(model.score(np.asarray(test_features), np.asarray(test_labels)))
""",
        hint="return a Python float",
        sample=True,
        loses=("probes: Both probes also accept NumPy arrays and return Python floats.",),
    ),
    wrong(
        "knn_train_accuracy",
        "scores the k-NN probe on the training set",
        """
import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier


def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=5).fit(train_features, train_labels)
    return float(knn.score(train_features, train_labels))


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    logreg = LogisticRegression(max_iter=1000)
    logreg.fit(train_features, train_labels)
    return skm.accuracy_score(test_labels, logreg.predict(test_features))
""",
        hint="that is the training accuracy",
    ),
    wrong(
        "knn_error_rate",
        "returns the k-NN error rate, 1 - accuracy",
        """
import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier


def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=5).fit(train_features, train_labels)
    return 1.0 - skm.accuracy_score(test_labels, knn.predict(test_features))


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    logreg = LogisticRegression(max_iter=1000)
    logreg.fit(train_features, train_labels)
    return skm.accuracy_score(test_labels, logreg.predict(test_features))
""",
        hint="error rate (1 - accuracy)",
    ),
    wrong(
        "linear_percent",
        "returns the linear probe's accuracy in percent",
        """
import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier


def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=5)
    knn.fit(train_features, train_labels)
    return skm.accuracy_score(test_labels, knn.predict(test_features))


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    logreg = LogisticRegression(max_iter=1000).fit(train_features, train_labels)
    return 100.0 * skm.accuracy_score(test_labels, logreg.predict(test_features))
""",
        hint="return the accuracy as a fraction",
    ),
    wrong(
        "linear_unconverged",
        "stops the logistic regression after 2 iterations, far from its optimum on real features; easy "
        "synthetic clusters are separated anyway, so only a comparison with the reference on real "
        "features shows it",
        """
import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier


def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=5)
    knn.fit(train_features, train_labels)
    return skm.accuracy_score(test_labels, knn.predict(test_features))


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        logreg = LogisticRegression(max_iter=2).fit(train_features, train_labels)
    return float(logreg.score(test_features, test_labels))
""",
        hint=None,
    ),
]
