"""chainrule.func: transforms of functions of pytrees, checked against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import func


def _fd_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of scalar f at array x."""
    g = np.zeros_like(x)
    for j in range(x.size):
        e = np.zeros_like(x)
        e.flat[j] = eps
        g.flat[j] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def _mlp_loss(params, x, y):
    h = (x @ params["layers"][0]["w"] + params["layers"][0]["b"]).tanh()
    out = h @ params["layers"][1]["w"]
    return ((out - y) ** 2).mean()


def _params(rng):
    return {
        "layers": [
            {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)},
            {"w": rng.standard_normal((4, 2))},
        ]
    }


def test_grad_of_a_pytree_of_parameters_matches_finite_differences():
    rng = np.random.default_rng(0)
    params = _params(rng)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    g = func.grad(lambda p: _mlp_loss(p, cr.Tensor(x), cr.Tensor(y)))(params)
    assert isinstance(g["layers"], list) and set(g["layers"][0]) == {"w", "b"}
    for path in [(0, "w"), (0, "b"), (1, "w")]:

        def f(v, path=path):
            p = {"layers": [dict(layer) for layer in params["layers"]]}
            p["layers"][path[0]][path[1]] = v
            return float(_mlp_loss(p, cr.Tensor(x), cr.Tensor(y)).data)

        expected = _fd_grad(f, params["layers"][path[0]][path[1]])
        np.testing.assert_allclose(g["layers"][path[0]][path[1]], expected, atol=1e-7)


def test_value_and_grad_has_aux_and_argnums():
    def f(a, b):
        return (a * b).sum(), {"product": a * b}

    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    (value, aux), grads = func.value_and_grad(f, argnums=(0, 1), has_aux=True)(a, b)
    assert value == 11.0
    np.testing.assert_array_equal(aux["product"].data, [3.0, 8.0])
    np.testing.assert_array_equal(grads[0], b)
    np.testing.assert_array_equal(grads[1], a)
    assert func.grad(lambda x, y: x * y, argnums=1)(3.0, 4.0) == 3.0
    assert func.grad(lambda x, y: x * y, argnums=-1)(3.0, 4.0) == 3.0


def test_vjp_of_a_vector_function():
    out, vjp_fn = func.vjp(lambda x: x * x, np.array([1.0, -2.0, 3.0]))
    np.testing.assert_array_equal(out, [1.0, 4.0, 9.0])
    (g,) = vjp_fn(np.array([1.0, 10.0, 100.0]))
    np.testing.assert_array_equal(g, [2.0, -40.0, 600.0])


def test_jvp_is_a_directional_derivative():
    rng = np.random.default_rng(1)
    x, v = rng.standard_normal(4), rng.standard_normal(4)

    def f(x):
        return (x.exp() * x).tanh().sum() + (x**2).mean()

    out, tangent = func.jvp(f, (x,), (v,))
    plain = lambda z: float(f(cr.Tensor(z)).data)
    eps = 1e-6
    expected = (plain(x + eps * v) - plain(x - eps * v)) / (2 * eps)
    assert out == pytest.approx(plain(x), rel=1e-12)
    assert tangent == pytest.approx(expected, rel=1e-7)


def test_forward_mode_on_values_is_a_dual_number():
    # f(x) = x^3 sin-free: f'(x) = 3x^2; the tangent rides along with the value
    out, tangent = func.jvp(lambda x: x**3 + x.exp(), (2.0,), (1.0,))
    assert out == pytest.approx(8.0 + np.exp(2.0))
    assert tangent == pytest.approx(12.0 + np.exp(2.0))


def test_jvp_of_jvp_gives_the_second_derivative():
    def f(x):
        return x.sigmoid() * x

    def first(x):
        return func.jvp(f, (x,), (1.0,))[1]

    _, second = func.jvp(first, (0.7,), (1.0,))
    s = 1 / (1 + np.exp(-0.7))
    # d2/dx2 [x s(x)] = 2 s' + x s'', with s' = s(1-s), s'' = s'(1-2s)
    d1 = s * (1 - s)
    assert second == pytest.approx(2 * d1 + 0.7 * d1 * (1 - 2 * s), rel=1e-10)


