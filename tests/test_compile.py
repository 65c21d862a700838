"""chainrule.compile: compiled programs against the eager engine, and their source as source."""

from __future__ import annotations

import ast
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rule_table import REGISTRY, VALUE_CASES, _cases, _outputs

import chainrule as cr
from chainrule import func, nn
from chainrule.compiler import EMITTERS
from chainrule.nn import functional as F
from chainrule.tutorial.network import build_values
from chainrule.tutorial.reference import WEIGHT_NAMES, WEIGHTS

# -- every op of the rule table -------------------------------------------------


def test_every_op_in_the_table_has_an_emitter() -> None:
    missing = sorted(set(cr.OPS) - set(EMITTERS))
    assert not missing, f"ops in chainrule.OPS that compile cannot write as Python: {missing}"


def _with_grads(fn: Any, n: int) -> Any:
    """``fn``'s outputs and the gradient of sum(output * cotangent) by each input."""

    def both(*args: Any) -> Any:
        xs, cots = args[:n], args[n:]
        outs = _outputs(fn(*xs))
        total = sum((o * c).sum() for o, c in zip(outs, cots))
        grads = cr.grad(total, list(xs), allow_unused=True)
        return outs, [g if g is not None else 0.0 * x for g, x in zip(grads, xs)]

    return both


def _eager(fn: Any, n: int, arrays: list[np.ndarray]) -> Any:
    leaves = [cr.Tensor(a, requires_grad=True) for a in arrays[:n]]
    outs, grads = _with_grads(fn, n)(*leaves, *[cr.Tensor(c) for c in arrays[n:]])
    return [o.data for o in outs], [g.data for g in grads]


def _close(got: Any, want: Any, rtol: float, where: str) -> None:
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, f"{where}: shape {g.shape} != {w.shape}"
        assert g.dtype == w.dtype, f"{where}: dtype {g.dtype} != {w.dtype}"
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol, err_msg=where)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_op_compiled_equals_eager(name: str, dtype: Any) -> None:
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    rng = np.random.default_rng(7)
    for case in _cases(name):
        xs = [np.asarray(x.data, dtype=dtype) for x in case.inputs]
        n = len(xs)
        outs = _outputs(case.fn(*[cr.Tensor(x, requires_grad=True) for x in xs]))
        cots = [rng.normal(size=o.shape).astype(o.data.dtype) for o in outs]
        compiled = cr.compile(_with_grads(case.fn, n))
        # The same program at the traced numbers and at nearby ones (masks recomputed).
        for shift in (0.0, 1e-3):
            moved = [x + shift * rng.normal(size=x.shape).astype(dtype) for x in xs]
            got_out, got_grads = compiled(*moved, *cots)
            want_out, want_grads = _eager(case.fn, n, [*moved, *cots])
            where = f"{name} [{case.label}] {np.dtype(dtype).name}"
            _close(got_out, want_out, rtol, where + " forward")
            _close(got_grads, want_grads, rtol, where + " gradient")
        assert len(compiled.programs) == 1


@pytest.mark.parametrize("name", sorted(VALUE_CASES))
def test_value_op_compiled_equals_eager_first_and_second_order(name: str) -> None:
    for fn, at in VALUE_CASES[name]:
        nums = tuple(range(len(at)))
        first = func.grad(fn, argnums=nums)
        second = func.grad(lambda *ys, first=first: sum(first(*ys)), argnums=nums)
        compiled = cr.compile(
            lambda *xs, fn=fn, first=first, second=second: (fn(*xs), first(*xs), second(*xs))
        )
        for point in (at, tuple(x * 1.01 for x in at)):
            got = compiled(*point)
            want = (func.value_and_grad(fn, argnums=nums)(*point)[0], first(*point), second(*point))
            for g, w in zip(func.tree_flatten(got)[0], func.tree_flatten(want)[0]):
                assert isinstance(g, float)
                assert g == pytest.approx(w, rel=1e-12, abs=1e-12), (name, point, got, want)


def test_masks_are_recomputed_at_every_call() -> None:
    f = cr.compile(lambda x: func.grad(lambda y: (y.relu() * y + y.abs()).sum())(x))
    for x in (np.array([1.0, -2.0, 3.0]), np.array([-1.0, 2.0, -3.0])):
        want = func.grad(lambda y: (y.relu() * y + y.abs()).sum())(x)
        np.testing.assert_array_equal(f(x), want)
    g = cr.compile(lambda v: func.grad(lambda y: y.relu() * 3.0)(v))
    assert (g(2.0), g(-2.0)) == (3.0, 0.0)


