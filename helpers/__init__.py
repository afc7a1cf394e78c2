"""SSL Lab helpers: everything the notebooks are given (data, augmentation, models,
probes, the training loop, plots and public self-checks). Nothing in here is the answer
to a graded task."""

from helpers.runtime import get_device, set_seed, smoke_mode

__all__ = ["get_device", "set_seed", "smoke_mode"]
