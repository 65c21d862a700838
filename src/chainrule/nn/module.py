"""Module and Parameter: the bookkeeping a neural network needs around its tensors.

A :class:`Module` holds :class:`Parameter` tensors and other modules as
ordinary attributes.  Assigning one registers it, so the module can list its
parameters (for an optimizer), save and restore them (``state_dict``), and
switch them all between training and evaluation, frozen or trainable.

Names.  Every module knows its dotted path from the root module the user
built (``"layers.0"``, ``"hidden"``; the root itself has the empty name), and
every parameter's ``name`` is its dotted path (``"hidden.weight"``).  Those
names are what graph pictures and explanations show, and calling a module
runs its ``forward`` inside :class:`chainrule.engine.scope` with the module's
dotted name, so every value it computes records which module made it.  The
root module runs without a scope of its own, so what it computes directly
belongs to no module.

A module registered in two places keeps the name of the first; a parameter
registered in two places takes the name of the last.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from ..modes import scope
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a :class:`Module` registers as one of its parameters.

    It requires grad unless told otherwise, and its data is always a copy in
    a floating-point dtype (float64 unless the data or ``dtype`` says else).

    >>> from chainrule import nn
    >>> p = nn.Parameter([1.0, 2.0])
    >>> p.requires_grad, p.dtype
    (True, dtype('float64'))
    """

    __slots__ = ()

    def __init__(
        self,
        data: Any,
        requires_grad: bool = True,
        dtype: Any = None,
        name: str | None = None,
    ) -> None:
        super().__init__(data, requires_grad=False, dtype=dtype, name=name)
        if self.data.dtype.kind != "f":
            if dtype is not None:
                raise TypeError(
                    f"Parameter: dtype must be a floating-point type, got {self.data.dtype}"
                )
            self.data = self.data.astype(np.float64)
        self.requires_grad_(requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` did not match (with ``strict=False``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


class Module:
    """Base class of every layer and model.

    Subclasses set their parameters and sub-modules as attributes in
    ``__init__`` (after calling ``super().__init__()``) and define
    ``forward``.  Calling the module calls ``forward``.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden = nn.Linear(2, 3)
    ...         self.out = nn.Linear(3, 1)
    ...     def forward(self, x):
    ...         return self.out(self.hidden(x).tanh())
    >>> net = Net()
    >>> [name for name, _ in net.named_parameters()]
    ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']
    >>> net.hidden.weight.name
    'hidden.weight'
    >>> net(cr.Tensor([[0.5, -1.0]])).shape
    (1, 1)
    """

    training: bool
    _parameters: dict[str, Parameter | None]
    _modules: dict[str, Module]
    _parent: weakref.ReferenceType[Module] | None
    _key: str

    def __init__(self) -> None:
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = {}
        d["_modules"] = {}
        d["_parent"] = None
        d["_key"] = ""

    # -- registration -----------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if "_modules" not in d:
            raise AttributeError(
                f"{type(self).__name__}: cannot set attribute {name!r} before "
                "Module.__init__() has run (call super().__init__() first)"
            )
        params, mods = d["_parameters"], d["_modules"]
        if isinstance(value, Parameter):
            self._forget(name)
            params[name] = value
            object.__setattr__(self, name, value)
            value.name = _join(self._full_name(), name)
        elif isinstance(value, Module):
            self._check_not_ancestor(value, name)
            self._forget(name)
            mods[name] = value
            object.__setattr__(self, name, value)
            self._adopt(name, value)
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign a {type(value).__name__} to parameter "
                    f"{name!r}; assign an nn.Parameter or None (or change .data in place)"
                )
            params[name] = None
            object.__setattr__(self, name, None)
        elif name in mods:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign a {type(value).__name__} to "
                    f"sub-module {name!r}; assign an nn.Module or None"
                )
            self._forget(name)
            object.__setattr__(self, name, None)
        else:
            object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._forget(name)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or an empty slot, with None) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"register_parameter: {name!r} must be an nn.Parameter or None, "
                f"got {type(param).__name__}"
            )
        if param is None:
            self._forget(name)
            self._parameters[name] = None
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as a child called ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(
                f"add_module: {name!r} must be an nn.Module or None, got {type(module).__name__}"
            )
        if module is None:
            self._forget(name)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, module)

    def _forget(self, name: str) -> None:
        """Drop ``name`` from the registries; a child module it held becomes a root."""
        self._parameters.pop(name, None)
        old = self._modules.get(name)
        if old is None:
            return
        is_home = old._parent_module() is self
        del self._modules[name]
        if is_home:
            old.__dict__["_parent"] = None
            old.__dict__["_key"] = ""
            old._rename_subtree()

    def _check_not_ancestor(self, value: Module, name: str) -> None:
        m: Module | None = self
        while m is not None:
            if m is value:
                raise ValueError(
                    f"{type(self).__name__}: cannot register {type(value).__name__} as "
                    f"{name!r}: it contains this module, so the modules would form a loop"
                )
            m = m._parent_module()

    def _adopt(self, key: str, child: Module) -> None:
        """Make ``child``'s dotted name run through this module, unless it already has a home."""
        if child._parent_module() is not None:
            return  # registered elsewhere first: it keeps that name
        child.__dict__["_parent"] = weakref.ref(self)
        child.__dict__["_key"] = key
        child._rename_subtree()

    def _parent_module(self) -> Module | None:
        ref = self.__dict__["_parent"]
        if ref is None:
            return None
        parent = ref()
        if parent is None or parent._modules.get(self._key) is not self:
            return None
        return parent

    def _full_name(self) -> str:
        """The dotted path from the root module ("" for the root)."""
        parts = []
        m = self
        parent = m._parent_module()
        while parent is not None:
            parts.append(m._key)
            m, parent = parent, parent._parent_module()
        return ".".join(reversed(parts))

    def _rename_subtree(self) -> None:
        """Give every parameter below this module its current dotted name."""
        for m in self.modules():
            prefix = m._full_name()
            for key, p in m._parameters.items():
                if p is not None:
                    p.name = _join(prefix, key)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_parent"] = None  # a weak reference cannot be copied; the parent re-adopts
        state["_key"] = ""
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for key, child in self._modules.items():
            self._adopt(key, child)
        self._rename_subtree()

    # -- calling -----------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation; every subclass defines it."""
        raise NotImplementedError(f"{type(self).__name__} has no forward() method")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = self._full_name()
        try:
            if not name:
                return self.forward(*args, **kwargs)
            with scope(name):
                return self.forward(*args, **kwargs)
        except TypeError as e:
            self._explain_call(e, args, kwargs)
            raise

    def _explain_call(
        self, error: TypeError, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Turn a mismatch between the call and ``forward``'s signature into a clear error."""
        try:
            sig = inspect.signature(self.forward)
        except (TypeError, ValueError):
            return
        try:
            sig.bind(*args, **kwargs)
        except TypeError as bad:
            name = self._full_name()
            label = f"{type(self).__name__} ({name})" if name else type(self).__name__
            plain = ", ".join(
                str(q.replace(annotation=inspect.Parameter.empty)) for q in sig.parameters.values()
            )
            raise TypeError(
                f"{label}: forward({plain}) was called with {len(args)} "
                f"positional input(s){' and ' + str(sorted(kwargs)) if kwargs else ''}: {bad}"
            ) from error

    # -- walking the tree --------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every module below it, each once, with dotted names."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            for key, child in reversed(list(m._modules.items())):
                stack.append((_join(name, key), child))

    def modules(self) -> Iterator[Module]:
        """This module and every module below it, each once."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct sub-modules with their attribute names."""
        seen: set[int] = set()
        for key, m in self._modules.items():
            if id(m) not in seen:
                seen.add(id(m))
                yield key, m

    def children(self) -> Iterator[Module]:
        """The direct sub-modules."""
        for _, m in self.named_children():
            yield m

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name (``layers.0.weight``), each once."""
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for name, m in mods:
            for key, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield _join(name, key), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter, each once, in registration order."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    # -- training state ------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (or fill it with zeros)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = np.zeros_like(p.data)

    def train(self, mode: bool = True) -> Module:
        """Put this module and all below it in training mode (or evaluation with False)."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self) -> Module:
        """Put this module and all below it in evaluation mode."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter below this module.

        A frozen parameter takes part in the forward computation as a
        constant: backward gives it no gradient and optimizers skip it.
        """
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every module below this one (children first) and on itself."""
        for m in reversed(list(self.modules())):
            fn(m)
        return self

    # -- saving and loading -----------------------------------------------------------
    def state_dict(self, prefix: str = "") -> dict[str, np.ndarray]:
        """A copy of every parameter's data, keyed by dotted name.

        The arrays are copies, so training on does not change a state dict
        already taken.
        """
        return {name: p.data.copy() for name, p in self.named_parameters(prefix)}

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into the parameters, in place.

        Everything is checked before anything is written: missing keys and
        unexpected keys (when ``strict``), and any shape or dtype that differs
        from the parameter's, are all reported by name in one error, and the
        module is left exactly as it was.

        Returns:
            ``IncompatibleKeys(missing_keys, unexpected_keys)`` (both empty
            when ``strict`` succeeds).
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"load_state_dict: expected a dict of arrays, got {type(state_dict).__name__}"
            )
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [str(k) for k in state_dict if k not in own]
        problems: list[str] = []
        if strict:
            if missing:
                problems.append(f"missing keys: {', '.join(missing)}")
            if unexpected:
                problems.append(f"unexpected keys: {', '.join(unexpected)}")
        staged: list[tuple[Parameter, np.ndarray]] = []
        for key, p in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            arr = value.data if isinstance(value, Tensor) else value
            if not isinstance(arr, np.ndarray):
                problems.append(
                    f"{key}: expected a numpy array or Tensor, got {type(value).__name__}"
                )
                continue
            if arr.shape != p.data.shape:
                problems.append(
                    f"{key}: shape {arr.shape} in the state dict, {p.data.shape} in the model"
                )
            elif arr.dtype != p.data.dtype:
                problems.append(
                    f"{key}: dtype {arr.dtype} in the state dict, {p.data.dtype} in the model"
                )
            else:
                staged.append((p, arr))
        if problems:
            raise RuntimeError(
                f"load_state_dict for {type(self).__name__}: nothing was loaded, because of\n  "
                + "\n  ".join(problems)
            )
        for p, arr in staged:
            np.copyto(p.data, arr)
            p._bump()
        return IncompatibleKeys(missing, unexpected)

    # -- printing ------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's one-line description."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        if not self._modules:
            return f"{type(self).__name__}({extra})"
        lines = [f"{type(self).__name__}("]
        if extra:
            lines.append("  " + extra.replace("\n", "\n  "))
        for key, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({key}): {body}")
        lines.append(")")
        return "\n".join(lines)


def _unclaimed(cls: type[Module], modules: Iterable[Module]) -> Module:
    """A container holding ``modules`` without taking over their names (for slices)."""
    out = cls.__new__(cls)
    Module.__init__(out)
    for i, m in enumerate(modules):
        out._modules[str(i)] = m
        object.__setattr__(out, str(i), m)
    return out


class _Container(Module):
    """What Sequential and ModuleList share: children ``"0"``, ``"1"``, ... in order."""

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Any:
        items = list(self._modules.values())
        if isinstance(index, slice):
            return _unclaimed(type(self), items[index])
        return items[_check_index(index, len(items), type(self).__name__)]


class Sequential(_Container):
    """Modules applied one after another: ``Sequential(a, b, c)(x) = c(b(a(x)))``.

    Children are named ``"0"``, ``"1"``, ... so parameters read
    ``0.weight``, ``2.bias``.

    >>> from chainrule import nn
    >>> net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    >>> net
    Sequential(
      (0): Linear(in_features=2, out_features=4, bias=True)
      (1): Tanh()
      (2): Linear(in_features=4, out_features=1, bias=True)
    )
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(
                    f"Sequential: argument {i} is a {type(m).__name__}, not an nn.Module"
                )
            self.add_module(str(i), m)

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end."""
        if not isinstance(module, Module):
            raise TypeError(
                f"Sequential.append: expected an nn.Module, got {type(module).__name__}"
            )
        self.add_module(str(len(self._modules)), module)
        return self

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x


class ModuleList(_Container):
    """A list of modules whose parameters the parent registers.

    A plain Python list of modules would hide them from ``parameters()``;
    this one registers them under ``"0"``, ``"1"``, ...

    >>> from chainrule import nn
    >>> class Deep(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    >>> [n for n, _ in Deep().named_parameters()][:3]
    ['layers.0.weight', 'layers.0.bias', 'layers.1.weight']
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __setitem__(self, index: int, module: Module) -> None:
        i = _check_index(index, len(self._modules), "ModuleList")
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: expected an nn.Module, got {type(module).__name__}")
        self.add_module(str(i), module)

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end."""
        if not isinstance(module, Module):
            raise TypeError(
                f"ModuleList.append: expected an nn.Module, got {type(module).__name__}"
            )
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Add each of ``modules`` at the end."""
        for m in modules:
            self.append(m)
        return self

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "ModuleList has no forward(); iterate over it and call each module"
        )


def _check_index(index: Any, n: int, where: str) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"{where}: index must be an int or a slice, got {type(index).__name__}")
    if not -n <= index < n:
        raise IndexError(f"{where}: index {index} is out of range for {n} modules")
    return int(index) % n