def test_where_by_a_traced_condition() -> None:
    def fn(x: Any) -> Any:
        return func.value_and_grad(lambda y: cr.where(y > 0.5, y * y, -y).sum())(x)

    f = cr.compile(fn)
    for x in (np.array([0.1, 0.9]), np.array([0.9, 0.1])):
        got, want = f(x), fn(x)
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])
    indicator = cr.compile(lambda x: cr.where(x > 0.0, 1.0, 0.0) * 2.0)
    np.testing.assert_array_equal(indicator(np.array([-1.0, 1.0])), [0.0, 2.0])
    np.testing.assert_array_equal(indicator(np.array([1.0, -1.0])), [2.0, 0.0])


def test_arithmetic_on_a_traced_comparison_is_recomputed_at_every_call() -> None:
    # (x > 0) used as numbers: its products, sums and gradients must follow each call's
    # signs, not be kept from the call that traced the program.
    def fn(x: Any) -> Any:
        return func.value_and_grad(lambda y: ((y > 0) * 2.0 * y * y + (y < 1).sum()).sum())(x)

    f = cr.compile(fn)
    for x in (np.array([1.0, -1.0, 2.0]), np.array([-1.0, 1.0, -2.0]), np.array([0.5, 3.0, 0.0])):
        (got, got_grad), (want, want_grad) = f(x), fn(x)
        assert got == want
        np.testing.assert_array_equal(got_grad, want_grad)
    # An infinite gradient upstream of a mask leaves the mask's zero share finite.
    inf = cr.compile(lambda x: func.grad(lambda y: ((y > 0) * y).sum())(x))
    np.testing.assert_array_equal(inf(np.array([np.inf, -1.0])), [1.0, 0.0])


def _numbers(result: Any) -> list[np.ndarray]:
    parts = result if isinstance(result, tuple) else (result,)
    return [np.asarray(p.data if isinstance(p, cr.Tensor) else p) for p in parts]


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: func.value_and_grad(lambda y: (y.detach() * y * y).sum())(x),
        lambda x: (x.argmax() == 0) * 1.0 + x.sum(),
        lambda x: x.reshape(1, 3).argmin(dim=1, keepdim=True) * 2.0 + x.sum(),
        lambda x: x.argmax(keepdim=True) * x,
        lambda x: x.reshape(1, 3).max(dim=1).indices * 1.0 + x.sum(),
        lambda x: x.reshape(3, 1).min(dim=0, keepdim=True).indices * x,
    ],
    ids=["detach", "argmax", "argmin dim", "argmax keepdim", "max dim", "min dim"],
)
def test_values_computed_outside_the_graph_are_recomputed_at_every_call(fn: Any) -> None:
    # detach() and argmax give numbers with no gradient, but they still come from the
    # arguments: a program must not keep the tracing call's numbers.
    f = cr.compile(fn)
    for x in (np.array([3.0, 1.0, 2.0]), np.array([1.0, 3.0, -2.0]), np.array([0.0, 1.0, 5.0])):
        got, want = _numbers(f(x)), _numbers(fn(cr.Tensor(x, requires_grad=True)))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_a_value_detached_while_tracing_is_recomputed() -> None:
    fn = lambda v: func.value_and_grad(lambda y: y.detach() * y * y)(v)
    f = cr.compile(fn)
    assert f(3.0) == fn(3.0) == (27.0, 18.0)
    assert f(1.0) == fn(1.0) == (1.0, 2.0)


def test_numpy_of_a_traced_tensor_is_refused() -> None:
    with pytest.raises(cr.TraceError, match=r"\.numpy\(\)"):
        cr.compile(lambda x: cr.Tensor(x.numpy() * 2.0) + x)(np.ones(2))


def test_float_programs_follow_ieee_754_as_values_do() -> None:
    f = cr.compile(lambda x: (1.0 / x, x.log(), (x * -1000.0).exp(), x.sqrt()))
    assert f(0.0) == (float("inf"), float("-inf"), 1.0, 0.0)
    got = f(-1.0)
    assert got[0] == -1.0 and np.isnan(got[1]) and got[2] == float("inf") and np.isnan(got[3])
    assert f(4.0) == (0.25, np.log(4.0), np.exp(-4000.0), 2.0)


# -- generated programs -------------------------------------------------------------

