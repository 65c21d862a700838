"""Bad input raises an error whose message names the operation and what was wrong."""

from __future__ import annotations

import operator
import re
from typing import Any

import numpy as np
import pytest

import chainrule as cr


def says(*parts: str) -> str:
    """A pattern for ``pytest.raises(match=...)``: the message contains every part, in any order."""
    return "(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts)


@pytest.fixture
def t23() -> cr.Tensor:
    return cr.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)


def test_says_helper():
    assert re.match(says("b", "a"), "a then b")
    assert not re.match(says("a", "c"), "a then b")


# ---------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sa", "sb", "why"),
    [
        ((2, 3), (4, 5), "a has 3 columns but b has 4 rows"),
        ((2, 3), (4,), "a has 3 columns but b has 4 rows"),
        ((5,), (2, 3), "a has 5 columns but b has 2 rows"),
        ((2, 2, 3), (3, 3, 4), "batch shapes (2,) and (3,) do not broadcast"),
    ],
)
def test_matmul_shapes_that_do_not_align(sa, sb, why):
    a = cr.Tensor(np.ones(sa), requires_grad=True)
    b = cr.Tensor(np.ones(sb))
    with pytest.raises(ValueError, match=says("matmul", str(sa), str(sb), why)):
        a @ b


def test_matmul_with_a_scalar_operand():
    a = cr.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=says("matmul", "()", "(2, 3)", "at least one dimension")):
        a @ cr.Tensor(2.0)


def test_matmul_error_names_named_operands():
    a = cr.Tensor(np.ones((2, 3)), name="W")
    b = cr.Tensor(np.ones((4,)), name="x")
    with pytest.raises(ValueError, match=says("matmul", "'W'", "'x'")):
        a @ b


BINARY: dict[str, Any] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "pow": operator.pow,
    "maximum": cr.maximum,
    "minimum": cr.minimum,
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("right", ["tensor", "ndarray"])
def test_broadcasting_mismatch_in_each_binary_op(name, right):
    a = cr.Tensor(np.ones((2, 3)), requires_grad=True)
    b_data = np.ones((4,))
    b = cr.Tensor(b_data) if right == "tensor" else b_data
    fn = BINARY[name]
    with pytest.raises(ValueError, match=says(name, "cannot broadcast", "(2, 3)", "(4,)")):
        fn(a, b)
    with pytest.raises(ValueError, match=says(name, "cannot broadcast", "(4,)", "(2, 3)")):
        fn(b, a)


def test_broadcasting_mismatch_in_where():
    a = cr.Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=says("where", "(2, 3)", "(4,)")):
        cr.where(np.ones((2, 3), dtype=bool), a, cr.Tensor(np.ones(4)))


@pytest.mark.parametrize("op", [operator.lt, operator.eq, operator.ge])
def test_broadcasting_mismatch_in_comparisons(op):
    a = cr.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=says("compare", "(2, 3)", "(4,)")):
        op(a, cr.Tensor(np.ones(4)))


@pytest.mark.parametrize("shape", [(4, 2), (-1, 4), (7,), (2, 2, 2)])
def test_reshape_to_an_incompatible_size(t23, shape):
    with pytest.raises(ValueError, match=says("reshape", "(2, 3)", "6 elements", str(shape))):
        t23.reshape(*shape)


def test_broadcast_to_an_incompatible_shape(t23):
    with pytest.raises(ValueError, match=says("broadcast_to", "(2, 3)", "(4,)")):
        t23.broadcast_to((4,))


@pytest.mark.parametrize(
    ("index", "detail"),
    [
        (5, "index 5 is out of bounds for axis 0 with size 2"),
        ((0, 7), "index 7 is out of bounds for axis 1 with size 3"),
        (-3, "index -3 is out of bounds for axis 0 with size 2"),
        ([0, 9], "index 9 is out of bounds"),
        ((0, 0, 0), "too many indices"),
    ],
)
def test_index_out_of_range(t23, index, detail):
    with pytest.raises(IndexError, match=says("getitem", "(2, 3)", detail)):
        t23[index]


def test_index_with_a_tensor_out_of_range(t23):
    with pytest.raises(IndexError, match=says("getitem", "(2, 3)", "index 9")):
        t23[cr.Tensor([0, 9])]