def test_jacfwd_equals_jacrev_on_pytrees_of_mixed_structure():
    rng = np.random.default_rng(2)
    inputs = {"a": rng.standard_normal(3), "b": rng.standard_normal((2, 3))}

    def f(p):
        return {"y": (p["b"] @ p["a"]).tanh(), "z": [(p["a"] ** 2).sum()]}

    fwd = func.jacfwd(f)(inputs)
    rev = func.jacrev(f)(inputs)
    for out_key, want_shape in [("y", (2,)), ("z", ())]:
        f_block = fwd[out_key] if out_key == "y" else fwd[out_key][0]
        r_block = rev[out_key] if out_key == "y" else rev[out_key][0]
        for in_key in ("a", "b"):
            shape = want_shape + inputs[in_key].shape
            assert np.shape(f_block[in_key]) == shape
            np.testing.assert_allclose(f_block[in_key], r_block[in_key], atol=1e-12)


def test_hessian_is_symmetric_and_matches_finite_differences_of_the_gradient():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(4)

    def f(x):
        return (x.sigmoid() * x.exp()).sum() + (x[0] * x[1] * x[3])

    h = func.hessian(f)(x)
    assert h.shape == (4, 4)
    np.testing.assert_allclose(h, h.T, atol=1e-12)
    g = func.grad(f)
    eps = 1e-6
    fd = np.stack(
        [(g(x + eps * np.eye(4)[j]) - g(x - eps * np.eye(4)[j])) / (2 * eps) for j in range(4)],
        axis=1,
    )
    np.testing.assert_allclose(h, fd, atol=1e-6)


def test_hessian_of_logistic_regression_at_zero_is_the_closed_form():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 3))
    y = rng.integers(0, 2, 6).astype(float)

    def loss(w):
        return cr.nn.functional.binary_cross_entropy_with_logits(cr.Tensor(X) @ w, y)

    h = func.hessian(loss)(np.zeros(3))
    np.testing.assert_allclose(h, X.T @ X * 0.25 / 6, atol=1e-12)


def test_grad_of_grad_and_jvp_of_grad_agree():
    f = lambda x: (x**3).sum()
    x = np.array([1.0, -2.0])
    via_jvp = func.jvp(func.grad(f), (x,), (np.array([1.0, 0.0]),))[1]
    np.testing.assert_allclose(via_jvp, [6.0, 0.0])
    assert func.grad(func.grad(lambda t: t**4))(2.0) == pytest.approx(48.0)


def test_tensor_arguments_give_tensor_results():
    w = cr.Tensor([1.0, 2.0], requires_grad=True)
    g = func.grad(lambda v: (v * v).sum())(w)
    assert isinstance(g, cr.Tensor)
    np.testing.assert_array_equal(g.data, [2.0, 4.0])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: func.grad(lambda x: x * 2)(np.ones(3)), ValueError, r"grad: f must return a"),
        (lambda: func.grad(lambda x: x, argnums=2)(1.0), ValueError, r"argnums 2 is out of range"),
        (lambda: func.jvp(lambda x: x, (np.ones(2),), (np.ones(3),)), ValueError, r"shape"),
        (lambda: func.jvp(lambda x: x, (1.0,), ([1.0],)), ValueError, r"structure"),
        (lambda: func.grad(lambda x: x)("a"), TypeError, r"leaf must be"),
        (lambda: func.jvp(lambda x: x, [1.0], [1.0]), TypeError, r"tuples"),
    ],
)
def test_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_functional_call_gives_the_gradients_backward_gives_and_leaves_the_model_alone():
    cr.manual_seed(0)
    model = cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.Tanh(), cr.nn.Linear(4, 2))
    x = cr.Tensor(np.linspace(-1, 1, 15).reshape(5, 3))
    y = cr.Tensor(np.linspace(0, 1, 10).reshape(5, 2))
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    params = {n: p.data.copy() for n, p in model.named_parameters()}

    def loss(p):
        return ((func.functional_call(model, p, x) - y) ** 2).mean()

    g = func.grad(loss)(params)
    ((model(x) - y) ** 2).mean().backward()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(g[name], p.grad, atol=1e-14)
        np.testing.assert_array_equal(p.data, before[name])
    assert all(isinstance(p, cr.nn.Parameter) for p in (model[0].weight, model[2].bias))
    shifted = {n: v + 0.5 for n, v in params.items()}
    assert float(loss(shifted).data) != float(loss(params).data)


