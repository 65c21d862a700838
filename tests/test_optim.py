"""Optimizers: each update rule step by step against its formula, groups, freezing, state dicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

A = np.array([[1.0, 2.0, 0.5], [-1.0, 0.3, 2.0], [0.7, -0.4, 1.0], [0.2, 1.5, -1.0]])
B = np.array([1.0, -2.0, 0.5, 3.0])
P0 = np.array([0.3, -0.7, 1.1])
STEPS = 6


def _grad(p):
    """d/dp sum((A p - B)^2), by hand, for the reference updates."""
    return 2 * A.T @ (A @ p - B)


def _run(make_opt, steps=STEPS):
    """Minimise the least-squares loss with chainrule; the parameter after each step."""
    p = nn.Parameter(P0.copy())
    opt = make_opt([p])
    history = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((cr.Tensor(A) @ p - cr.Tensor(B)) ** 2).sum()
        loss.backward()
        opt.step()
        history.append(p.data.copy())
    return history, opt


def _sgd_reference(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    p, buf, out = P0.copy(), None, []
    for _ in range(STEPS):
        g = _grad(p) + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        out.append(p.copy())
    return out


def _adam_reference(lr, betas, eps, weight_decay=0.0, decoupled=False, amsgrad=False):
    p, out = P0.copy(), []
    m, v, vmax = np.zeros(3), np.zeros(3), np.zeros(3)
    for t in range(1, STEPS + 1):
        g = _grad(p)
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        vmax = np.maximum(vmax, v)
        m_hat = m / (1 - betas[0] ** t)
        v_hat = (vmax if amsgrad else v) / (1 - betas[1] ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p.copy())
    return out


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 0.01},
        {"lr": 0.01, "momentum": 0.9},
        {"lr": 0.01, "momentum": 0.8, "dampening": 0.3},
        {"lr": 0.01, "momentum": 0.9, "nesterov": True},
        {"lr": 0.02, "momentum": 0.5, "weight_decay": 0.1},
    ],
)
def test_sgd_follows_its_update_rule(kwargs):
    got, _ = _run(lambda ps: cr.optim.SGD(ps, **kwargs))
    for step, (a, b) in enumerate(zip(got, _sgd_reference(**kwargs))):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-14), f"step {step + 1}"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8},
        {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-3, "weight_decay": 0.2},
        {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": True},
    ],
)
def test_adam_follows_its_update_rule(kwargs):
    got, opt = _run(lambda ps: cr.optim.Adam(ps, **kwargs))
    for step, (a, b) in enumerate(zip(got, _adam_reference(**kwargs))):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-14), f"step {step + 1}"
    (state,) = opt.state.values()
    assert state["step"] == STEPS


def test_adamw_decouples_weight_decay():
    kwargs = {"lr": 0.05, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.3}
    got, _ = _run(lambda ps: cr.optim.AdamW(ps, **kwargs))
    ref = _adam_reference(**kwargs, decoupled=True)
    for a, b in zip(got, ref):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-14)
    coupled = _adam_reference(**kwargs)
    assert not np.allclose(ref[-1], coupled[-1])
    assert cr.optim.AdamW([nn.Parameter([1.0])]).defaults["weight_decay"] == 0.01


def test_first_adam_step_moves_each_coordinate_by_about_lr():
    # With bias correction, step 1 is lr * g / (|g| + eps'): a sign step of size lr.
    got, _ = _run(lambda ps: cr.optim.Adam(ps, lr=0.01), steps=1)
    assert np.allclose(np.abs(got[0] - P0), 0.01, rtol=1e-5)


def _rmsprop_reference(lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    p, out = P0.copy(), []
    v, g_avg, buf = np.zeros(3), np.zeros(3), np.zeros(3)
    for _ in range(STEPS):
        g = _grad(p) + weight_decay * p
        v = alpha * v + (1 - alpha) * g**2
        if centered:
            g_avg = alpha * g_avg + (1 - alpha) * g
            d = np.sqrt(v - g_avg**2) + eps
        else:
            d = np.sqrt(v) + eps
        if momentum > 0:
            buf = momentum * buf + g / d
            p = p - lr * buf
        else:
            p = p - lr * g / d
        out.append(p.copy())
    return out


def _adagrad_reference(
    lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10
):
    p, out = P0.copy(), []
    s = np.full(3, float(initial_accumulator_value))
    for t in range(1, STEPS + 1):
        g = _grad(p) + weight_decay * p
        s = s + g**2
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
        out.append(p.copy())
    return out


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 0.01},
        {"lr": 0.02, "alpha": 0.9, "eps": 1e-3},
        {"lr": 0.01, "momentum": 0.9},
        {"lr": 0.01, "centered": True},
        {"lr": 0.01, "alpha": 0.8, "centered": True, "momentum": 0.5, "weight_decay": 0.1},
        {"lr": 0.01, "weight_decay": 0.3},
    ],
)
def test_rmsprop_follows_its_update_rule(kwargs):
    got, opt = _run(lambda ps: cr.optim.RMSprop(ps, **kwargs))
    ref = _rmsprop_reference(**kwargs)
    for step, (a, b) in enumerate(zip(got, ref)):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-14), f"step {step + 1}"
    (state,) = opt.state.values()
    assert state["step"] == STEPS
    assert ("grad_avg" in state) == kwargs.get("centered", False)
    assert ("momentum_buffer" in state) == (kwargs.get("momentum", 0) > 0)


def test_rmsprop_defaults_are_pytorchs():
    opt = cr.optim.RMSprop([nn.Parameter([1.0])])
    assert opt.defaults == {
        "lr": 0.01,
        "alpha": 0.99,
        "eps": 1e-8,
        "weight_decay": 0,
        "momentum": 0,
        "centered": False,
    }
    opt = cr.optim.Adagrad([nn.Parameter([1.0])])
    assert opt.defaults == {
        "lr": 0.01,
        "lr_decay": 0,
        "weight_decay": 0,
        "initial_accumulator_value": 0,
        "eps": 1e-10,
    }
    # The defaults run the rule the references above write out.
    got, _ = _run(lambda ps: cr.optim.RMSprop(ps))
    assert np.allclose(got[-1], _rmsprop_reference(0.01)[-1], rtol=1e-12)
    got, _ = _run(lambda ps: cr.optim.Adagrad(ps))
    assert np.allclose(got[-1], _adagrad_reference(0.01)[-1], rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 0.1},
        {"lr": 0.1, "lr_decay": 0.5},
        {"lr": 0.2, "initial_accumulator_value": 2.0, "eps": 1e-3},
        {"lr": 0.1, "weight_decay": 0.4, "lr_decay": 0.1, "initial_accumulator_value": 0.5},
    ],
)
def test_adagrad_follows_its_update_rule(kwargs):
    got, opt = _run(lambda ps: cr.optim.Adagrad(ps, **kwargs))
    ref = _adagrad_reference(**kwargs)
    for step, (a, b) in enumerate(zip(got, ref)):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-14), f"step {step + 1}"
    (state,) = opt.state.values()
    assert state["step"] == STEPS


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: cr.optim.RMSprop(p, alpha=1.5), "RMSprop: alpha must be in \\[0, 1\\], got 1.5"),
        (lambda p: cr.optim.RMSprop(p, alpha=-0.1), "alpha must be in"),
        (lambda p: cr.optim.RMSprop(p, eps=-1e-8), "RMSprop: eps must be non-negative"),
        (lambda p: cr.optim.RMSprop(p, momentum=-0.9), "RMSprop: momentum must be non-negative"),
        (lambda p: cr.optim.RMSprop(p, weight_decay=-1), "weight_decay must be non-negative"),
        (lambda p: cr.optim.RMSprop(p, lr=-0.1), "lr must be a non-negative"),
        (lambda p: cr.optim.RMSprop(p, alpha="0.9"), "RMSprop: alpha must be a number, got '0.9'"),
        (lambda p: cr.optim.Adagrad(p, lr_decay=-1), "Adagrad: lr_decay must be non-negative"),
        (
            lambda p: cr.optim.Adagrad(p, initial_accumulator_value=-0.5),
            "Adagrad: initial_accumulator_value must be non-negative",
        ),
        (lambda p: cr.optim.Adagrad(p, eps=-1.0), "Adagrad: eps must be non-negative"),
        (lambda p: cr.optim.Adagrad(p, weight_decay=-1), "weight_decay must be non-negative"),
        (lambda p: cr.optim.Adagrad(p, eps=float("nan")), "Adagrad: eps must be a number, got nan"),
        (lambda p: cr.optim.Adagrad(p, lr=None), "Adagrad: lr must be a number, got None"),
    ],
)
def test_bad_rmsprop_and_adagrad_settings_are_explained(make, match):
    with pytest.raises(ValueError, match=match):
        make([nn.Parameter([1.0])])


def test_parameter_groups_use_their_own_settings():
    a, b = nn.Parameter([1.0, 1.0]), nn.Parameter([1.0])
    opt = cr.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    ((a * a).sum() + (b * b).sum()).backward()
    opt.step()
    assert np.allclose(a.data, 1 - 0.1 * 2)
    assert np.allclose(b.data, 1 - 0.5 * 2)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    # Changing a group's lr takes effect at the next step.
    opt.param_groups[1]["lr"] = 0.0
    before = b.data.copy()
    opt.step()
    assert np.array_equal(b.data, before)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: cr.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
        lambda ps: cr.optim.Adam(ps, lr=0.1, weight_decay=0.1),
        lambda ps: cr.optim.AdamW(ps, lr=0.1),
        lambda ps: cr.optim.RMSprop(ps, lr=0.1, momentum=0.9, centered=True, weight_decay=0.1),
        lambda ps: cr.optim.Adagrad(ps, lr=0.1, weight_decay=0.1, initial_accumulator_value=1.0),
    ],
)
def test_frozen_and_gradless_parameters_are_left_untouched(make):
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    unused = nn.Parameter([5.0, 6.0])
    opt = make([*net.parameters(), unused])
    net[0].bias.requires_grad_(False)
    frozen_before = net[0].bias.data.copy()
    w_before = net[0].weight.data.copy()
    for _ in range(3):
        opt.zero_grad()
        net(cr.Tensor([[1.0, -1.0]])).sum().backward()
        opt.step()
    assert np.array_equal(net[0].bias.data, frozen_before)
    assert np.array_equal(unused.data, [5.0, 6.0])
    assert id(net[0].bias) not in opt.state and id(unused) not in opt.state
    assert not np.array_equal(net[0].weight.data, w_before)
    # A parameter frozen after it got a gradient is skipped too.
    net(cr.Tensor([[1.0, -1.0]])).sum().backward()
    net[2].requires_grad_(False)
    w2 = net[2].weight.data.copy()
    opt.step()
    assert np.array_equal(net[2].weight.data, w2)


def test_step_records_no_graph_and_keeps_parameters_leaves():
    p = nn.Parameter([1.0, 2.0])
    opt = cr.optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    data = p.data
    opt.step()
    assert p.is_leaf and p.requires_grad
    assert p.data is data  # updated in place
    assert cr.is_grad_enabled()


def test_zero_grad():
    p = nn.Parameter([1.0, 2.0])
    opt = cr.optim.SGD([p], lr=0.1)
    (p * 3).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert np.array_equal(p.grad, [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


def test_bad_construction_is_explained():
    with pytest.raises(ValueError, match="no parameters"):
        cr.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="no parameters"):
        cr.optim.Adam(nn.Sequential(nn.ReLU()).parameters())
    with pytest.raises(TypeError, match="single Tensor"):
        cr.optim.SGD(nn.Parameter([1.0]), lr=0.1)
    with pytest.raises(TypeError, match="not a Tensor"):
        cr.optim.SGD([1.0], lr=0.1)
    p = nn.Parameter([1.0])
    with pytest.raises(ValueError, match="only leaf tensors"):
        cr.optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        cr.optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="lr must be a non-negative"):
        cr.optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        cr.optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        cr.optim.Adam([p], betas=(0.9, 1.5))
    with pytest.raises(TypeError, match="unknown settings"):
        cr.optim.SGD([{"params": [p], "momentun": 0.9}], lr=0.1)
    with pytest.raises(TypeError, match="floating-point"):
        cr.optim.SGD([cr.Tensor([1, 2])], lr=0.1)


def _train(model, opt, xs, ys, steps):
    loss_fn = nn.MSELoss()
    for i in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(cr.Tensor(xs[i])), cr.Tensor(ys[i]))
        loss.backward()
        opt.step()


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: cr.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
        lambda ps: cr.optim.Adam(ps, lr=0.01, amsgrad=True),
        lambda ps: cr.optim.AdamW(ps, lr=0.01),
        lambda ps: cr.optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True, weight_decay=0.01),
        lambda ps: cr.optim.RMSprop(ps, lr=0.01),
        lambda ps: cr.optim.Adagrad(ps, lr=0.05, lr_decay=0.1, initial_accumulator_value=0.1),
    ],
)
def test_state_dict_round_trip_resumes_bit_for_bit(make):
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(10, 8, 3))
    ys = rng.normal(size=(10, 8, 1))

    def fresh():
        model = nn.Sequential(nn.Linear(3, 4, generator=np.random.default_rng(1)), nn.Tanh())
        model.append(nn.Linear(4, 1, generator=np.random.default_rng(2)))
        return model, make(model.parameters())

    straight, opt = fresh()
    _train(straight, opt, xs, ys, 10)

    first, opt1 = fresh()
    _train(first, opt1, xs[:5], ys[:5], 5)
    model_state, opt_state = first.state_dict(), opt1.state_dict()
    _train(first, opt1, xs[5:], ys[5:], 3)  # later training must not leak into the saved state
    resumed, opt2 = fresh()
    resumed.load_state_dict(model_state)
    opt2.load_state_dict(opt_state)
    _train(resumed, opt2, xs[5:], ys[5:], 5)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert np.array_equal(a.data, b.data)


def test_load_state_dict_checks_groups_and_shapes_and_changes_nothing():
    p, q = nn.Parameter([1.0, 2.0]), nn.Parameter([3.0])
    opt = cr.optim.Adam([p, q], lr=0.1)
    ((p * p).sum() + q.sum()).backward()
    opt.step()
    state = opt.state_dict()
    other = cr.optim.Adam([nn.Parameter([1.0, 2.0])], lr=0.1)
    with pytest.raises(ValueError, match="group 0 has 2 parameters in the state dict but 1 here"):
        other.load_state_dict(state)
    swapped = cr.optim.Adam([q, p], lr=0.5)
    with pytest.raises(ValueError, match="'exp_avg' for parameter 0"):
        swapped.load_state_dict(state)
    assert swapped.state == {} and swapped.param_groups[0]["lr"] == 0.5
    with pytest.raises(ValueError, match="has 1 parameter groups, this optimizer has 2"):
        cr.optim.Adam([{"params": [p]}, {"params": [q]}]).load_state_dict(state)


def test_optimizer_state_dict_is_a_copy():
    p = nn.Parameter([1.0])
    opt = cr.optim.SGD([p], lr=0.1, momentum=0.9)
    p.sum().backward()
    opt.step()
    state = opt.state_dict()
    saved = state["state"][0]["momentum_buffer"].copy()
    opt.step()
    assert np.array_equal(state["state"][0]["momentum_buffer"], saved)
    assert state["param_groups"][0]["params"] == [0]
    assert "SGD (" in repr(opt) and "lr: 0.1" in repr(opt)


def test_optimizers_train_a_small_regression():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 2))
    y = np.sin(x[:, :1]) + 0.5 * x[:, 1:]
    for make in (
        lambda ps: cr.optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: cr.optim.Adam(ps, lr=0.02),
    ):
        cr.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
        opt = make(model.parameters())
        losses = []
        for _ in range(200):
            opt.zero_grad()
            loss = nn.MSELoss()(model(cr.Tensor(x)), cr.Tensor(y))
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < 0.05 * losses[0]
        assert all(math.isfinite(v) for v in losses)


def test_backward_through_a_graph_from_before_a_step_raises():
    p = nn.Parameter([1.0, 2.0], name="p")
    opt = cr.optim.SGD([p], lr=0.1)
    loss = (p * p).sum()
    loss.backward()
    opt.step()
    with pytest.raises(cr.InplaceError, match="changed in place"):
        loss.backward()
    # A fresh forward pass after the step is fine.
    opt.zero_grad()
    (p * p).sum().backward()
    assert np.allclose(p.grad, 2 * p.data)


OPTIMIZERS = {
    "sgd": lambda ps: cr.optim.SGD(ps, lr=0.01),
    "sgd momentum": lambda ps: cr.optim.SGD(ps, lr=0.01, momentum=0.9),
    "sgd dampening": lambda ps: cr.optim.SGD(ps, lr=0.01, momentum=0.8, dampening=0.3),
    "sgd nesterov": lambda ps: cr.optim.SGD(ps, lr=0.01, momentum=0.9, nesterov=True),
    "sgd weight decay": lambda ps: cr.optim.SGD(ps, lr=0.02, momentum=0.5, weight_decay=0.1),
    "adam": lambda ps: cr.optim.Adam(ps, lr=0.05),
    "adam weight decay": lambda ps: cr.optim.Adam(ps, lr=0.1, betas=(0.8, 0.99), weight_decay=0.2),
    "adam amsgrad": lambda ps: cr.optim.Adam(ps, lr=0.05, amsgrad=True),
    "adamw": lambda ps: cr.optim.AdamW(ps, lr=0.05, weight_decay=0.1),
    "rmsprop": lambda ps: cr.optim.RMSprop(ps, lr=0.01),
    "rmsprop centered momentum": lambda ps: cr.optim.RMSprop(
        ps, lr=0.01, momentum=0.9, centered=True, weight_decay=0.1
    ),
    "adagrad": lambda ps: cr.optim.Adagrad(ps, lr=0.1, lr_decay=0.1, weight_decay=0.1),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("set_to_none", [True, False])
def test_a_step_after_create_graph_equals_a_step_after_backward(name, set_to_none):
    """After backward(create_graph=True) .grad is a Tensor with a graph; step uses its numbers."""
    make = OPTIMIZERS[name]
    runs = {}
    for create_graph in (False, True):
        w = nn.Parameter(P0.copy(), name="w")
        b = nn.Parameter(np.array([0.2, -0.1, 0.4, 0.0]), name="b")
        opt = make([w, b])
        history = []
        for _ in range(STEPS):
            opt.zero_grad(set_to_none=set_to_none)
            # A cubic term, so the gradient itself depends on w.
            loss = ((cr.Tensor(A) @ w + b - cr.Tensor(B)) ** 2).sum() + (w**3).sum()
            loss.backward(create_graph=create_graph)
            if create_graph:
                assert isinstance(w.grad, cr.Tensor) and w.grad.requires_grad
                kept = w.grad.data.copy()
            opt.step()
            if create_graph:
                # The gradient node is left as it was, and the step recorded nothing.
                assert np.array_equal(w.grad.data, kept)
                assert w.is_leaf and b.is_leaf and cr.is_grad_enabled()
                assert all(
                    not isinstance(v, cr.Tensor) for st in opt.state.values() for v in st.values()
                )
            history.append((w.data.copy(), b.data.copy()))
        opt.zero_grad(set_to_none=set_to_none)
        if set_to_none:
            assert w.grad is None and b.grad is None
        else:
            assert isinstance(w.grad, np.ndarray) and not w.grad.any()
        runs[create_graph] = history
    for step, ((w0, b0), (w1, b1)) in enumerate(zip(runs[False], runs[True]), 1):
        assert np.array_equal(w0, w1) and np.array_equal(b0, b1), f"step {step}"