def test_index_error_names_a_named_tensor():
    t = cr.Tensor(np.ones(3), name="h")
    with pytest.raises(IndexError, match=says("getitem", "'h'", "(3,)", "index 3")):
        t[3]


@pytest.mark.parametrize("method", ["sum", "mean", "max", "min", "logsumexp"])
@pytest.mark.parametrize("axis", [2, -3, (0, 5)])
def test_reduction_over_an_axis_that_does_not_exist(t23, method, axis):
    bad = axis[1] if isinstance(axis, tuple) else axis
    with pytest.raises(
        ValueError, match=says(f"{method}: axis {bad}", "out of range", "2 dimensions", "(2, 3)")
    ):
        getattr(t23, method)(axis=axis)


@pytest.mark.parametrize("method", ["sum", "mean", "max", "min", "softmax", "log_softmax"])
def test_reduction_over_a_bad_dim(t23, method):
    with pytest.raises(ValueError, match=says(f"{method}: axis 3", "(2, 3)")):
        getattr(t23, method)(dim=3)


def test_reduction_axis_repeated(t23):
    with pytest.raises(ValueError, match=says("sum", "(0, 0)", "repeats")):
        t23.sum(axis=(0, 0))


def test_reduction_over_an_empty_axis():
    t = cr.Tensor(np.ones((0, 3)), requires_grad=True)
    for method in ("max", "min"):
        with pytest.raises(ValueError, match=says(method, "empty", "(0, 3)")):
            getattr(t, method)(axis=0)


@pytest.mark.parametrize("perm", [(0, 0), (0, 2), (0, 1, 2), (1,)])
def test_transpose_with_a_bad_permutation(t23, perm):
    with pytest.raises(ValueError, match=says("transpose", str(perm), "permutation", "(2, 3)")):
        t23.transpose(perm)


def test_swapaxes_out_of_range(t23):
    with pytest.raises(ValueError, match=says("swapaxes", "axis 4", "2 dimensions")):
        t23.swapaxes(0, 4)


@pytest.mark.parametrize(("fn", "name"), [(cr.concatenate, "concatenate"), (cr.stack, "stack")])
def test_joining_mismatched_shapes(t23, fn, name):
    other = cr.Tensor(np.ones((3, 3)))
    with pytest.raises(ValueError, match=says(name, "(2, 3)", "(3, 3)")):
        fn([t23, other], axis=1 if name == "concatenate" else 0)


# ---------------------------------------------------------------------------
# Dtypes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "dtype"), [([1, 2], "int64"), ([True, False], "bool"), ([1, 2], "int32")]
)
def test_requires_grad_on_integer_or_bool_data(data, dtype):
    with pytest.raises(TypeError, match=says("requires_grad", "floating-point", dtype)):
        cr.Tensor(data, requires_grad=True, dtype=dtype)
    t = cr.Tensor(data, dtype=dtype)
    with pytest.raises(TypeError, match=says("requires_grad", "floating-point", dtype)):
        t.requires_grad_()
    assert not t.requires_grad


@pytest.mark.parametrize(
    ("cond", "dtype"),
    [
        (np.ones((2, 3)), "float64"),
        (np.ones((2, 3), dtype=np.int64), "int64"),
        (cr.Tensor(np.ones((2, 3))), "float64"),
    ],
)
def test_where_with_a_non_bool_cond(t23, cond, dtype):
    with pytest.raises(TypeError, match=says("where", "cond", "boolean", dtype)):
        cr.where(cond, t23, 0.0)


def test_gradcheck_with_float32_input():
    x = cr.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    with pytest.raises(TypeError, match=says("gradcheck", "input 0", "float32", "float64")):
        cr.gradcheck(lambda t: (t * t).sum(), [x])
    with pytest.raises(TypeError, match=says("gradgradcheck", "input 0", "float32")):
        cr.gradgradcheck(lambda t: (t * t).sum(), [x])


def test_tensor_from_strings():
    with pytest.raises(TypeError, match=says("Tensor", "real numbers", "<U")):
        cr.Tensor(["a", "b"])


