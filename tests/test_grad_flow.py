"""nn.utils.grad_norms measures each parameter's gradient; plot_grad_flow draws them."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn.utils import clip_grad_norm_, grad_norms, plot_grad_flow


def test_norms_of_a_linear_layer_match_its_gradient_worked_out_by_hand():
    rng = np.random.default_rng(0)
    for n, d_in, d_out in [(1, 1, 1), (5, 3, 2), (7, 4, 6)]:
        x = rng.normal(size=(n, d_in))
        layer = nn.Linear(d_in, d_out, generator=rng)
        layer(cr.Tensor(x)).sum().backward()
        # L = sum_ij (x W^T + b)_ij: dL/dW = 1 (sum of x's rows), each of d_out rows
        # alike; dL/db = n in every entry.
        norms = grad_norms(layer)
        assert list(norms) == ["weight", "bias"]
        assert norms["weight"] == pytest.approx(np.sqrt(d_out) * np.linalg.norm(x.sum(axis=0)))
        assert norms["bias"] == pytest.approx(np.sqrt(d_out) * n)


def test_names_follow_the_model_and_parameters_without_a_gradient_are_left_out():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    assert grad_norms(model) == {}  # before any backward
    model[0].bias.requires_grad_(False)
    (model(cr.randn(5, 3)) ** 2).sum().backward()
    norms = grad_norms(model)
    assert list(norms) == ["0.weight", "2.weight", "2.bias"]
    assert all(isinstance(v, float) and v > 0 for v in norms.values())
    # Together they make the total norm that clipping computes independently.
    total = clip_grad_norm_(model.parameters(), max_norm=1e9).item()
    assert np.sqrt(sum(v * v for v in norms.values())) == pytest.approx(total, rel=1e-12)


def test_tensor_gradients_and_float32_extremes_are_measured():
    w = nn.Parameter(np.array([3.0, 4.0]))
    holder = nn.Module()
    holder.w = w
    (w * w).sum().backward(create_graph=True)  # .grad is a Tensor: 2w
    assert isinstance(w.grad, cr.Tensor)
    assert grad_norms(holder) == {"w": pytest.approx(10.0)}
    big = nn.Parameter(np.zeros(4, dtype=np.float32))
    holder.w = big
    big.grad = np.full(4, 1e30, dtype=np.float32)  # its squares overflow float32
    assert grad_norms(holder)["w"] == pytest.approx(2e30, rel=1e-6)


def test_grad_norms_wants_a_module():
    with pytest.raises(TypeError, match=r"grad_norms: expected an nn\.Module, got list"):
        grad_norms([nn.Parameter([1.0])])


@pytest.fixture
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def _history():
    return [
        {"0.weight": 1e-6, "0.bias": 2e-6, "2.weight": 0.5},
        {"0.weight": 2e-6, "2.weight": 0.25},  # 0.bias had no gradient this step
        {"0.weight": 4e-6, "0.bias": 1e-6, "2.weight": 0.125},
    ]


def test_plot_draws_one_line_per_parameter_over_the_steps(plt):
    ax = plot_grad_flow(_history(), title="flow")
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["0.weight", "0.bias", "2.weight"]
    assert np.array_equal(lines[0].get_xdata(), [0, 1, 2])
    assert np.array_equal(lines[0].get_ydata(), [1e-6, 2e-6, 4e-6])
    bias = np.asarray(lines[1].get_ydata())
    assert bias[0] == 2e-6 and np.isnan(bias[1]) and bias[2] == 1e-6
    assert ax.get_yscale() == "log" and ax.get_title() == "flow"
    # Colours run along the model: first and last parameters differ.
    assert lines[0].get_color() != lines[-1].get_color()


def test_plot_on_given_axes_with_chosen_names(plt):
    _, ax = plt.subplots()
    out = plot_grad_flow(_history(), ax, names=["2.weight", "0.weight"])
    assert out is ax
    assert [line.get_label() for line in ax.get_lines()] == ["2.weight", "0.weight"]


@pytest.mark.parametrize(
    ("history", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, "history is empty"),
        ({"0.weight": 1.0}, {}, TypeError, "history must be a list of grad_norms"),
        ([{"a": 1.0}, 3.0], {}, TypeError, r"history\[1\] is a float"),
        ([{"a": 1.0}], {"names": ["b"]}, ValueError, r"no recorded norms for \['b'\]"),
    ],
)
def test_plot_refuses_bad_input_clearly(plt, history, kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_grad_flow(history, **kwargs)


def test_plot_without_matplotlib_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="plot_grad_flow: drawing needs matplotlib"):
        plot_grad_flow(_history())
