"""Wrong gradients must be impossible to miss: anomalies, in-place changes, memory, scale."""

from __future__ import annotations

import math
import tracemalloc
import warnings
import weakref

import numpy as np
import pytest

import chainrule as cr

# ---------------------------------------------------------------------------
# detect_anomaly
# ---------------------------------------------------------------------------


def test_forward_anomaly_names_op_shapes_and_the_line_that_made_it():
    x = cr.Tensor([1.0, 0.0, 2.0], requires_grad=True)
    with cr.detect_anomaly(), pytest.raises(cr.AnomalyError) as info:
        x.log()  # the line the error must point at
    msg = str(info.value)
    assert "log" in msg
    assert "(3,)" in msg
    assert "infinity" in msg
    assert "x.log()  # the line the error must point at" in msg
    assert "test_reliability.py" in msg


def test_forward_anomaly_reports_nan_for_values_too():
    a = cr.Value(-1.0)
    with cr.detect_anomaly(), pytest.raises(cr.AnomalyError, match=r"pow .*NaN"):
        a**0.5


def test_backward_anomaly_names_the_op_whose_gradient_is_bad():
    x = cr.Tensor([0.0, 4.0], requires_grad=True)
    with cr.detect_anomaly():
        y = x.sqrt().sum()  # finite forward: sqrt(0) = 0
        with pytest.raises(cr.AnomalyError) as info:
            y.backward()
    msg = str(info.value)
    assert "backward" in msg
    assert "sqrt" in msg
    assert "y = x.sqrt().sum()" in msg


def test_anomaly_mode_is_off_by_default_and_restored_after():
    assert not cr.modes.STATE.anomaly
    with cr.detect_anomaly():
        assert cr.modes.STATE.anomaly
        with cr.detect_anomaly():
            pass
        assert cr.modes.STATE.anomaly
    assert not cr.modes.STATE.anomaly
    # Off: an infinite result is simply returned.
    y = cr.Tensor([0.0], requires_grad=True).log()
    assert y.data[0] == -np.inf


def test_anomaly_mode_passes_clean_computations_unchanged():
    rng = np.random.default_rng(0)
    w = cr.Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    x = cr.Tensor(rng.standard_normal(4))
    (w @ x).tanh().sum().backward()
    expected = w.grad.copy()
    w.zero_grad()
    with cr.detect_anomaly():
        (w @ x).tanh().sum().backward()
    np.testing.assert_array_equal(w.grad, expected)