def test_functional_call_errors_name_the_parameter():
    model = cr.nn.Linear(2, 1)
    with pytest.raises(KeyError, match=r"no parameter.*'wieght'"):
        func.functional_call(model, {"wieght": np.zeros((1, 2))}, cr.Tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"'weight' has shape \(2,\)"):
        func.functional_call(model, {"weight": np.zeros(2)}, cr.Tensor([1.0, 2.0]))
    assert model.weight.shape == (1, 2)


def test_numbers_beside_arrays_run_as_0d_tensors_and_come_back_as_numbers():
    def loss(p):
        return ((p["w"] * 2.0 + p["b"]) ** 2).sum()

    g = func.grad(loss)({"w": np.array([1.0, -1.0]), "b": 0.5})
    assert type(g["b"]) is float
    assert g["b"] == pytest.approx(2 * (2.5 + -1.5))
    np.testing.assert_allclose(g["w"], [4 * 2.5, 4 * -1.5])
    out, tangent = func.jvp(
        lambda w, b: (w * b).sum(), (np.array([1.0, 2.0]), 3.0), (np.zeros(2), 1.0)
    )
    assert (out, tangent) == (9.0, 3.0)


def test_hessian_of_a_dict_is_nested_and_its_blocks_mirror_each_other():
    p = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}
    h = func.hessian(lambda q: (q["a"] ** 2 * q["b"]).sum())(p)
    np.testing.assert_allclose(h["a"]["a"], np.diag(2 * p["b"]))
    np.testing.assert_allclose(h["a"]["b"], np.diag(2 * p["a"]))
    np.testing.assert_allclose(h["b"]["a"], h["a"]["b"].T)
    np.testing.assert_allclose(h["b"]["b"], np.zeros((2, 2)))


def test_jacobians_with_a_tuple_of_argnums_agree():
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    f = lambda x, y: (x * y).exp()
    for fwd, rev in zip(func.jacfwd(f, argnums=(0, 1))(x, y), func.jacrev(f, argnums=(0, 1))(x, y)):
        np.testing.assert_allclose(fwd, rev, atol=1e-12)
    assert func.hessian(lambda t: t**3)(2.0) == pytest.approx(12.0)


def test_in_place_changes_never_leave_a_tangent_behind():
    def scaled(x):
        x *= 2.0  # rebinds, as x = x * 2 would: the tangent follows
        return x

    assert func.jvp(scaled, (np.array([1.0, 3.0]),), (np.array([1.0, 1.0]),))[1].tolist() == [
        2.0,
        2.0,
    ]

    def written(x):
        x[0] = 5.0  # would have to zero the tangent at 0: refused, not silently wrong
        return x

    with pytest.raises(RuntimeError, match=r"setitem.*tangent"):
        func.jvp(written, (np.array([1.0, 3.0]),), (np.array([1.0, 1.0]),))
    with pytest.raises(RuntimeError, match=r"mul_.*tangent"):
        func.jvp(lambda x: x.mul_(2.0), (np.array([1.0]),), (np.array([1.0]),))