def test_tensor_from_ragged_lists():
    with pytest.raises(TypeError, match=says("Tensor", "cannot make a numeric array")):
        cr.Tensor([[1.0, 2.0], [3.0]])


def test_value_from_a_non_number():
    for bad, kind in [("x", "str"), (None, "NoneType"), ([1.0], "list"), (np.ones(2), "ndarray")]:
        with pytest.raises(TypeError, match=says("Value", "real number", kind)):
            cr.Value(bad)


def test_astype_to_int_while_requiring_grad(t23):
    with pytest.raises(TypeError, match=says("astype", "requires grad", "int64")):
        t23.astype(np.int64)


@pytest.mark.parametrize(
    ("base", "exponent"),
    [
        (cr.Tensor([1, 2]), -1),
        (cr.Tensor([1, 2]), cr.Tensor([2, -1])),
        (cr.Tensor([[1], [2]]), np.array([3, -2])),  # broadcasts: the exponent is the fault
        (2, cr.Tensor([1, -1])),
        (cr.Tensor([True, False]), -2),
    ],
)
def test_integer_to_a_negative_integer_power(base, exponent):
    with pytest.raises(ValueError, match=says("pow", "negative integer power", "float")) as info:
        base**exponent
    assert "broadcast" not in str(info.value)


def test_integer_powers_that_work():
    """Non-negative integer exponents stay integer; a float exponent or base gives floats."""
    np.testing.assert_array_equal((cr.Tensor([2, 3]) ** 2).data, [4, 9])
    np.testing.assert_array_equal((cr.Tensor([2, 4]) ** -1.0).data, [0.5, 0.25])
    np.testing.assert_array_equal((cr.Tensor([2, 4]).astype(float) ** -1).data, [0.5, 0.25])


def test_a_shape_mismatch_is_reported_before_a_negative_power():
    with pytest.raises(ValueError, match=says("pow", "cannot broadcast", "(2,)", "(3,)")):
        cr.Tensor([1, 2]) ** cr.Tensor([-1, -1, -1])


@pytest.mark.parametrize(
    ("fn", "kind", "parts"),
    [
        # numpy defines no subtraction of booleans
        (lambda: cr.Tensor([True]) - cr.Tensor([False]), TypeError, ("sub (a - b)", "bool")),
        # a Python int that the integer dtype cannot hold
        (lambda: cr.Tensor(np.int8([1])) + 1000, OverflowError, ("add", "int8", "1000")),
        (lambda: cr.Tensor(np.uint8([1])) * -1, OverflowError, ("mul", "uint8", "-1")),
        (lambda: -cr.Tensor([True]), TypeError, ("neg (-a)", "bool")),
    ],
)
def test_other_numpy_refusals_are_named_not_called_broadcasting(fn, kind, parts):
    with pytest.raises(kind, match=says(*parts)) as info:
        fn()
    assert "broadcast" not in str(info.value)


# ---------------------------------------------------------------------------
# backward and grad
# ---------------------------------------------------------------------------


def test_backward_on_a_non_scalar_without_gradient(t23):
    y = t23 * 2
    with pytest.raises(RuntimeError, match=says("backward", "(2, 3)", "non-scalar", "gradient")):
        y.backward()


def test_grad_on_a_non_scalar_without_grad_outputs(t23):
    with pytest.raises(RuntimeError, match=says("grad (outputs[0])", "(2, 3)", "non-scalar")):
        cr.grad(t23 * 2, t23)


@pytest.mark.parametrize("shape", [(3, 2), (6,), ()])
def test_gradient_of_the_wrong_shape(t23, shape):
    y = t23 * 2
    with pytest.raises(ValueError, match=says("backward", str(shape), "(2, 3)", "must match")):
        y.backward(np.ones(shape))
    with pytest.raises(ValueError, match=says("backward", str(shape), "(2, 3)")):
        y.backward(cr.Tensor(np.ones(shape)))
    with pytest.raises(ValueError, match=says("grad (outputs[0])", str(shape), "(2, 3)")):
        cr.grad(y, t23, grad_outputs=np.ones(shape))


def test_gradient_of_the_wrong_shape_for_a_value():
    y = cr.Value(2.0) * 3
    with pytest.raises(ValueError, match=says("backward", "(2,)", "scalar")):
        y.backward(np.ones(2))


