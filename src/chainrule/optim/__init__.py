"""Optimizers: SGD (with momentum and Nesterov), Adam, AdamW, RMSprop and Adagrad, with
PyTorch's update rules; learning-rate schedules in :mod:`chainrule.optim.lr_scheduler`.

An optimizer holds the parameters to train, in one or more *parameter
groups* (each a dict with its own ``lr`` and other settings), and per
parameter state such as momentum buffers.  ``step()`` updates every
parameter that has a gradient from the last backward, in place, with numpy
and without recording a graph (after ``backward(create_graph=True)``, where
``.grad`` is a Tensor with a graph of its own, the step uses its numbers);
``zero_grad()`` clears the gradients.
Frozen parameters (``requires_grad`` False) and parameters without a
gradient are left exactly as they are, state included.

``state_dict()`` / ``load_state_dict()`` capture and restore everything a
step depends on, so saving a model and its optimizer and loading both
resumes training bit for bit.

>>> import chainrule as cr
>>> w = cr.nn.Parameter([1.0, -2.0])
>>> opt = cr.optim.SGD([w], lr=0.1)
>>> (w * w).sum().backward()      # gradient 2w
>>> opt.step()
>>> w.data                        # w - 0.1 * 2w
array([ 0.8, -1.6])
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from ..modes import enable_grad, no_grad
from ..tensor import Tensor

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]

# Settings a group may carry besides the optimizer's own: a learning-rate
# scheduler records the lr it started from here, as PyTorch's do.
_EXTRA_SETTINGS = {"initial_lr"}


class Optimizer:
    """Base class: parameter groups, per-parameter state, saving and loading.

    Args:
        params: an iterable of Tensors (parameters), or of dicts each with a
            ``"params"`` entry and settings that override ``defaults``.
        defaults: the settings every group starts from.

    Subclasses implement :meth:`_update` for one group.
    """

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(
                f"{name}: params must be an iterable of Tensors or of dicts, got a single "
                "Tensor (wrap it in a list)"
            )
        try:
            items = list(params)
        except TypeError:
            raise TypeError(
                f"{name}: params must be an iterable of Tensors or of dicts, "
                f"got {type(params).__name__}"
            ) from None
        if not items:
            raise ValueError(
                f"{name}: got no parameters to optimize (an empty list; did the model "
                "register any, e.g. as nn.Parameter attributes?)"
            )
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}
        groups = items if isinstance(items[0], dict) else [{"params": items}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group of parameters with settings of its own (others from the defaults)."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{name}: a parameter group has no parameters")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{name}: parameter {i} of a group is a {type(p).__name__}, not a Tensor"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"{name}: parameter {i} ({p.name or 'unnamed'}) was computed by "
                    f"{p.op}; only leaf tensors can be optimized"
                )
            if p.data.dtype.kind != "f":
                raise TypeError(
                    f"{name}: parameter {i} ({p.name or 'unnamed'}) has dtype {p.data.dtype}; "
                    "only floating-point tensors can be optimized"
                )
            if id(p) in seen:
                raise ValueError(
                    f"{name}: parameter {p.name or i} appears twice (in one group or in two)"
                )
            seen.add(id(p))
        unknown = set(group) - set(self.defaults) - {"params"} - _EXTRA_SETTINGS
        if unknown:
            raise TypeError(f"{name}: unknown settings {sorted(unknown)} in a parameter group")
        full = {**self.defaults, **group, "params": params}
        self._check(full)
        self.param_groups.append(full)

    def _check(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        for key, value in group.items():
            # Every numeric setting must be a real number; a string or None
            # would otherwise surface as a numpy error deep inside step().
            if key in ("params", "betas") or isinstance(value, bool):
                continue
            if not isinstance(value, numbers.Real) or math.isnan(value):
                raise ValueError(f"{name}: {key} must be a number, got {value!r}")
        lr = group["lr"]
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or lr < 0:
            raise ValueError(f"{type(self).__name__}: lr must be a non-negative number, got {lr!r}")
        if group.get("weight_decay", 0) < 0:
            raise ValueError(
                f"{type(self).__name__}: weight_decay must be non-negative, "
                f"got {group['weight_decay']}"
            )

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of all parameters (to None, or to zeros).

        The zeros are a fresh array without a graph, also where the gradient
        was a graph node (after ``backward(create_graph=True)``): that node,
        which may be in use elsewhere, is left as it is.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad = np.zeros_like(p.data)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every trainable parameter that has a gradient.

        ``closure``, as in PyTorch, is a function that recomputes the loss
        (zeroing the gradients and calling ``backward`` itself); it is called
        first, with recording on, and its loss is returned.  Without one,
        ``step`` returns None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        self._step()
        return loss

    @no_grad()
    def _step(self) -> None:
        for group in self.param_groups:
            live = [p for p in group["params"] if p.requires_grad and p.grad is not None]
            for p in live:
                g = p.grad
                if isinstance(g, Tensor):
                    # After backward(create_graph=True) the gradient is a node
                    # of a graph; the step uses its numbers and, under no_grad,
                    # records nothing through them.
                    g = g.data
                if not isinstance(g, np.ndarray) or g.shape != p.data.shape:
                    raise RuntimeError(
                        f"{type(self).__name__}.step: {p.name or 'a parameter'} has shape "
                        f"{p.data.shape} but its grad is {type(g).__name__} of shape "
                        f"{np.shape(g)}"
                    )
                self._update(p, g, group, self.state.setdefault(id(p), {}))
                # The data changed in place: a graph recorded before this step
                # must not be backpropagated any more (see Tensor._bump).
                p._bump()

    def _update(
        self, p: Tensor, g: np.ndarray, group: dict[str, Any], state: dict[str, Any]
    ) -> None:
        raise NotImplementedError

    # -- saving and loading --------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Settings and state, with parameters referred to by position (0, 1, ...).

        Everything is copied: training on does not change a state dict already taken.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            groups.append(
                {**copy.deepcopy({k: v for k, v in group.items() if k != "params"}), "params": ids}
            )
        state = {index[k]: copy.deepcopy(v) for k, v in self.state.items() if k in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore settings and state from :meth:`state_dict`.

        The groups must hold the same numbers of parameters, and each saved
        buffer must match its parameter's shape and dtype; otherwise nothing
        changes and the error says what differs.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError(
                f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups', "
                f"got {type(state_dict).__name__}"
            )
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the state dict has {len(saved_groups)} parameter "
                f"groups, this optimizer has {len(self.param_groups)}"
            )
        by_index: dict[int, Tensor] = {}
        for k, (mine, saved) in enumerate(zip(self.param_groups, saved_groups)):
            ids = list(saved["params"])
            if len(ids) != len(mine["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: group {k} has {len(ids)} parameters in the state "
                    f"dict but {len(mine['params'])} here"
                )
            for i, p in zip(ids, mine["params"]):
                by_index[int(i)] = p
        new_state: dict[int, dict[str, Any]] = {}
        for key, st in dict(state_dict["state"]).items():
            i = int(key)
            if i not in by_index:
                raise ValueError(f"{name}.load_state_dict: state for unknown parameter {i}")
            p = by_index[i]
            entry = {}
            for sk, sv in st.items():
                if isinstance(sv, np.ndarray):
                    if sv.shape != p.data.shape or sv.dtype != p.data.dtype:
                        raise ValueError(
                            f"{name}.load_state_dict: {sk!r} for parameter {i} "
                            f"({p.name or 'unnamed'}) has shape {sv.shape} and dtype {sv.dtype}; "
                            f"the parameter has shape {p.data.shape} and dtype {p.data.dtype}"
                        )
                    sv = sv.copy()
                entry[sk] = copy.deepcopy(sv)
            new_state[id(p)] = entry
        new_groups = []
        for mine, saved in zip(self.param_groups, saved_groups):
            settings = {k: v for k, v in saved.items() if k != "params"}
            unknown = set(settings) - set(self.defaults) - _EXTRA_SETTINGS
            if unknown:
                raise ValueError(f"{name}.load_state_dict: unknown settings {sorted(unknown)}")
            if "betas" in settings:
                settings["betas"] = tuple(settings["betas"])
            new_groups.append({**mine, **copy.deepcopy(settings), "params": mine["params"]})
        self.param_groups = new_groups
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for k, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {k}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum, as PyTorch defines it.

    For each parameter p with gradient g, at step t::

        g <- g + weight_decay * p
        b <- g                                  (t = 1)
        b <- momentum * b + (1 - dampening) * g (t > 1)
        g <- g + momentum * b  if nesterov, else  g <- b     (when momentum != 0)
        p <- p - lr * g

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter([1.0])
    >>> opt = cr.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     w.sum().backward()          # gradient 1
    ...     opt.step()
    >>> round(float(w.data[0]), 6)      # 1 - 0.1 * 1 - 0.1 * 1.9
    0.71
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
        }
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        _require("SGD", group, "momentum", group["momentum"] >= 0, "non-negative")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")

    def _update(
        self, p: Tensor, g: np.ndarray, group: dict[str, Any], state: dict[str, Any]
    ) -> None:
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        if wd != 0:
            g = g + wd * p.data
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = np.array(g, dtype=p.data.dtype)
                state["momentum_buffer"] = buf
            else:
                buf *= momentum
                buf += (1.0 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= lr * g


class Adam(Optimizer):
    """Adam, with PyTorch's update rule (bias-corrected moment estimates).

    For each parameter p with gradient g, at step t = 1, 2, ...::

        g <- g + weight_decay * p          (L2 penalty folded into the gradient)
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        v_max <- max(v_max, v)             (only with amsgrad; then v_max replaces v below)
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    _decoupled = False

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
        }
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        betas = group["betas"]
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(
                f"{type(self).__name__}: betas must be two numbers in [0, 1), got {betas}"
            )
        _require(type(self).__name__, group, "eps", group["eps"] >= 0, "non-negative")
        group["betas"] = tuple(betas)

    def _update(
        self, p: Tensor, g: np.ndarray, group: dict[str, Any], state: dict[str, Any]
    ) -> None:
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        if wd != 0:
            if self._decoupled:
                p.data *= 1.0 - lr * wd
            else:
                g = g + wd * p.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        if group["amsgrad"]:
            vmax = state.setdefault("max_exp_avg_sq", np.zeros_like(p.data))
            np.maximum(vmax, v, out=vmax)
            v = vmax
        bias1 = 1.0 - beta1**t
        bias2 = 1.0 - beta2**t
        denom = np.sqrt(v) / math.sqrt(bias2) + eps
        p.data -= (lr / bias1) * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter), as PyTorch defines it.

    The decay shrinks the parameter directly, ``p <- p * (1 - lr * weight_decay)``,
    before the Adam step, instead of being added to the gradient.
    """

    _decoupled = True

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


def _require(name: str, group: dict[str, Any], key: str, ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"{name}: {key} must be {what}, got {group[key]!r}")


class RMSprop(Optimizer):
    """RMSprop, as PyTorch defines it (optionally centered, optionally with momentum).

    For each parameter p with gradient g, with v, g_avg and b starting at zero::

        g <- g + weight_decay * p
        v <- alpha * v + (1 - alpha) * g^2
        g_avg <- alpha * g_avg + (1 - alpha) * g      (only when centered)
        d <- sqrt(v - g_avg^2) + eps   if centered, else   d <- sqrt(v) + eps
        b <- momentum * b + g / d,  p <- p - lr * b   (when momentum > 0)
        p <- p - lr * g / d                           (otherwise)

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter([1.0])
    >>> opt = cr.optim.RMSprop([w], lr=0.01, alpha=0.75, eps=0.0)
    >>> w.sum().backward()              # gradient 1, so v = 0.25 and d = 0.5
    >>> opt.step()
    >>> w.data                          # 1 - 0.01 * 1 / 0.5
    array([0.98])
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "centered": centered,
        }
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        _require("RMSprop", group, "alpha", 0.0 <= group["alpha"] <= 1.0, "in [0, 1]")
        _require("RMSprop", group, "eps", group["eps"] >= 0, "non-negative")
        _require("RMSprop", group, "momentum", group["momentum"] >= 0, "non-negative")

    def _update(
        self, p: Tensor, g: np.ndarray, group: dict[str, Any], state: dict[str, Any]
    ) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        wd, momentum = group["weight_decay"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
        state["step"] += 1
        if wd != 0:
            g = g + wd * p.data
        v = state["square_avg"]
        v *= alpha
        v += (1.0 - alpha) * (g * g)
        if group["centered"]:
            g_avg = state.setdefault("grad_avg", np.zeros_like(p.data))
            g_avg *= alpha
            g_avg += (1.0 - alpha) * g
            denom = np.sqrt(v - g_avg * g_avg) + eps
        else:
            denom = np.sqrt(v) + eps
        if momentum > 0:
            buf = state.setdefault("momentum_buffer", np.zeros_like(p.data))
            buf *= momentum
            buf += g / denom
            p.data -= lr * buf
        else:
            p.data -= lr * (g / denom)


class Adagrad(Optimizer):
    """Adagrad, as PyTorch defines it (with learning-rate decay).

    For each parameter p with gradient g, with the sum s starting at
    ``initial_accumulator_value``, at step t = 1, 2, ...::

        g <- g + weight_decay * p
        lr_t <- lr / (1 + (t - 1) * lr_decay)
        s <- s + g^2
        p <- p - lr_t * g / (sqrt(s) + eps)

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter([1.0])
    >>> opt = cr.optim.Adagrad([w], lr=0.1, initial_accumulator_value=3.0, eps=0.0)
    >>> (2 * w).sum().backward()        # gradient 2, so s = 3 + 2^2 = 7
    >>> opt.step()
    >>> round(float(w.data[0]), 6)      # 1 - 0.1 * 2 / sqrt(7)
    0.924407
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "eps": eps,
        }
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        _require("Adagrad", group, "lr_decay", group["lr_decay"] >= 0, "non-negative")
        _require(
            "Adagrad",
            group,
            "initial_accumulator_value",
            group["initial_accumulator_value"] >= 0,
            "non-negative",
        )
        _require("Adagrad", group, "eps", group["eps"] >= 0, "non-negative")

    def _update(
        self, p: Tensor, g: np.ndarray, group: dict[str, Any], state: dict[str, Any]
    ) -> None:
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(p.data, group["initial_accumulator_value"])
        state["step"] += 1
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.data
        clr = group["lr"] / (1.0 + (state["step"] - 1) * group["lr_decay"])
        s = state["sum"]
        s += g * g
        p.data -= clr * (g / (np.sqrt(s) + group["eps"]))


from . import lr_scheduler  # noqa: E402  (it needs Optimizer, defined above)