UNARY = ["exp", "tanh", "sigmoid", "relu", "abs"]
BINARY = ["+", "-", "*"]


@st.composite
def programs(draw: Any) -> list[tuple[str, int, int]]:
    """A straight-line program: each step an op on earlier values (indices)."""
    steps = []
    for k in range(draw(st.integers(1, 8))):
        avail = 2 + k
        if draw(st.booleans()):
            steps.append((draw(st.sampled_from(UNARY)), draw(st.integers(0, avail - 1)), 0))
        else:
            a, b = draw(st.integers(0, avail - 1)), draw(st.integers(0, avail - 1))
            steps.append((draw(st.sampled_from(BINARY)), a, b))
    return steps


def _run(steps: list[tuple[str, int, int]], x: Any, y: Any) -> Any:
    vals = [x, y]
    for op, a, b in steps:
        if op in UNARY:
            vals.append(getattr(vals[a], op)() * 0.5)
        elif op == "+":
            vals.append(vals[a] + vals[b])
        elif op == "-":
            vals.append(vals[a] - vals[b])
        else:
            vals.append(vals[a] * vals[b] * 0.5)
    out = vals[-1]
    return out if isinstance(out, cr.Value) else out.sum()


def _total(x: Any) -> Any:
    return x if isinstance(x, cr.Value) else x.sum()


@settings(max_examples=40, deadline=None)
@given(
    programs(),
    st.floats(-2, 2).filter(lambda v: abs(v) > 1e-3),
    st.floats(-2, 2).filter(lambda v: abs(v) > 1e-3),
    st.booleans(),
)
def test_generated_programs_compiled_equal_eager(
    steps: list[tuple[str, int, int]], x: float, y: float, arrays: bool
) -> None:
    first = func.grad(lambda u, v: _run(steps, u, v), argnums=(0, 1))
    second = func.grad(lambda u, v: _total(sum(first(u, v))), argnums=(0, 1))

    def fn(a: Any, b: Any) -> Any:
        return _run(steps, a, b), first(a, b), second(a, b)

    args: tuple[Any, Any] = (x, y)
    if arrays:
        args = (np.array([x, -y, 0.5]), np.array([y, 1.5, -x]))
    node = cr.Tensor if arrays else cr.Value
    value = _run(steps, *[node(a, requires_grad=True) for a in args])
    want = (value.data, first(*args), second(*args))
    got = cr.compile(fn)(*args)
    for g, w in zip(func.tree_flatten(got)[0], func.tree_flatten(want)[0]):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


# -- a model trained through a compiled step ----------------------------------------


def test_nn_model_trained_by_a_compiled_step_follows_the_eager_run() -> None:
    cr.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)), rng.integers(0, 3, size=16)

    def step(params: dict[str, Any], x: Any, y: Any) -> Any:
        def loss(p: dict[str, Any]) -> Any:
            return F.cross_entropy(func.functional_call(model, p, x), y)

        value, grads = func.value_and_grad(loss)(params)
        return value, {k: params[k] - 0.2 * grads[k] for k in params}

    compiled = cr.compile(step)
    eager = compiled_params = {k: v.data.copy() for k, v in model.named_parameters()}
    for _ in range(20):
        want, eager = step(eager, x, y)
        got, compiled_params = compiled(compiled_params, x, y)
        assert got == pytest.approx(want, rel=1e-12)
        for k in eager:
            np.testing.assert_allclose(compiled_params[k], eager[k], rtol=1e-12, atol=1e-14)
    assert len(compiled.programs) == 1
    assert "np.maximum" in compiled.source and "zero_where" in compiled.source  # relu's mask


# -- the cache ----------------------------------------------------------------------


def test_a_signature_picks_a_program_and_the_cache_is_bounded() -> None:
    f = cr.compile(lambda x, k: x * k, cache_size=2)
    f(np.ones(2), 2.0)
    f(np.zeros(2), 3.0)
    assert len(f.programs) == 1  # the same shapes and kinds: the same program
    f(np.ones(3), 2.0)
    f(np.ones((2, 2)), 2.0)
    assert len(f.programs) == 2  # the oldest went
    assert [p.signature[0][1] for p in f.programs] == [(3,), (2, 2)]
    half = f(np.ones(3, dtype=np.float32), np.float32(2.0))
    np.testing.assert_array_equal(half, 2 * np.ones(3))
    assert half.dtype == np.float32