def test_gradient_that_is_not_a_number():
    with pytest.raises(TypeError, match=says("backward", "Value", "number", "str")):
        (cr.Value(2.0) * 3).backward("one")
    t = cr.Tensor(1.0, requires_grad=True)
    with pytest.raises(TypeError, match=says("backward", "real numbers", "dtype")):
        (t * 3).backward(np.array("one"))


def test_backward_without_a_graph():
    y = cr.Tensor([1.0, 2.0], name="y").sum()
    with pytest.raises(RuntimeError, match=says("backward", "does not require grad")):
        y.backward()
    with pytest.raises(RuntimeError, match=says("backward", "Value", "does not require grad")):
        cr.Value(1.0, requires_grad=False).backward()


# ---------------------------------------------------------------------------
# Operand types
# ---------------------------------------------------------------------------

ARITH = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "pow": operator.pow,
}
BAD_OPERANDS = [
    pytest.param("x", "str", id="str"),
    pytest.param(None, "NoneType", id="None"),
    pytest.param({"a": 1}, "dict", id="dict"),
    pytest.param(object(), "object", id="object"),
    pytest.param(1j, "complex", id="complex"),
]


@pytest.mark.parametrize("name", sorted(ARITH))
@pytest.mark.parametrize(("bad", "kind"), BAD_OPERANDS)
def test_unsupported_operand_for_a_value_on_both_sides(name, bad, kind):
    v = cr.Value(2.0)
    fn = ARITH[name]
    expected = says(f"{name}: unsupported operand type {kind}", "Value")
    with pytest.raises(TypeError, match=expected):
        fn(v, bad)
    with pytest.raises(TypeError, match=expected):
        fn(bad, v)


@pytest.mark.parametrize("name", [*sorted(ARITH), "matmul"])
@pytest.mark.parametrize(("bad", "kind"), BAD_OPERANDS)
def test_unsupported_operand_for_a_tensor_on_both_sides(name, bad, kind):
    t = cr.Tensor(np.ones(2), requires_grad=True)
    fn = operator.matmul if name == "matmul" else ARITH[name]
    expected = says(f"{name}: unsupported operand type {kind}", "Tensor")
    with pytest.raises(TypeError, match=expected):
        fn(t, bad)
    with pytest.raises(TypeError, match=expected):
        fn(bad, t)


def test_value_with_an_array_operand():
    v = cr.Value(2.0)
    with pytest.raises(TypeError, match=says("mul", "unsupported operand type ndarray", "Value")):
        v * np.ones(3)
    with pytest.raises(TypeError, match=says("mul", "unsupported operand type ndarray", "Value")):
        np.ones(3) * v


def test_tensor_with_a_list_of_strings():
    t = cr.Tensor(np.ones(2))
    with pytest.raises(TypeError, match=says("add", "unsupported operand", "<U1")):
        t + ["a", "b"]


@pytest.mark.parametrize("name", [*sorted(ARITH), "matmul"])
def test_mixing_value_and_tensor(name):
    v = cr.Value(2.0)
    t = cr.Tensor(np.ones(2), requires_grad=True)
    fn = operator.matmul if name == "matmul" else ARITH[name]
    with pytest.raises(TypeError, match=says(name, "cannot mix", "Value", "Tensor")):
        fn(v, t)
    with pytest.raises(TypeError, match=says(name, "cannot mix", "Tensor", "Value")):
        fn(t, v)


def test_mixing_value_and_tensor_in_functions_and_constructors():
    v = cr.Value(2.0)
    t = cr.Tensor(np.ones(2), requires_grad=True)
    for fn, name in [
        (lambda: cr.maximum(t, v), "maximum"),
        (lambda: cr.where(np.array([True, False]), t, v), "where"),
        (lambda: cr.concatenate([t, v]), "concatenate"),
        (lambda: t < v, "<"),
    ]:
        with pytest.raises(TypeError, match=says(name, "cannot mix", "Value")):
            fn()
    with pytest.raises(TypeError, match=says("Tensor", "from a Value")):
        cr.Tensor(v)
    with pytest.raises(TypeError, match=says("Value", "Tensor")):
        cr.Value(t)