# ---------------------------------------------------------------------------
# inf and nan follow numpy, quietly
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn, expected",
    [
        (lambda t: t.log(), [-np.inf, 0.0]),
        (lambda t: t.sqrt(), [0.0, 1.0]),
        (lambda t: 1.0 / t, [np.inf, 1.0]),
        (lambda t: (t - 1.0) ** 0.5, [np.nan, 0.0]),
        (lambda t: (t * 1000.0).exp(), [1.0, np.inf]),
    ],
)
def test_domain_edges_follow_numpy_without_warnings(fn, expected):
    t = cr.Tensor([0.0, 1.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fn(t)
        y.sum().backward()  # gradients may be inf/nan too, but silently
    np.testing.assert_array_equal(y.data, np.array(expected))


@pytest.mark.parametrize(
    "fn, expected",
    [
        (lambda v: v.log(), -math.inf),
        (lambda v: 1.0 / v, math.inf),
        (lambda v: v / 0.0, math.nan),
        (lambda v: (v - 1.0) ** 0.5, math.nan),
    ],
)
def test_value_domain_edges_follow_ieee(fn, expected):
    v = cr.Value(0.0)
    out = fn(v).data
    assert (math.isnan(out) and math.isnan(expected)) or out == expected


@pytest.mark.parametrize("base", [0.0, -0.0, 2.0, -2.0, 1e200, -1e200])
@pytest.mark.parametrize("exponent", [-2.0, -1.0, 0.5, 2.0, 3.0])
def test_value_power_and_its_gradient_follow_numpy(base, exponent):
    """Overflow keeps its sign, 0 ** negative is +-inf, a fractional power of a negative is nan."""
    v = cr.Value(base)
    t = cr.Tensor(base, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, yt = v**exponent, t**exponent
        y.backward()
        yt.backward()
    np.testing.assert_array_equal(y.data, yt.data)
    np.testing.assert_array_equal(v.grad, t.grad)
    with np.errstate(all="ignore"):
        expected = np.float64(base) ** np.float64(exponent)
    np.testing.assert_array_equal(y.data, expected)


@pytest.mark.parametrize(
    "fn",
    [
        lambda v: v.log(),
        lambda v: v**0.5,
        lambda v: 1.0 / v,
        lambda v: v**-1,
        lambda v: (v - 2.0) ** 0.5,
        lambda v: (-2.0) ** (v + 0.5),
        lambda v: (v + 800.0).exp(),
    ],
)
@pytest.mark.parametrize("at", [0.0, 1e300])
def test_value_gradients_at_domain_edges_match_tensor_gradients(fn, at):
    """Python floats raise or turn complex where numpy gives inf/nan; Values must not."""
    v = cr.Value(at)
    t = cr.Tensor(at, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn(v).backward()
        fn(t).backward()
    assert isinstance(v.grad, float)
    np.testing.assert_array_equal(v.grad, t.grad)


def test_sigmoid_and_tanh_are_finite_and_exact_at_extremes():
    x = cr.Tensor([-1000.0, -40.0, 0.0, 40.0, 1000.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = x.sigmoid()
        s.sum().backward()
        t = x.tanh()
    np.testing.assert_allclose(s.data, [0.0, math.exp(-40) / (1 + math.exp(-40)), 0.5, 1.0, 1.0])
    assert np.isfinite(x.grad).all()
    np.testing.assert_array_equal(t.data, [-1.0, -1.0, 0.0, 1.0, 1.0])
    for big in (-1000.0, 1000.0):
        v = cr.Value(big)
        v.sigmoid().backward()
        assert v.grad == 0.0


def test_log_softmax_and_logsumexp_are_exact_for_huge_inputs():
    x = cr.Tensor([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ls = x.log_softmax(axis=1)
        lse = x.logsumexp(axis=1)
        (ls.sum() + lse.sum()).backward()
    np.testing.assert_allclose(ls.data[0], [0.0, -1000.0, -2000.0])
    np.testing.assert_allclose(ls.data[1], [-math.log(3)] * 3)
    np.testing.assert_allclose(lse.data, [1000.0, -1e4 + math.log(3)])
    assert np.isfinite(x.grad).all()


# ---------------------------------------------------------------------------
# In-place changes
# ---------------------------------------------------------------------------


def _graph():
    w = cr.Tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True, name="w")
    x = cr.Tensor([0.3, -0.7], name="x")
    return w, x, (w @ x).sigmoid().sum()


def test_inplace_change_of_a_saved_input_makes_backward_raise():
    _, x, y = _graph()
    x[0] = 5.0  # x was saved by matmul
    with pytest.raises(cr.InplaceError, match=r"matmul.*'x'.*changed in place"):
        y.backward()


def test_optimizer_style_update_between_forward_and_backward_is_caught():
    w, x, y = _graph()
    with cr.no_grad():
        w -= 0.1  # what an optimizer step does
    with pytest.raises(cr.InplaceError, match=r"'w'"):
        y.backward()
    # A fresh forward after the change is fine, and uses the new values.
    y2 = (w @ x).sigmoid().sum()
    y2.backward()
    expected = cr.grad((w @ x).sigmoid().sum(), w)[0].data
    np.testing.assert_allclose(w.grad, expected)


def test_changing_a_saved_output_is_caught():
    a = cr.Tensor([0.1, 0.2], requires_grad=True)
    s = a.sigmoid()  # sigmoid's rule reads its own output
    with cr.no_grad():
        s.fill_(0.0)
    with pytest.raises(cr.InplaceError, match=r"sigmoid .* needs its output"):
        s.backward(np.ones(2))


def test_inplace_on_a_leaf_that_requires_grad_raises_outside_no_grad():
    w = cr.Tensor([1.0, 2.0], requires_grad=True, name="w")
    for change in (
        lambda: w.__iadd__(1.0),
        lambda: w.__setitem__(0, 3.0),
        lambda: w.add_(1.0),
        lambda: w.zero_(),
    ):
        with pytest.raises(RuntimeError, match=r"leaf that requires grad"):
            change()
    np.testing.assert_array_equal(w.data, [1.0, 2.0])
    with cr.no_grad():
        w += 1.0
        w.add_([1.0, 1.0], alpha=-0.5)
    np.testing.assert_array_equal(w.data, [1.5, 2.5])


def test_augmented_assignment_on_an_intermediate_rebinds_like_out_of_place():
    a = cr.Tensor([1.0, 2.0], requires_grad=True)
    h = a * 3.0
    h += a  # h = 3a + a
    h.sum().backward()
    np.testing.assert_array_equal(a.grad, [4.0, 4.0])


def test_inplace_ops_report_shape_and_dtype_problems():
    t = cr.Tensor(np.zeros((2, 3)), name="t")
    with pytest.raises(ValueError, match=r"\(4,\).*'t'.*\(2, 3\)"):
        t += np.ones(4)
    i = cr.Tensor([1, 2, 3], name="i")
    with pytest.raises(TypeError, match="int64"):
        i += 0.5
    with pytest.raises(IndexError, match=r"setitem.*\(2, 3\)"):
        t[5, 0] = 1.0


# ---------------------------------------------------------------------------
# Memory: graphs are freed by reference counting alone
# ---------------------------------------------------------------------------


def _training_step(w, x, target):
    out = (x @ w).tanh()
    loss = ((out - target) ** 2).mean()
    loss.backward()
    with cr.no_grad():
        w -= 0.01 * w.grad
    w.zero_grad()
    return loss, out


@pytest.mark.usefixtures("refcount_only")
def test_training_step_graph_is_freed_without_the_cycle_collector():
    # (test_engine.py checks plain Value and Tensor graphs; this one includes
    # the update that follows backward.)
    rng = np.random.default_rng(1)
    w = cr.Tensor(rng.standard_normal((5, 3)), requires_grad=True)
    x = cr.Tensor(rng.standard_normal((8, 5)))
    target = cr.Tensor(rng.standard_normal((8, 3)))
    loss, out = _training_step(w, x, target)
    refs = [weakref.ref(n) for n in cr.engine.iter_graph([loss]) if not n.is_leaf]
    assert len(refs) >= 5
    del loss, out
    assert all(r() is None for r in refs)


def test_a_thousand_training_steps_do_not_grow_memory():
    rng = np.random.default_rng(2)
    w = cr.Tensor(rng.standard_normal((5, 3)), requires_grad=True)
    x = cr.Tensor(rng.standard_normal((8, 5)))
    target = cr.Tensor(rng.standard_normal((8, 3)))
    for _ in range(50):  # warm up caches
        _training_step(w, x, target)
    tracemalloc.start()
    try:
        for _ in range(100):
            _training_step(w, x, target)
        after_100, _ = tracemalloc.get_traced_memory()
        for _ in range(900):
            _training_step(w, x, target)
        after_1000, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A leak of even one small array per step would add tens of kilobytes.
    assert after_1000 - after_100 < 16_000


# ---------------------------------------------------------------------------
# Scale: deep and wide graphs
# ---------------------------------------------------------------------------


def test_wide_graph_one_input_used_100000_times():
    x = cr.Value(0.5)
    total = x * 0.0
    for k in range(100_000):
        total = total + x * (k % 3)
    total.backward()
    assert x.grad == sum(k % 3 for k in range(100_000))


def test_wide_tensor_graph_accumulates_every_use():
    x = cr.Tensor([1.0, 2.0], requires_grad=True)
    terms = [x * float(k) for k in range(2_000)]
    cr.stack(terms).sum().backward()
    np.testing.assert_array_equal(x.grad, [sum(range(2_000))] * 2)


@pytest.mark.parametrize("big", [1e3, 1e4, 1e6])
def test_composed_stable_functions_at_extreme_inputs(big):
    """softplus, cross-entropy and BCE stay finite and exact where exp overflows."""
    from chainrule.nn import functional as F

    x = cr.Tensor([-big, 0.0, big], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sp = F.softplus(x)
        sp.sum().backward()
    np.testing.assert_allclose(sp.data, [0.0, math.log(2.0), big])
    np.testing.assert_allclose(x.grad, [0.0, 0.5, 1.0])  # d softplus = sigmoid

    logits = cr.Tensor([[big, 0.0, -big], [-big, -big, big]], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ce = F.cross_entropy(logits, np.array([2, 2]), reduction="none")
        ce.sum().backward()
    np.testing.assert_allclose(ce.data, [2 * big, 0.0])
    expected = np.array([[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]])  # softmax - one_hot
    np.testing.assert_allclose(logits.grad, expected, atol=1e-12)

    z = cr.Tensor([-big, big], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bce = F.binary_cross_entropy_with_logits(z, np.array([1.0, 1.0]), reduction="none")
        bce.sum().backward()
    np.testing.assert_allclose(bce.data, [big, 0.0])
    np.testing.assert_allclose(z.grad, [-1.0, 0.0], atol=1e-12)

    p = z.sigmoid()  # probabilities of exactly 0 and 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bce_p = F.binary_cross_entropy(p, np.array([1.0, 0.0]), reduction="none")
    # As PyTorch does, log is clamped at -100, so the loss of a certain mistake is 100.
    np.testing.assert_allclose(bce_p.data, [100.0, 100.0])
    assert np.isfinite(bce_p.data).all()