def test_non_numeric_and_static_arguments_are_passed_by_value() -> None:
    calls = []

    def fn(x: Any, mode: str, n: int) -> Any:
        calls.append(mode)
        for _ in range(n):
            x = x * 2.0 if mode == "double" else x + 1.0
        return x

    f = cr.compile(fn, static_argnums=2)
    assert f(1.0, "double", 3) == 8.0
    assert f(2.0, "double", 3) == 16.0
    assert f(2.0, "add", 3) == 5.0
    assert calls == ["double", "add"]


def test_retracing_warns_once_naming_the_argument() -> None:
    f = cr.compile(lambda data, scale: data * scale)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 20):
            f(np.ones(n), 2.0)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert "'data'" in messages[0] and "signature" in messages[0]


# -- what cannot be traced ----------------------------------------------------------


def _branchy(x: Any) -> Any:
    if (x * 2.0).sum() > 0:  # the line the error must name
        return x
    return -x


@pytest.mark.parametrize(
    "fn, arg, what",
    [
        (_branchy, np.ones(2), "bool()"),
        (lambda v: v if v > 0 else -v, 1.0, ">"),
        (lambda v: float(v * 2.0), 1.0, "float()"),
        (lambda t: float(t.sum()), np.ones(2), "float()"),
        (lambda t: int(t.sum()), np.ones(2), "int()"),
        (lambda t: t.sum().item(), np.ones(2), ".item()"),
        (lambda t: t.tolist(), np.ones(2), ".tolist()"),
        (lambda t: np.asarray(t * 2.0), np.ones(2), "numpy array"),
        (lambda v: v.item(), 1.0, ".item()"),
        (lambda v: bool(v), 1.0, "bool()"),
    ],
)
def test_conversions_of_traced_values_raise_trace_error(fn: Any, arg: Any, what: str) -> None:
    with pytest.raises(cr.TraceError) as info:
        cr.compile(fn)(arg)
    text = str(info.value)
    assert what in text and "chainrule.where" in text and "static_argnums" in text
    assert __file__ in text  # the user's line, not chainrule's


def test_the_error_names_the_users_line() -> None:
    with pytest.raises(cr.TraceError, match=r"if \(x \* 2.0\).sum\(\) > 0"):
        cr.compile(_branchy)(np.ones(2))


def test_changing_a_traced_argument_in_place_raises() -> None:
    def inplace(x: Any) -> Any:
        x += 1.0
        return x

    def under_no_grad(p: Any) -> Any:
        with cr.no_grad():
            p -= 0.1
        return p

    for fn in (inplace, under_no_grad):
        with pytest.raises(cr.TraceError, match="in place"):
            cr.compile(fn)(np.ones(2))


def test_forward_mode_inside_compile_raises() -> None:
    with pytest.raises(cr.TraceError, match="forward mode"):
        cr.compile(lambda x: func.jvp(lambda y: y * y, (x,), (1.0,)))(2.0)


def test_conversions_still_work_outside_a_trace() -> None:
    assert float(cr.Tensor([2.5])) == 2.5 and int(cr.Tensor(3.0)) == 3
    assert bool(cr.Value(0.0)) is False and bool(cr.Value(-1.0)) is True
    f = cr.compile(lambda x: x * 2.0)
    f(1.0)
    assert float(cr.Value(2.0)) == 2.0 and (cr.Value(1.0) > 0) is True


# -- the source as source -----------------------------------------------------------


