"""Learning-rate schedules: StepLR, ExponentialLR, CosineAnnealingLR and LambdaLR.

A scheduler wraps an optimizer and sets the ``lr`` of each of its parameter
groups as a function of the epoch count ``last_epoch``.  On construction it
records each group's starting lr as ``group["initial_lr"]`` (its ``base_lrs``)
and sets epoch 0; each ``step()``, called once per epoch after the optimizer's
steps, moves on one epoch.  The lr is computed from the closed form of the
schedule, from ``base_lrs`` and ``last_epoch``, so it carries no rounding
drift however long training runs; the flip side is that a schedule overrides
any change made by hand to ``group["lr"]`` in between, and two schedulers on
one optimizer do not compose (the last to step wins).

``state_dict()`` / ``load_state_dict()`` save and restore the epoch count and
settings (never a function: ``LambdaLR`` must be rebuilt with its lambdas).
Save and load the optimizer's state too: the current lr lives in its groups.

>>> import chainrule as cr
>>> w = cr.nn.Parameter([1.0])
>>> opt = cr.optim.SGD([w], lr=1.0)
>>> sched = cr.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
>>> lrs = []
>>> for epoch in range(5):
...     lrs.append(sched.get_last_lr()[0])
...     opt.step()                  # (the training of one epoch)
...     sched.step()
>>> lrs                             # 1.0 * 0.5 ** (epoch // 2)
[1.0, 1.0, 0.5, 0.5, 0.25]
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable
from typing import Any

from . import Optimizer

__all__ = ["CosineAnnealingLR", "ExponentialLR", "LRScheduler", "LambdaLR", "StepLR"]


def _number(owner: str, key: str, value: Any) -> float:
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not math.isfinite(float(value))
    ):
        raise ValueError(f"{owner}: {key} must be a finite number, got {value!r}")
    return float(value)


def _positive_int(owner: str, key: str, value: Any) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{owner}: {key} must be a positive integer, got {value!r}")
    return int(value)


class LRScheduler:
    """Base class: the epoch count, the base lrs, stepping and saving.

    Subclasses implement :meth:`_lr_at`, the lr of one group at an epoch.
    """

    # Attributes that state_dict() leaves out (objects, not settings).
    _unsaved: tuple[str, ...] = ("optimizer",)
    optimizer: Optimizer
    last_epoch: int
    base_lrs: list[float]

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{name}: expected a chainrule optimizer, got {type(optimizer).__name__}"
            )
        if not isinstance(last_epoch, numbers.Integral) or isinstance(last_epoch, bool):
            raise TypeError(f"{name}: last_epoch must be an integer, got {last_epoch!r}")
        if last_epoch < -1:
            raise ValueError(f"{name}: last_epoch must be -1 (start) or an epoch >= 0")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for k, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{name}: resuming at last_epoch={last_epoch} needs 'initial_lr' in "
                        f"parameter group {k} (load the optimizer's state dict first)"
                    )
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = int(last_epoch)
        self._last_lr: list[float] = []
        self.step()

    def _lr_at(self, base_lr: float, group_index: int, epoch: int) -> float:
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The lr of each group as the last :meth:`step` (or construction) set it."""
        return list(self._last_lr)

    def step(self) -> None:
        """Move on one epoch and set each group's lr for it."""
        self.last_epoch += 1
        groups = self.optimizer.param_groups
        if len(groups) != len(self.base_lrs):
            raise RuntimeError(
                f"{type(self).__name__}.step: the optimizer has {len(groups)} parameter groups "
                f"but the scheduler was built for {len(self.base_lrs)}"
            )
        lrs = [self._lr_at(base, k, self.last_epoch) for k, base in enumerate(self.base_lrs)]
        for group, lr in zip(groups, lrs):
            group["lr"] = lr
        self._last_lr = lrs

    def state_dict(self) -> dict[str, Any]:
        """The epoch count, base lrs and settings (a copy; no optimizer, no functions)."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in self._unsaved}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (the optimizer's lrs come from its own)."""
        name = type(self).__name__
        if not isinstance(state_dict, dict):
            raise ValueError(
                f"{name}.load_state_dict: expected a dict, got {type(state_dict).__name__}"
            )
        expected = set(self.state_dict())
        if set(state_dict) != expected:
            raise ValueError(
                f"{name}.load_state_dict: expected the keys {sorted(expected)}, "
                f"got {sorted(state_dict)}"
            )
        if len(state_dict["base_lrs"]) != len(self.base_lrs):
            raise ValueError(
                f"{name}.load_state_dict: the state dict is for {len(state_dict['base_lrs'])} "
                f"parameter groups, this scheduler has {len(self.base_lrs)}"
            )
        for k, v in state_dict.items():
            setattr(self, k, copy.deepcopy(v))
        self.base_lrs = [float(v) for v in self.base_lrs]
        self._last_lr = [float(v) for v in self._last_lr]
        self.last_epoch = int(self.last_epoch)


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs.

    ``lr = base_lr * gamma ** (epoch // step_size)``

    >>> import chainrule as cr
    >>> opt = cr.optim.SGD([cr.nn.Parameter([1.0])], lr=0.1)
    >>> sched = cr.optim.lr_scheduler.StepLR(opt, step_size=3)
    >>> for _ in range(3):
    ...     sched.step()
    >>> sched.last_epoch, round(opt.param_groups[0]["lr"], 12)
    (3, 0.01)
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.step_size = _positive_int("StepLR", "step_size", step_size)
        self.gamma = _number("StepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, group_index: int, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch: ``lr = base_lr * gamma ** epoch``.

    >>> import chainrule as cr
    >>> opt = cr.optim.SGD([cr.nn.Parameter([1.0])], lr=1.0)
    >>> sched = cr.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    >>> sched.step(); sched.step()
    >>> sched.get_last_lr()
    [0.25]
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = _number("ExponentialLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, group_index: int, epoch: int) -> float:
        return base_lr * self.gamma**epoch


class CosineAnnealingLR(LRScheduler):
    """Anneal the lr from its base to ``eta_min`` along half a cosine over ``T_max`` epochs.

    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``

    Past ``T_max`` the same formula goes on, so the lr rises again (as in PyTorch).

    >>> import chainrule as cr
    >>> opt = cr.optim.SGD([cr.nn.Parameter([1.0])], lr=1.0)
    >>> sched = cr.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.2)
    >>> for _ in range(2):
    ...     sched.step()
    >>> round(sched.get_last_lr()[0], 12)    # halfway: (1.0 + 0.2) / 2
    0.6
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        self.T_max = _positive_int("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = _number("CosineAnnealingLR", "eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, group_index: int, epoch: int) -> float:
        cosine = (1.0 + math.cos(math.pi * epoch / self.T_max)) / 2.0
        return self.eta_min + (base_lr - self.eta_min) * cosine


class LambdaLR(LRScheduler):
    """Set the lr to ``base_lr * lr_lambda(epoch)``.

    ``lr_lambda`` is one function for every group, or a list of one per group.
    A state dict holds no function: rebuild the scheduler with its lambdas,
    then load the state.

    >>> import chainrule as cr
    >>> opt = cr.optim.SGD([cr.nn.Parameter([1.0])], lr=0.5)
    >>> sched = cr.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1 / (epoch + 1))
    >>> sched.step(); sched.step()
    >>> sched.get_last_lr()                  # 0.5 * 1 / 3
    [0.16666666666666666]
    """

    _unsaved = ("optimizer", "lr_lambdas")

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        groups = len(getattr(optimizer, "param_groups", []))
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != groups:
                raise ValueError(
                    f"LambdaLR: got {len(lr_lambda)} lr_lambdas for {groups} parameter groups"
                )
            lambdas = list(lr_lambda)
        else:
            lambdas = [lr_lambda] * groups
        for f in lambdas:
            if not callable(f):
                raise TypeError(f"LambdaLR: lr_lambda must be callable, got {type(f).__name__}")
        self.lr_lambdas: list[Callable[[int], float]] = lambdas
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, group_index: int, epoch: int) -> float:
        factor = self.lr_lambdas[group_index](epoch)
        if not isinstance(factor, numbers.Real) or isinstance(factor, bool):
            raise TypeError(
                f"LambdaLR: lr_lambda({epoch}) for group {group_index} returned "
                f"{type(factor).__name__}, not a number"
            )
        return base_lr * float(factor)
