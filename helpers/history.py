"""What `helpers.train.fit` records per epoch: the `History` of a training run.

One entry per finished epoch -- mean loss, the monitor's value (e.g. k-NN accuracy), learning
rate, seconds, training accuracy of supervised steps, and whatever ``on_epoch_end`` returns --
as plain lists of floats, so a history survives ``torch.load(weights_only=True)`` (it is part
of fit's training state) and JSON, and `helpers.plots.plot_history` draws it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["History"]


@dataclass
class History:
    """What `fit` records, one entry per finished epoch (all lists have the same length).

    Attributes:
        epoch: 1-based epoch numbers.
        loss: mean of the step's losses over the epoch.
        monitor: the monitor's value (e.g. k-NN accuracy in [0, 1]) or None in epochs
            without a monitor run.
        lr: learning rate of the first parameter group at the epoch's last step.
        seconds: wall-clock time of the epoch, monitor and callback included.
        train_accuracy: correct / seen when the step returns ``(loss, n_correct)``, else None.
        extra: name -> per-epoch values returned by ``on_epoch_end`` (None where missing).

    Plain lists of floats, so a history survives ``torch.load(weights_only=True)`` and JSON.
    """

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    monitor: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    train_accuracy: list[float | None] = field(default_factory=list)
    extra: dict[str, list[float | None]] = field(default_factory=dict)

    _COLUMNS = ("epoch", "loss", "monitor", "lr", "seconds", "train_accuracy")

    def __len__(self) -> int:
        return len(self.epoch)

    def append(
        self,
        *,
        epoch: int,
        loss: float,
        monitor: float | None = None,
        lr: float = float("nan"),
        seconds: float = 0.0,
        train_accuracy: float | None = None,
    ) -> None:
        """Add one epoch's entry (the `extra` lists are padded with None)."""
        self.epoch.append(int(epoch))
        self.loss.append(float(loss))
        self.monitor.append(None if monitor is None else float(monitor))
        self.lr.append(float(lr))
        self.seconds.append(float(seconds))
        self.train_accuracy.append(None if train_accuracy is None else float(train_accuracy))
        for values in self.extra.values():
            values.append(None)

    def add_extra(self, values: Mapping[str, Any]) -> None:
        """Record `values` (name -> number) for the last epoch, creating columns as needed."""
        if not self.epoch:
            raise ValueError("add_extra needs an epoch entry first (History.append)")
        for name, value in values.items():
            if name in self._COLUMNS:
                raise ValueError(f"on_epoch_end returned {name!r}, a name History already uses; rename it")
            column = self.extra.setdefault(str(name), [None] * len(self.epoch))
            column[-1] = None if value is None else float(value)

    def row(self, index: int) -> dict[str, float | None]:
        """Everything recorded for one epoch (list index, negative allowed) as a dict."""
        out = {name: getattr(self, name)[index] for name in self._COLUMNS}
        out.update({name: values[index] for name, values in self.extra.items()})
        return out

    def last(self) -> dict[str, float | None]:
        """The last epoch's entry as a dict (``{}`` when nothing was recorded yet)."""
        return self.row(-1) if self.epoch else {}

    def best(self, key: str = "monitor", mode: str = "max") -> dict[str, float | None] | None:
        """The entry of the epoch with the best `key` (a column or an extra name).

        Args:
            key: e.g. "monitor", "loss", "train_accuracy" or a name from on_epoch_end.
            mode: "max" (accuracies) or "min" (losses).

        Returns:
            That epoch's dict (as `last`), or None when no epoch has a value for `key`.
        """
        if key in self._COLUMNS:
            values = getattr(self, key)
        elif key in self.extra:
            values = self.extra[key]
        else:
            raise KeyError(f"History has no {key!r}; known: {list(self._COLUMNS) + list(self.extra)}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        candidates = [(v, i) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
        if not candidates:
            return None
        # max/min return the first of equal values: the earliest epoch wins a tie.
        _, index = (max if mode == "max" else min)(candidates, key=lambda value_index: value_index[0])
        return self.row(index)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (copies), e.g. for `helpers.plots.plot_history` or a checkpoint."""
        out: dict[str, Any] = {name: list(getattr(self, name)) for name in self._COLUMNS}
        out["extra"] = {name: list(values) for name, values in self.extra.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """Inverse of `to_dict` (missing columns, e.g. from older files, become None lists)."""
        n = len(data.get("epoch", []))
        kwargs = {name: list(data.get(name, [None] * n)) for name in cls._COLUMNS}
        kwargs["extra"] = {name: list(values) for name, values in dict(data.get("extra", {})).items()}
        history = cls(**kwargs)
        lengths = {len(getattr(history, name)) for name in cls._COLUMNS}
        lengths |= {len(values) for values in history.extra.values()}
        if len(lengths) > 1:
            raise ValueError(f"inconsistent history: columns have lengths {sorted(lengths)}")
        return history