def _names_in(source: str, program: Any) -> set[str]:
    tree = ast.parse(source)
    (fn,) = tree.body
    assert isinstance(fn, ast.FunctionDef)
    made = {a.arg for a in fn.args.args} | set(program.globals)
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            made |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
    strings = [n for n in ast.walk(fn) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert not strings, f"string literals in the source: {strings}"
    known = {"np", "exp", "log", "tanh", "sqrt", "max", "abs", "inf", "nan", "pow_", "sign"}
    known |= {"sigmoid", "softmax", "log_softmax", "logsumexp", "scatter", "setitem"}
    known |= {"cross_entropy", "erf", "zero_where", "zero_unless"}
    assert used <= made | known, f"identifiers the compiler did not make: {used - made - known}"
    return made


def _network(*ws: Any) -> Any:
    net = build_values(pin=dict(zip(WEIGHT_NAMES, ws)))
    return net["E_total"], cr.grad(net["E_total"], list(ws))


def test_the_2_2_2_network_reads_as_its_derivation() -> None:
    f = cr.compile(_network)
    at = [WEIGHTS[k] for k in WEIGHT_NAMES]
    loss, grads = f(*at)
    net = build_values()
    net["E_total"].backward()
    assert loss == net["E_total"].data
    assert list(grads) == [net[k].grad for k in WEIGHT_NAMES]
    src = f.source
    program = f.programs[0]
    _names_in(src, program)
    lines = {
        n.targets[0].id: n.value  # type: ignore[attr-defined]
        for n in ast.walk(ast.parse(src))
        if isinstance(n, ast.Assign)
    }
    # net_h1 = w1 * i1 + w2 * i2 + b1, as the worked example writes it
    assert ast.unparse(lines["net_h1"]) == "w1 * i1 + w2 * i2 + b1"
    assert ast.unparse(lines["out_h1"]) == "1.0 / (1.0 + exp(-net_h1))"
    # the delta rule: d_w5 = delta_o1 * out_h1, delta_o1 = d_out_o1 * s(1 - s)
    assert ast.unparse(lines["d_w5"]) == "d_net_o1 * out_h1"
    assert ast.unparse(lines["d_net_o1"]) == "d_out_o1 * out_o1 * (1 - out_o1)"
    assert ast.unparse(lines["d_out_h1"]) in (
        "d_net_o2 * w7 + d_net_o1 * w5",
        "d_net_o1 * w5 + d_net_o2 * w7",
    )
    by_target = {line.split(" = ")[0].strip(): line for line in src.splitlines() if " = " in line}
    assert by_target["d_net_o1"].endswith("# sigmoid: s(1-s)")
    assert by_target["d_w5"].endswith("# mul: b")
    assert "#" not in by_target["net_h1"]  # forward lines carry no formula


UNSAFE = [
    'x"); import os; os.system("echo")  #',
    "two\nlines",
    "ünïcødé ∂",
    "'quoted'",
    "np",
    "lambda",
    "",
    "1st",
    "t1",
    "__import__('os')",
]


def test_unsafe_names_never_reach_the_source() -> None:
    def fn(a: Any, b: Any) -> Any:
        vals = [a, b]
        for k, name in enumerate(UNSAFE):
            v = vals[-1] * vals[-2] + float(k)
            v.name = name
            vals.append(v)
        a.name = UNSAFE[0]  # inputs renamed too
        return vals[-1], cr.grad(vals[-1], [a, b])

    f = cr.compile(fn)
    got = f(0.5, 1.5)
    with cr.enable_grad():
        want = fn(cr.Value(0.5), cr.Value(1.5))
    assert got[0] == want[0].data and list(got[1]) == [g.data for g in want[1]]
    src = f.source
    made = _names_in(src, f.programs[0])
    assert all(m.isidentifier() and m.isascii() for m in made)
    assert "import" not in src.replace("import_os", "") and "\n\n" not in src.strip()
    assert len([m for m in made if m.startswith("np")]) >= 1 and "np_2" in made


def test_dead_nodes_unused_arguments_and_constants() -> None:
    data = np.arange(6.0).reshape(2, 3)

    def fn(w: Any, unused: Any) -> Any:
        dead = (w * 3.0).exp()  # noqa: F841 (never reaches the output)
        return (w @ data).sum()

    f = cr.compile(fn)
    w = np.ones((4, 2))
    assert f(w, 5.0) == (w @ data).sum()
    src = f.source
    assert src.startswith("def program(w):")  # the unused argument is dropped
    assert "exp" not in src  # so is the dead node
    assert "5.0" not in src and "arange" not in src
    consts = [v for v in f.programs[0].globals.values() if isinstance(v, np.ndarray)]
    assert any(np.array_equal(c, data) for c in consts)  # the captured array is a named constant
    data[0, 0] = 100.0  # the program keeps the numbers it was traced with
    assert f(w, 5.0) == (w @ np.arange(6.0).reshape(2, 3)).sum()


def test_pytrees_in_and_out() -> None:
    def fn(params: dict[str, Any], xs: list[Any]) -> Any:
        y = params["w"] * xs[0] + params["b"] * xs[1]
        return {"y": y, "parts": (y * 2.0, [xs[0]])}

    f = cr.compile(fn)
    out = f({"w": np.array([1.0, 2.0]), "b": 3.0}, [np.array([1.0, 1.0]), np.array([2.0, 0.0])])
    np.testing.assert_array_equal(out["y"], [7.0, 2.0])
    np.testing.assert_array_equal(out["parts"][0], [14.0, 4.0])
    assert isinstance(out["parts"], tuple) and isinstance(out["parts"][1], list)
    assert "params_w" in f.source and "xs_0" in f.source


def _deep(x: Any) -> Any:
    for _ in range(3000):
        x = (x * 1.0001).tanh() + 0.001
    return x


def test_long_chains_compile() -> None:
    f = cr.compile(lambda x: (_deep(x), cr.grad(_deep(x), x)))
    got = f(0.3)
    value = cr.Value(0.3)
    want = _deep(value)
    want.backward()
    assert got[0] == want.data and got[1][0] == pytest.approx(value.grad, rel=1e-12)


def test_a_compiled_function_called_while_tracing_becomes_part_of_the_program() -> None:
    inner = cr.compile(lambda v: (v * v).exp())
    outer = cr.compile(lambda v: func.grad(lambda u: inner(u) * 2.0)(v))
    assert outer(0.5) == pytest.approx(2.0 * 2 * 0.5 * np.exp(0.25), rel=1e-14)
    assert inner.programs == [] and "exp" in outer.source


# -- masks: the rule table's comparisons are recomputed at every call -------------------

#: Functions whose rules choose by comparing numbers, and pairs of points at which
#: those comparisons come out differently (signs flipped, ties made and broken,
#: zeros moved), so a mask frozen at tracing time gives a wrong gradient.
MASKED_CASES: dict[str, tuple[Any, list[np.ndarray]]] = {
    "relu": (
        lambda x: (x.relu() * x).sum(),
        [np.array([1.0, -2.0, 0.0]), np.array([-1.0, 2.0, 3.0])],
    ),
    "abs": (
        lambda x: (x.abs() * x).sum(),
        [np.array([1.0, -2.0, 0.0]), np.array([-1.0, 0.0, 3.0])],
    ),
    "clip": (
        lambda x: (x.clip(-1.0, 1.0) * x).sum(),
        [np.array([0.5, -2.0, 2.0]), np.array([2.0, 0.5, -0.5])],
    ),
    "maximum": (
        lambda x: (cr.maximum(x, x[::-1]) * x).sum(),
        [np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]), np.array([1.0, 1.0, 1.0])],
    ),
    "minimum": (
        lambda x: (cr.minimum(x, 0.5) * x).sum(),
        [np.array([1.0, 0.5, -3.0]), np.array([-1.0, 2.0, 0.5])],
    ),
    "max": (
        lambda x: (x.max(axis=1) * x[:, 0]).sum(),
        [np.array([[1.0, 2.0], [3.0, 1.0]]), np.array([[2.0, 1.0], [1.0, 1.0]])],
    ),
    "pow base 0": (
        lambda x: (x ** x[::-1]).sum(),
        [np.array([0.0, 1.5, 2.0]), np.array([2.0, 1.5, 0.0]), np.array([0.0, 1.0, 0.0])],
    ),
    "where": (
        lambda x: cr.where(x > 0.0, x * x, -x).sum(),
        [np.array([1.0, -2.0]), np.array([-1.0, 2.0])],
    ),
    "norm at a zero slice": (
        lambda x: (x.norm(dim=1) * x[:, 0]).sum(),
        [np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [3.0, 4.0]])],
    ),
    "prod with a zero that moves": (
        lambda x: (x.prod(dim=1) * x[:, 0]).sum(),
        [
            np.array([[0.0, 2.0, 3.0], [1.0, 2.0, 0.5]]),
            np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 2.0]]),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(MASKED_CASES))
