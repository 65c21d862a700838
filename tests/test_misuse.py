"""The misuse battery: every wrong call gets a clear error, never a bare traceback.

Each case is a wrong use of chainrule, the error type it must raise, and words
the message must contain: the operation, and the shapes, dtypes, names or
values at fault.  The cases cover the engine, the layers, the losses, the
optimizers and the checkpoints.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.nn import functional as F


@dataclass
class Case:
    name: str
    call: Callable[[Path], object]
    error: type[BaseException]
    says: tuple[str, ...]


def t(shape, name=None, grad=True):
    return cr.Tensor(np.ones(shape), requires_grad=grad, name=name)


def _model():
    cr.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def _saved(tmp: Path) -> Path:
    path = tmp / "model.npz"
    cr.save(_model().state_dict(), path)
    return path


def _truncated(tmp: Path) -> Path:
    path = _saved(tmp)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _corrupted(tmp: Path) -> Path:
    path = _saved(tmp)
    data = bytearray(path.read_bytes())
    for i in range(200, min(len(data), 600)):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def _foreign_npz(tmp: Path) -> Path:
    path = tmp / "other.npz"
    np.savez(path, weights=np.ones(3))
    return path


def _not_a_zip(tmp: Path) -> Path:
    path = tmp / "notes.npz"
    path.write_text("these are not the weights you are looking for")
    return path


def _wrong_shape_state():
    state = _model().state_dict()
    state["0.weight"] = np.ones((5, 3))
    return state


def _wrong_dtype_state():
    state = _model().state_dict()
    state["2.bias"] = state["2.bias"].astype(np.float32)
    return state


def _missing_key_state():
    state = _model().state_dict()
    del state["2.weight"]
    return state


def _extra_key_state():
    state = _model().state_dict()
    state["3.weight"] = np.ones((2, 2))
    return state


def _stale_backward():
    w = t((2, 2), "w")
    loss = (w @ cr.Tensor([1.0, 2.0])).sum()
    with cr.no_grad():
        w.sub_(0.1)
    loss.backward()


def _optimizer_step_then_old_backward():
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    loss = model(cr.Tensor([1.0, 2.0, 3.0])).sum()
    loss.backward()
    opt.step()
    loss.backward()


CASES = [
    # -- shapes in binary ops -------------------------------------------------
    Case("add shapes", lambda _: t((2, 3)) + t((4,)), ValueError, ("add", "(2, 3)", "(4,)")),
    Case("sub shapes", lambda _: t((2, 3)) - t((3, 2)), ValueError, ("sub", "(2, 3)", "(3, 2)")),
    Case("mul shapes", lambda _: t((5,)) * t((4,)), ValueError, ("mul", "(5,)", "(4,)")),
    Case("div shapes", lambda _: t((2, 1, 3)) / t((4, 2)), ValueError, ("div", "(4, 2)")),
    Case("pow shapes", lambda _: t((3,)) ** t((2,)), ValueError, ("pow", "(3,)", "(2,)")),
    Case("maximum shapes", lambda _: cr.maximum(t((3,)), t((2,))), ValueError, ("maximum",)),
    Case(
        "where shapes",
        lambda _: cr.where(np.ones(4, bool), t((3,)), 0.0),
        ValueError,
        ("where", "(4,)", "(3,)"),
    ),
    Case(
        "matmul inner",
        lambda _: t((2, 3), "A") @ t((4, 5), "B"),
        ValueError,
        ("matmul", "(2, 3)", "(4, 5)", "'A'"),
    ),
    Case("matmul scalar", lambda _: t(()) @ t((2,)), ValueError, ("matmul", "()")),
    Case(
        "matmul batch",
        lambda _: t((2, 3, 4)) @ t((5, 4, 2)),
        ValueError,
        ("matmul", "(2, 3, 4)", "(5, 4, 2)"),
    ),
    Case(
        "concatenate",
        lambda _: cr.concatenate([t((2, 3)), t((2, 4))]),
        ValueError,
        ("concatenate", "(2, 3)", "(2, 4)"),
    ),
    Case("stack", lambda _: cr.stack([t((2,)), t((3,))]), ValueError, ("stack", "(2,)", "(3,)")),
    # -- reductions, shape changes, indexing ------------------------------------
    Case("sum axis", lambda _: t((2, 3)).sum(axis=2), ValueError, ("sum", "axis 2", "(2, 3)")),
    Case("mean dim", lambda _: t((2, 3)).mean(dim=-3), ValueError, ("mean", "-3", "(2, 3)")),
    Case("max axis", lambda _: t((4,)).max(axis=1), ValueError, ("max", "axis 1", "(4,)")),
    Case("softmax axis", lambda _: t((2, 2)).softmax(axis=5), ValueError, ("softmax", "5")),
    Case("max of empty", lambda _: t((0,)).max(), ValueError, ("max", "empty", "(0,)")),
    Case(
        "reshape",
        lambda _: t((2, 3), "x").reshape(4, 2),
        ValueError,
        ("reshape", "(2, 3)", "(4, 2)", "6 elements"),
    ),
    Case("transpose", lambda _: t((2, 3)).transpose(0, 0), ValueError, ("transpose", "(0, 0)")),
    Case("index", lambda _: t((3, 2), "x")[5], IndexError, ("getitem", "5", "(3, 2)", "'x'")),
    Case(
        "index array",
        lambda _: t((3,))[np.array([0, 7])],
        IndexError,
        ("getitem", "7", "(3,)"),
    ),
    # -- gradients and backward ---------------------------------------------------
    Case(
        "backward non-scalar",
        lambda _: (t((2, 2)) * 2).backward(),
        RuntimeError,
        ("backward", "(2, 2)", "gradient"),
    ),
    Case(
        "gradient shape",
        lambda _: (t((2, 2)) * 2).backward(np.ones(3)),
        ValueError,
        ("backward", "(3,)", "(2, 2)"),
    ),
    Case(
        "backward without graph",
        lambda _: cr.Tensor([1.0]).sum().backward(),
        RuntimeError,
        ("backward", "does not require grad"),
    ),
    Case(
        "int requires grad",
        lambda _: cr.Tensor([1, 2], requires_grad=True),
        TypeError,
        ("requires_grad", "int64"),
    ),
    Case(
        "bool requires grad",
        lambda _: cr.Tensor([True], requires_grad=True),
        TypeError,
        ("requires_grad", "bool"),
    ),
    Case(
        "in-place on a leaf",
        lambda _: t((2,), "w").add_(1.0),
        RuntimeError,
        ("add_", "'w'", "leaf", "no_grad"),
    ),
    Case(
        "stale saved tensor",
        lambda _: _stale_backward(),
        cr.InplaceError,
        ("matmul", "'w'", "changed in place"),
    ),
    Case(
        "optimizer step before backward",
        lambda _: _optimizer_step_then_old_backward(),
        cr.InplaceError,
        ("changed in place",),
    ),
    # -- operand types ---------------------------------------------------------------
    Case("str + Tensor", lambda _: "a" + t((2,)), TypeError, ("add", "str")),
    Case("Tensor * None", lambda _: t((2,)) * None, TypeError, ("mul", "NoneType")),
    Case("Value / dict", lambda _: cr.Value(1.0) / {}, TypeError, ("div", "dict")),
    Case(
        "Value + Tensor", lambda _: cr.Value(1.0) + t((2,)), TypeError, ("add", "Value", "Tensor")
    ),
    Case(
        "Tensor * Value", lambda _: t((2,)) * cr.Value(2.0), TypeError, ("mul", "Tensor", "Value")
    ),
    Case("Value of a string", lambda _: cr.Value("3"), TypeError, ("Value", "str")),
    Case("Tensor of strings", lambda _: cr.Tensor(["a", "b"]), TypeError, ("Tensor", "dtype")),
    # -- losses -------------------------------------------------------------------------
    Case(
        "mse target shape",
        lambda _: F.mse_loss(t((4, 2)), np.zeros((4, 3))),
        ValueError,
        ("mse_loss", "(4, 2)", "(4, 3)"),
    ),
    Case(
        "bce target shape",
        lambda _: F.binary_cross_entropy(t((3,)) * 0.5, np.zeros(4)),
        ValueError,
        ("binary_cross_entropy", "(3,)", "(4,)"),
    ),
    Case(
        "cross-entropy class out of range",
        lambda _: F.cross_entropy(t((2, 3)), np.array([0, 3])),
        ValueError,
        ("cross_entropy", "3"),
    ),
    Case(
        "cross-entropy negative class",
        lambda _: F.cross_entropy(t((2, 3)), np.array([-1, 0])),
        ValueError,
        ("cross_entropy", "-1"),
    ),
    Case(
        "cross-entropy target shape",
        lambda _: F.cross_entropy(t((2, 3)), np.array([0, 1, 2])),
        ValueError,
        ("cross_entropy", "(3,)"),
    ),
    Case(
        "cross-entropy float classes",
        lambda _: F.cross_entropy(t((2, 3)), np.array([0.5, 1.0])),
        TypeError,
        ("cross_entropy", "float64"),
    ),
    Case(
        "loss reduction",
        lambda _: F.mse_loss(t((2,)), np.zeros(2), reduction="avg"),
        ValueError,
        ("mse_loss", "'avg'"),
    ),
    # -- modules ------------------------------------------------------------------------
    Case(
        "linear input width",
        lambda _: nn.Linear(3, 2)(t((4, 5))),
        ValueError,
        ("(4, 5)", "3"),
    ),
    Case("module with no input", lambda _: nn.Linear(3, 2)(), TypeError, ("Linear", "0")),
    Case(
        "module with two inputs",
        lambda _: nn.Tanh()(t((2,)), t((2,))),
        TypeError,
        ("Tanh", "2"),
    ),
    Case(
        "load_state_dict missing",
        lambda _: _model().load_state_dict(_missing_key_state()),
        RuntimeError,
        ("load_state_dict", "missing", "2.weight"),
    ),
    Case(
        "load_state_dict unexpected",
        lambda _: _model().load_state_dict(_extra_key_state()),
        RuntimeError,
        ("load_state_dict", "unexpected", "3.weight"),
    ),
    Case(
        "load_state_dict shape",
        lambda _: _model().load_state_dict(_wrong_shape_state()),
        RuntimeError,
        ("load_state_dict", "0.weight", "(5, 3)", "(4, 3)"),
    ),
    Case(
        "load_state_dict dtype",
        lambda _: _model().load_state_dict(_wrong_dtype_state()),
        RuntimeError,
        ("load_state_dict", "2.bias", "float32", "float64"),
    ),
    # -- optimizers -----------------------------------------------------------------------
    Case("optimizer without parameters", lambda _: optim.SGD([], lr=0.1), ValueError, ("SGD",)),
    Case(
        "optimizer negative lr",
        lambda _: optim.Adam(_model().parameters(), lr=-1.0),
        ValueError,
        ("Adam", "-1"),
    ),
    # -- checkpoints ------------------------------------------------------------------------
    Case(
        "load truncated",
        lambda tmp: cr.load(_truncated(tmp)),
        cr.serialization.CheckpointError,
        ("model.npz",),
    ),
    Case(
        "load corrupted",
        lambda tmp: cr.load(_corrupted(tmp)),
        cr.serialization.CheckpointError,
        ("model.npz",),
    ),
    Case(
        "load foreign npz",
        lambda tmp: cr.load(_foreign_npz(tmp)),
        cr.serialization.CheckpointError,
        ("other.npz", "chainrule"),
    ),
    Case(
        "load not a zip",
        lambda tmp: cr.load(_not_a_zip(tmp)),
        cr.serialization.CheckpointError,
        ("notes.npz",),
    ),
    Case(
        "load missing file",
        lambda tmp: cr.load(tmp / "nowhere.npz"),
        FileNotFoundError,
        ("nowhere.npz",),
    ),
    Case(
        "save an object",
        lambda tmp: cr.save({"f": object()}, tmp / "x.npz"),
        TypeError,
        ("save", "object"),
    ),
]


def test_different_mistakes_get_different_messages(tmp_path):
    # No catch-all text: each wrong call is told what is wrong with it.  (All
    # cases share one folder, so file names alone cannot make messages differ.)
    said: dict[str, list[str]] = {}
    for case in CASES:
        with pytest.raises(case.error) as info:
            case.call(tmp_path)
        said.setdefault(str(info.value), []).append(case.name)
    shared = {message: names for message, names in said.items() if len(names) > 1}
    assert not shared, f"one message for several mistakes: {shared}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_misuse_gets_a_clear_error(case, tmp_path):
    with pytest.raises(case.error) as info:
        case.call(tmp_path)
    message = str(info.value)
    for word in case.says:
        assert word in message, f"{case.name}: {word!r} not in {message!r}"
    # Raised by chainrule itself, with its own words: the innermost frame is ours.
    frames = traceback.extract_tb(info.tb)
    chainrule_dir = os.path.dirname(cr.__file__)
    assert frames[-1].filename.startswith(chainrule_dir), (case.name, frames[-1])
