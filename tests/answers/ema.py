"""Answers to `ema` (its cell defines `EMA`; graded in ssl_methods.ipynb).

The correct ways students write it and their known mistakes; tests/answers/__init__.py says
what each field promises.
"""

from __future__ import annotations

from . import correct, wrong

ANSWERS = [
    correct(
        "seed",
        "the seed's `.data =` assignment",
        """
class EMA():
    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        for online_param, target_param in zip(online.parameters(), target.parameters()):
            target_param.data = self.beta * target_param.data + (1 - self.beta) * online_param.data
""",
        sample=True,
    ),
    correct(
        "lerp",
        "torch.lerp_ under no_grad",
        """
import torch


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t.lerp_(o, 1.0 - self.beta)
""",
        sample=True,
    ),
    correct(
        "foreach",
        "torch._foreach_mul_ / _foreach_add_",
        """
import torch


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        with torch.no_grad():
            targets = list(target.parameters())
            torch._foreach_mul_(targets, self.beta)
            torch._foreach_add_(targets, list(online.parameters()), alpha=1 - self.beta)
""",
        sample=True,
    ),
    correct(
        "state_dict",
        "averages every floating-point entry of the state_dict (BatchNorm running stats too; integer counters copied)",
        """
import torch


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        online_state = online.state_dict()
        for name, t in target.state_dict().items():
            if t.is_floating_point():
                t.mul_(self.beta).add_(online_state[name], alpha=1 - self.beta)
            else:
                t.copy_(online_state[name])
""",
    ),
    wrong(
        "swapped_weights",
        "w_t = (1 - beta) w_t + beta w_o",
        """
import torch


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t.mul_(1 - self.beta).add_(o, alpha=self.beta)
""",
        hint="beta weights the target",
        sample=True,
        loses=(
            "ema: One EMA update: w_target = beta * w_target + (1 - beta) * w_online, online unchanged.",
            "ema: Three updates with beta = 0.75; the online network and its gradients are untouched.",
            "ema: In place, without autograd history, also when the target's parameters require grad.",
        ),
    ),
    wrong(
        "updates_online",
        "moves the online network towards the target",
        """
import torch


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            o.mul_(self.beta).add_(t, alpha=1 - self.beta)
""",
        hint="writes only into the second argument",
        sample=True,
        loses=(
            "ema: One EMA update: w_target = beta * w_target + (1 - beta) * w_online, online unchanged.",
            "ema: Three updates with beta = 0.75; the online network and its gradients are untouched.",
            "ema: In place, without autograd history, also when the target's parameters require grad.",
        ),
    ),
    wrong(
        "hardcoded_beta",
        "ignores beta (always 0.99)",
        """
import torch


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t.mul_(0.99).add_(o, alpha=0.01)
""",
        hint="self.beta",
        sample=True,
        loses=(
            "ema: One EMA update: w_target = beta * w_target + (1 - beta) * w_online, online unchanged.",
            "ema: Three updates with beta = 0.75; the online network and its gradients are untouched.",
            "ema: In place, without autograd history, also when the target's parameters require grad.",
        ),
    ),
    wrong(
        "autograd_history",
        "updates in place without no_grad (fails when the target requires grad)",
        """
class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t.copy_(self.beta * t + (1 - self.beta) * o)
""",
        hint="under `with torch.no_grad():`",
        sample=True,
        loses=("ema: In place, without autograd history, also when the target's parameters require grad.",),
    ),
    wrong(
        "new_parameters",
        "replaces the target's Parameter objects",
        """
import torch


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        online_params = dict(online.named_parameters())
        for name, t in list(target.named_parameters()):
            module_name, _, attribute = name.rpartition(".")
            module = target.get_submodule(module_name) if module_name else target
            value = self.beta * t.detach() + (1 - self.beta) * online_params[name].detach()
            setattr(module, attribute, torch.nn.Parameter(value, requires_grad=t.requires_grad))
""",
        hint="instead of replacing them",
        sample=True,
        loses=("ema: In place, without autograd history, also when the target's parameters require grad.",),
    ),
    wrong(
        "rebinds_loop_variable",
        "`t = beta * t + ...` rebinds the loop variable; the target never changes",
        """
class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t = self.beta * t + (1 - self.beta) * o
""",
        hint="rebinding the loop variable",
    ),
    wrong(
        "in_place_with_history",
        "in-place mul_/add_ without torch.no_grad(): the target joins the online network's graph",
        """
class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t.mul_(self.beta).add_((1 - self.beta) * o)
""",
        hint="under `with torch.no_grad():`",
    ),
]