def test_masked_rules_are_recomputed_at_every_call_first_and_second_order(name: str) -> None:
    fn, points = MASKED_CASES[name]
    first = func.grad(fn)
    second = func.grad(lambda y: (first(y) * y).sum())  # a second pass over the first's graph
    compiled = cr.compile(lambda x: (first(x), second(x)))
    for x in points + points[::-1]:
        got = compiled(x)
        np.testing.assert_array_equal(got[0], first(x), err_msg=f"{name} at {x}: gradient")
        np.testing.assert_array_equal(got[1], second(x), err_msg=f"{name} at {x}: second order")
    assert len(compiled.programs) == 1


@pytest.mark.parametrize(
    "fn",
    [
        lambda v: v.relu() * v,
        lambda v: v.abs() * v,
        lambda v: (v * v) ** v,
        lambda v: (v * 2.0) ** (v - 1.0),
        lambda v: v ** (v * 0.0 + 2.0),
    ],
)
def test_masked_value_rules_are_recomputed_at_every_call(fn: Any) -> None:
    first = func.grad(fn)
    second = func.grad(first)
    compiled = cr.compile(lambda v: (first(v), second(v)))
    for v in (1.5, -1.5, 0.0, 1.0, 0.5, 0.0, -0.5):
        got = compiled(v)
        want = (first(v), second(v))
        assert [float(w) for w in want] == pytest.approx(got, nan_ok=True), v


def test_a_call_like_the_last_is_checked_leaf_by_leaf() -> None:
    def fn(p: dict[str, Any], xs: Any) -> Any:
        return p["w"] * xs[0] + xs[1] * 2.0

    f = cr.compile(fn)
    one, three = np.ones(2), np.full(3, 3.0)
    calls: list[tuple[Any, Any]] = [
        ({"w": one}, [one, 2.0]),
        ({"w": one * 2.0}, [one, 5.0]),  # the same signature: the last program
        ({"w": one.astype(np.float32)}, [one, 2.0]),  # another dtype
        ({"w": three}, [three, 2.0]),  # another shape
        ({"w": one}, [one, 3]),  # an int for a float: the first program again
        ({"w": one}, (one, 2.0)),  # a tuple for a list
        ({"w": one, "v": one}, [one, 2.0]),  # another key
        ({"w": cr.Tensor(one)}, [one, cr.Value(4.0)]),  # nodes are read as their numbers
        ({"w": one}, [one, 2.0]),
    ]
    for p, xs in calls:
        got = f(p, xs)
        want = fn(
            {k: cr.Tensor(v.data if isinstance(v, cr.Tensor) else v) for k, v in p.items()},
            [cr.Tensor(x.data if isinstance(x, cr.Node) else x) for x in xs],
        )
        np.testing.assert_array_equal(got, want.data)
        assert got.dtype == want.data.dtype
    assert len(f.programs) == 5


# -- the program does no more work than one written by hand ---------------------------


def _softmax_step(w: Any, b: Any, x: Any, onehot: Any) -> Any:
    logits = (x @ w + b).tanh()
    loss = -(logits.log_softmax(axis=1) * onehot).sum() * (1.0 / x.shape[0])
    gw, gb = cr.grad(loss, [w, b])
    return loss, gw, gb, w - 0.1 * gw


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_training_step_is_written_without_redundant_work(dtype: Any) -> None:
    rng = np.random.default_rng(3)
    w, b = rng.normal(size=(5, 4)).astype(dtype), rng.normal(size=4).astype(dtype)
    x = rng.normal(size=(6, 5)).astype(dtype)
    onehot = np.eye(4, dtype=dtype)[rng.integers(0, 4, 6)]
    f = cr.compile(_softmax_step)
    f(w, b, x, onehot)
    src = f.source
    # the seed of the backward pass, broadcast by the sum's rule, is a number, not an array
    arrays = [v for v in f.programs[0].globals.values() if isinstance(v, np.ndarray)]
    assert arrays == [], f"constant arrays kept by the program: {arrays}"
    assert "reshape" not in src and "keepdims=True).re" not in src  # a bias's gradient: sum(axis=0)
    assert ".transpose((1, 0))" not in src and ".T @" in src  # a matrix's transpose reads .T
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    for shift in (0.0, 0.25):
        args = [w + dtype(shift), b, x, onehot]
        got = f(*args)
        with cr.enable_grad():
            leaves = [cr.Tensor(a, requires_grad=True) for a in args[:2]] + [
                cr.Tensor(a) for a in args[2:]
            ]
            want = [t.data for t in _softmax_step(*leaves)]
        _close(got, want, rtol, f"softmax step {np.dtype(dtype).name}")


def test_a_square_s_gradient_has_no_power_of_one() -> None:
    def fn(w: Any, t: Any) -> Any:
        err = 0.5 * ((t - w.sigmoid()) ** 2).sum()
        return err, cr.grad(err, w)

    f = cr.compile(fn)
    w, t = np.array([0.3, -0.2]), np.array([0.01, 0.99])
    got = f(w, t)
    want = fn(cr.Tensor(w, requires_grad=True), cr.Tensor(t))
    assert "** 1" not in f.source
    _close([got[0], got[1][0]], [want[0].data, want[1][0].data], 1e-12, "square")


def test_a_constant_array_of_one_number_stays_an_array_where_it_shapes_the_result() -> None:
    x64, x32 = np.array([1.0, -2.0, 3.0]), np.array([1.0, -2.0, 3.0], dtype=np.float32)
    cases = [
        (lambda x: x + np.full((2, 3), 2.0), x64),  # it broadcasts x
        (lambda x: x * np.full(3, 0.5), x32),  # it makes the result float64
        (lambda x: x * np.array([0.0, -0.0, 0.0]), x64),  # the signs of its zeros differ
        (lambda x: x - np.full(3, np.nan), x64),
        (lambda x: np.full(3, -0.0) * x, x64),
    ]
    for fn, x in cases:
        f = cr.compile(lambda x, fn=fn: fn(x) * 1.5)
        got, want = f(x), fn(cr.Tensor(x, requires_grad=True)).data * 1.5
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_outputs_are_new_arrays_even_when_an_op_was_the_identity() -> None:
    x = np.array([1.0, 2.0])
    k = cr.Tensor([3.0, 4.0]) * 1.0  # a constant: the program's own array
    f = cr.compile(lambda x: (x * np.ones(2), x**1, k, x.exp(), x.exp() * np.ones(2)))
    for _ in range(2):
        outs = f(x)
        assert all(o is not x for o in outs)
        assert len({id(o) for o in outs}) == len(outs)
        for o in outs:
            o[...] = -1.0  # the caller owns every output
        np.testing.assert_array_equal(x, [1.0, 2.0])
    np.testing.assert_array_equal(f(x)[2], [3.0, 4.0])


def test_repeated_calls_take_the_quick_way_silently_and_as_eager_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chainrule.compiler import Program

    runs = []
    general = Program.__call__
    monkeypatch.setattr(
        Program, "__call__", lambda self, leaves: runs.append(1) or general(self, leaves)
    )

    def fn(x: Any, s: Any) -> Any:
        y = (x * s).log()  # log of 0 and of a negative: -inf and nan, without a warning
        return y, 1.0 / s, cr.grad(y.sum(), x)

    f = cr.compile(fn)
    points = [
        (np.array([1.0, 2.0]), 2.0),
        (np.array([0.0, -1.0]), 3.0),
        (np.array([4.0, 0.5]), 0.0),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x, s in points * 2:
            got = f(x, s)
            with cr.enable_grad():
                y, inv, (g,) = fn(cr.Tensor(x, requires_grad=True), cr.Tensor(np.float64(s)))
            for a, b in zip(func.tree_flatten(got)[0], [y.data, inv.data, g.data]):
                np.testing.assert_array_equal(a, b)
    assert len(f.programs) == 1 and len(runs) == 1  # only the tracing call took the long way


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_a_rule_handing_zero_to_some_elements_selects_exactly_as_where(dtype: Any) -> None:
    def fn(x: Any, g: Any) -> Any:  # relu's, clip's and maximum's gradients hand out zeros
        y = (x.relu() * g).sum() + (x.clip(-0.5, 0.5) * g).sum() + (cr.maximum(x, 0.25) * g).sum()
        return cr.grad(y, x)

    f = cr.compile(fn)
    x = np.array([[1.0, -2.0, 0.0, 0.3], [0.1, -0.1, 2.0, -3.0]], dtype=dtype)
    g = np.array([[np.inf, np.nan, -0.0, 2.0], [-np.inf, 1.0, np.nan, -0.0]], dtype=dtype)
    for sign in (1, -1, 1):
        (got,) = f(sign * x, g)
        want = fn(cr.Tensor(sign * x, requires_grad=True), cr.Tensor(g))[0].data
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    assert "zero_where" in f.source and "zero_unless" in f.source


def test_zero_selections_fall_back_to_numpy_where_on_other_operands() -> None:
    from chainrule.compiler import _zero_unless, _zero_where

    mask = np.array([True, False, True])
    g = np.array([1.5, -2.0, np.inf])
    for got, want in [
        (_zero_where(mask, g), np.where(mask, 0.0, g)),
        (_zero_unless(mask, g), np.where(mask, g, 0.0)),
        (_zero_where(mask[:, None], g), np.where(mask[:, None], 0.0, g)),  # broadcasting
        (_zero_where(mask.astype(float), g), np.where(mask.astype(float), 0.0, g)),  # no bool
        (_zero_unless(np.bool_(True), np.float64(2.0)), np.where(True, 2.0, 0.0)),  # scalars
        (_zero_where(mask, np.array([1, 2, 3])), np.where(mask, 0.0, np.array([1, 2, 3]))),
    ]:
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
