"""LeakyReLU, ELU, SiLU, GELU, LayerNorm, Embedding and Flatten, and their functional forms.

Each forward is compared with a numpy transcription of PyTorch's formula, each
gradient with central differences (``cr.gradcheck``) and, where the function
is smooth, each second derivative too (``cr.gradgradcheck``), over several
shapes.  Piecewise functions are checked away from their kink, and at the kink
against PyTorch's convention for the derivative there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn

SHAPES = [(), (5,), (2, 3), (2, 3, 4)]

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _leaf(data: Any) -> cr.Tensor:
    return cr.Tensor(np.asarray(data, dtype=np.float64), requires_grad=True)


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> cr.Tensor:
    """Values of either sign at least 0.1 from 0, where the piecewise functions have a kink."""
    return _leaf(rng.uniform(0.1, 2.0, shape) * rng.choice([-1.0, 1.0], shape))


# -- numpy transcriptions of PyTorch's formulas ---------------------------------


def np_leaky_relu(x: np.ndarray, slope: float) -> np.ndarray:
    return np.where(x > 0, x, x * slope)


def np_elu(x: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(x > 0, x, alpha * np.expm1(x))


def np_silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def np_gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return x * 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))


def np_layer_norm(x: np.ndarray, k: int, w: Any, b: Any, eps: float) -> np.ndarray:
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)  # biased, as PyTorch
    y = (x - mean) / np.sqrt(var + eps)
    return y * (1.0 if w is None else w) + (0.0 if b is None else b)


# -- the elementwise activations ------------------------------------------------

#: name -> (chainrule function, numpy reference, smooth away from 0 only?)
ACTIVATIONS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "leaky_relu": (lambda x: F.leaky_relu(x), lambda x: np_leaky_relu(x, 0.01)),
    "leaky_relu(0.3)": (lambda x: F.leaky_relu(x, 0.3), lambda x: np_leaky_relu(x, 0.3)),
    "leaky_relu(-2)": (lambda x: F.leaky_relu(x, -2), lambda x: np_leaky_relu(x, -2.0)),
    "elu": (lambda x: F.elu(x), lambda x: np_elu(x, 1.0)),
    "elu(0.5)": (lambda x: F.elu(x, alpha=0.5), lambda x: np_elu(x, 0.5)),
    "silu": (F.silu, np_silu),
    "gelu": (F.gelu, lambda x: np_gelu(x, "none")),
    "gelu(tanh)": (lambda x: F.gelu(x, approximate="tanh"), lambda x: np_gelu(x, "tanh")),
    "LeakyReLU(0.2)": (nn.LeakyReLU(0.2), lambda x: np_leaky_relu(x, 0.2)),
    "ELU(2.0)": (nn.ELU(2.0), lambda x: np_elu(x, 2.0)),
    "SiLU": (nn.SiLU(), np_silu),
    "GELU": (nn.GELU(), lambda x: np_gelu(x, "none")),
    "GELU(tanh)": (nn.GELU("tanh"), lambda x: np_gelu(x, "tanh")),
}
SMOOTH = {"silu", "gelu", "gelu(tanh)", "SiLU", "GELU", "GELU(tanh)"}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("shape", SHAPES)
def test_activation_forward_matches_the_formula(name: str, shape: tuple[int, ...]) -> None:
    ours, reference = ACTIVATIONS[name]
    x = np.random.default_rng(len(shape)).normal(scale=3.0, size=shape)
    out = ours(cr.Tensor(x))
    assert out.shape == shape
    np.testing.assert_allclose(out.data, reference(x), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("shape", SHAPES)
def test_activation_gradcheck_and_gradgradcheck(name: str, shape: tuple[int, ...]) -> None:
    fn, _ = ACTIVATIONS[name]
    rng = np.random.default_rng(7)
    x = _leaf(rng.normal(size=shape)) if name in SMOOTH else _away_from_zero(rng, shape)
    assert cr.gradcheck(fn, [x])
    assert cr.gradgradcheck(fn, [x])


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_smooth_activations_are_twice_differentiable_at_zero(name: str) -> None:
    fn, _ = ACTIVATIONS[name]
    x = _leaf([0.0, 1e-3, -1e-3])
    assert cr.gradgradcheck(fn, [x])


def test_activation_gradients_match_the_derivatives_written_out() -> None:
    x = np.array([-3.0, -0.7, -1e-8, 1e-8, 0.4, 2.5])
    s = 1.0 / (1.0 + np.exp(-x))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
    expected = {
        "leaky_relu(0.3)": np.where(x > 0, 1.0, 0.3),
        "elu(0.5)": np.where(x > 0, 1.0, 0.5 * np.exp(x)),
        "silu": s * (1.0 + x * (1.0 - s)),
        "gelu": cdf + x * pdf,
    }
    for name, want in expected.items():
        t = _leaf(x)
        ACTIVATIONS[name][0](t).sum().backward()
        np.testing.assert_allclose(t.grad, want, rtol=1e-12, err_msg=name)


def test_the_derivative_at_zero_follows_pytorch() -> None:
    # PyTorch takes the x <= 0 branch at 0: leaky_relu'(0) = negative_slope and
    # elu'(0) = alpha (elu's two one-sided slopes differ when alpha != 1).
    x = _leaf([0.0, 0.0])
    F.leaky_relu(x, 0.25).sum().backward()
    assert x.grad.tolist() == [0.25, 0.25]
    x = _leaf([0.0])
    F.elu(x, alpha=3.0).sum().backward()
    assert x.grad.tolist() == [3.0]


def test_elu_keeps_its_digits_near_zero_and_has_no_overflow_far_from_it() -> None:
    # exp(x) - 1 would lose half the digits of -1e-9; e^x - 1 as tanh(x/2)(e^x + 1) keeps them.
    x = _leaf([-1e-9, -1e-12, -5e-300, -800.0, 800.0, -np.inf, np.inf])
    out = F.elu(x)
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(out.data, np_elu(x.data, 1.0), rtol=4e-16, atol=0)
    out.sum().backward()
    assert np.all(np.isfinite(x.grad))
    want = np.where(x.data > 0, 1.0, np.exp(np.minimum(x.data, 0.0)))
    np.testing.assert_allclose(x.grad, want, rtol=1e-15)


def test_leaky_relu_passes_nan_through() -> None:
    out = F.leaky_relu(cr.Tensor([np.nan, -1.0]))
    assert np.isnan(out.data[0]) and out.data[1] == -0.01


def test_gelu_float32_stays_float32() -> None:
    x = np.array([-1.5, 0.25, 2.0], dtype=np.float32)
    for approximate in ("none", "tanh"):
        out = F.gelu(cr.Tensor(x), approximate=approximate)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.data, np_gelu(x.astype(np.float64), approximate), rtol=1e-6)


def test_forward_mode_agrees_with_reverse_mode_through_the_activations() -> None:
    x = np.random.default_rng(3).normal(size=(4,))
    for name in ("gelu", "gelu(tanh)", "silu", "elu(0.5)", "leaky_relu(0.3)"):
        fn = ACTIVATIONS[name][0]
        np.testing.assert_allclose(
            cr.func.jacfwd(fn)(x), cr.func.jacrev(fn)(x), rtol=1e-12, atol=1e-15, err_msg=name
        )


# -- LayerNorm --------------------------------------------------------------------

LAYER_NORM_SHAPES = [((5,), (5,)), ((3, 4), (4,)), ((2, 3, 4), (3, 4)), ((2, 1, 3), (3,))]


@pytest.mark.parametrize(("shape", "normalized"), LAYER_NORM_SHAPES)
def test_layer_norm_forward_matches_the_formula(shape, normalized) -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(loc=2.0, scale=3.0, size=shape)
    w = rng.normal(size=normalized)
    b = rng.normal(size=normalized)
    k = len(normalized)
    for eps in (1e-5, 0.5):
        got = F.layer_norm(cr.Tensor(x), normalized, cr.Tensor(w), cr.Tensor(b), eps)
        np.testing.assert_allclose(got.data, np_layer_norm(x, k, w, b, eps), rtol=1e-12, atol=1e-13)
        bare = F.layer_norm(cr.Tensor(x), list(normalized), eps=eps)
        want = np_layer_norm(x, k, None, None, eps)
        np.testing.assert_allclose(bare.data, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(("shape", "normalized"), LAYER_NORM_SHAPES)
def test_layer_norm_gradcheck_and_gradgradcheck(shape, normalized) -> None:
    rng = np.random.default_rng(12)
    x, w, b = (
        _leaf(rng.normal(size=shape)),
        _leaf(rng.normal(size=normalized)),
        _leaf(rng.normal(size=normalized)),
    )

    def fn(x, w, b):
        return F.layer_norm(x, normalized, w, b, eps=1e-3)

    assert cr.gradcheck(fn, [x, w, b])
    assert cr.gradgradcheck(fn, [x, w, b])
    assert cr.gradgradcheck(lambda x: F.layer_norm(x, normalized), [x])


def test_layer_norm_module_parameters_and_output() -> None:
    norm = nn.LayerNorm([3, 4])
    assert norm.normalized_shape == (3, 4)
    assert list(norm.state_dict()) == ["weight", "bias"]
    np.testing.assert_array_equal(norm.weight.data, np.ones((3, 4)))
    np.testing.assert_array_equal(norm.bias.data, np.zeros((3, 4)))
    rng = np.random.default_rng(13)
    norm.weight.data[...] = rng.normal(size=(3, 4))
    norm.bias.data[...] = rng.normal(size=(3, 4))
    x = rng.normal(size=(2, 3, 4))
    want = np_layer_norm(x, 2, norm.weight.data, norm.bias.data, 1e-5)
    np.testing.assert_allclose(norm(cr.Tensor(x)).data, want, rtol=1e-12, atol=1e-13)
    norm(cr.Tensor(x)).sum().backward()
    # d(sum y)/d bias counts the samples; d(sum y)/d weight sums the normalized values.
    np.testing.assert_allclose(norm.bias.grad, np.full((3, 4), 2.0))
    np.testing.assert_allclose(norm.weight.grad, np_layer_norm(x, 2, None, None, 1e-5).sum(axis=0))

    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.LayerNorm(4, bias=False))
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight"]
    assert model[1].weight.name == "1.weight"
    plain = nn.LayerNorm(4, elementwise_affine=False)
    assert plain.weight is None and plain.bias is None and plain.state_dict() == {}
    np.testing.assert_allclose(
        plain(cr.Tensor(x[0])).data, np_layer_norm(x[0], 1, None, None, 1e-5), rtol=1e-12
    )


def test_layer_norm_of_a_constant_row_is_zero_with_a_finite_gradient() -> None:
    x = _leaf([[2.0, 2.0, 2.0]])
    out = F.layer_norm(x, 3)
    assert out.data.tolist() == [[0.0, 0.0, 0.0]]
    (out * cr.Tensor([[1.0, -2.0, 0.5]])).sum().backward()
    assert np.all(np.isfinite(x.grad))


# -- Embedding ---------------------------------------------------------------------


@pytest.mark.parametrize("index_shape", [(), (4,), (2, 3), (2, 2, 2)])
def test_embedding_forward_picks_rows_and_gradient_adds_up(index_shape) -> None:
    rng = np.random.default_rng(21)
    weight = _leaf(rng.normal(size=(6, 3)))
    idx = rng.integers(0, 6, size=index_shape)
    out = F.embedding(idx, weight)
    assert out.shape == index_shape + (3,)
    np.testing.assert_array_equal(out.data, weight.data[idx])
    upstream = rng.normal(size=out.shape)
    (out * cr.Tensor(upstream)).sum().backward()
    want = np.zeros((6, 3))
    for pos in np.ndindex(*index_shape):
        want[idx[pos]] += upstream[pos]
    np.testing.assert_allclose(weight.grad, want, rtol=1e-15)
    assert cr.gradcheck(lambda w: F.embedding(idx, w), [weight])
    assert cr.gradgradcheck(lambda w: F.embedding(idx, w) ** 2.0, [weight])


def test_embedding_repeated_indices_accumulate() -> None:
    emb = nn.Embedding(4, 2)
    emb(cr.tensor([[3, 3], [3, 1]])).sum().backward()
    assert emb.weight.grad.tolist() == [[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [3.0, 3.0]]


def test_embedding_takes_integer_tensors_arrays_lists_and_ints() -> None:
    weight = cr.Tensor(np.arange(12.0).reshape(4, 3))
    for idx in (cr.tensor([2, 0]), np.array([2, 0], dtype=np.uint8), [2, 0], np.int32(2), 2):
        out = F.embedding(idx, weight)
        want = np.arange(12.0).reshape(4, 3)[
            np.asarray(idx.data if isinstance(idx, cr.Tensor) else idx)
        ]
        np.testing.assert_array_equal(out.data, want)


def test_embedding_weight_is_standard_normal_from_the_seeded_generator() -> None:
    emb = nn.Embedding(7, 5, generator=np.random.default_rng(5))
    np.testing.assert_array_equal(emb.weight.data, np.random.default_rng(5).standard_normal((7, 5)))
    cr.manual_seed(9)
    a = nn.Embedding(300, 100).weight.data
    cr.manual_seed(9)
    b = nn.Embedding(300, 100).weight.data
    np.testing.assert_array_equal(a, b)
    # 30000 draws of N(0, 1): mean within 5 standard errors of 0, spread near 1.
    assert abs(a.mean()) < 5 / math.sqrt(a.size) and abs(a.std() - 1.0) < 0.02
    assert emb.weight.dtype == np.float64 and emb.weight.requires_grad
    assert nn.Embedding(3, 2, dtype=np.float32).weight.dtype == np.float32


def test_embedding_padding_row_starts_at_zero_and_gets_no_gradient() -> None:
    emb = nn.Embedding(5, 3, padding_idx=-1)  # -1 counts from the end: row 4
    assert emb.padding_idx == 4
    np.testing.assert_array_equal(emb.weight.data[4], np.zeros(3))
    assert np.all(emb.weight.data[:4] != 0)
    emb.weight.data[4] = [1.0, 2.0, 3.0]  # a padding row need not stay zero; its value is used
    out = emb(np.array([[4, 1], [4, 4]]))
    np.testing.assert_array_equal(out.data[0, 0], [1.0, 2.0, 3.0])
    out.sum().backward()
    assert emb.weight.grad[4].tolist() == [0.0, 0.0, 0.0]
    assert emb.weight.grad[1].tolist() == [1.0, 1.0, 1.0]
    # (So the padding row's gradient is 0 by design, not the derivative finite differences see.)
    w = _leaf(np.ones((3, 2)))
    F.embedding([[0, 2], [2, 1]], w, padding_idx=2).sum().backward()
    assert w.grad.tolist() == [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]


def test_embedding_given_and_pretrained_weights() -> None:
    table = np.arange(6.0).reshape(3, 2)
    emb = nn.Embedding(3, 2, weight=table)
    np.testing.assert_array_equal(emb.weight.data, table)
    assert emb.weight.data is not table
    frozen = nn.Embedding.from_pretrained(cr.Tensor(table))
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(frozen(cr.tensor([2])).data, [[4.0, 5.0]])
    trainable = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=0)
    assert trainable.weight.requires_grad and trainable.padding_idx == 0
    np.testing.assert_array_equal(trainable.weight.data, table)  # the given row 0 is kept
    assert list(nn.Sequential(nn.Embedding(3, 2), nn.Linear(2, 1)).state_dict()) == [
        "0.weight",
        "1.weight",
        "1.bias",
    ]


# -- Flatten ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "start", "end", "want"),
    [
        ((2, 3, 4), 1, -1, (2, 12)),
        ((2, 3, 4, 5), 1, 2, (2, 12, 5)),
        ((2, 3, 4), 0, -1, (24,)),
        ((2, 3, 4), -2, -1, (2, 12)),
        ((2, 3), 1, 1, (2, 3)),
        ((2, 0, 3), 1, -1, (2, 0)),
        ((0, 3, 4), 1, 2, (0, 12)),
        ((), 0, -1, (1,)),
    ],
)
def test_flatten_shapes_and_gradient(shape, start, end, want) -> None:
    rng = np.random.default_rng(31)
    x = _leaf(rng.normal(size=shape))
    layer = nn.Flatten(start, end)
    out = layer(x)
    assert out.shape == want
    np.testing.assert_array_equal(out.data, x.data.reshape(want))
    assert cr.gradcheck(lambda x: layer(x) ** 2.0, [x])
    assert cr.gradgradcheck(lambda x: layer(x) ** 2.0, [x])


# -- how they print, and their errors ----------------------------------------------


@pytest.mark.parametrize(
    ("module", "text"),
    [
        (nn.LeakyReLU(), "LeakyReLU(negative_slope=0.01)"),
        (nn.LeakyReLU(0.2), "LeakyReLU(negative_slope=0.2)"),
        (nn.LeakyReLU(0), "LeakyReLU(negative_slope=0)"),
        (nn.ELU(), "ELU(alpha=1.0)"),
        (nn.ELU(2), "ELU(alpha=2)"),
        (nn.SiLU(), "SiLU()"),
        (nn.GELU(), "GELU(approximate='none')"),
        (nn.GELU(approximate="tanh"), "GELU(approximate='tanh')"),
        (nn.LayerNorm(3), "LayerNorm((3,), eps=1e-05, elementwise_affine=True, bias=True)"),
        (
            nn.LayerNorm([2, 3], eps=1e-3, elementwise_affine=False),
            "LayerNorm((2, 3), eps=0.001, elementwise_affine=False, bias=False)",
        ),
        (
            nn.LayerNorm(4, bias=False),
            "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=False)",
        ),
        (nn.Embedding(10, 3), "Embedding(10, 3)"),
        (nn.Embedding(10, 3, padding_idx=-1), "Embedding(10, 3, padding_idx=9)"),
        (nn.Flatten(), "Flatten(start_dim=1, end_dim=-1)"),
        (nn.Flatten(0, 2), "Flatten(start_dim=0, end_dim=2)"),
    ],
)
def test_repr_as_pytorch_prints_it(module, text) -> None:
    assert repr(module) == text


def test_a_model_of_the_new_layers_trains() -> None:
    cr.manual_seed(0)
    model = nn.Sequential(
        nn.Embedding(8, 4),
        nn.Flatten(),
        nn.LayerNorm(12),
        nn.Linear(12, 6),
        nn.GELU(),
        nn.Linear(6, 2),
    )
    opt = cr.optim.Adam(model.parameters(), lr=0.05)
    tokens = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 0], [1, 3, 5]])
    labels = np.array([0, 1, 1, 0])
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(model(tokens), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


ERRORS = [
    (
        lambda: F.gelu(cr.Tensor([1.0]), approximate="erf"),
        ValueError,
        "gelu: approximate must be 'none' or 'tanh', got 'erf'",
    ),
    (lambda: nn.GELU("Tanh"), ValueError, "GELU: approximate must be"),
    (lambda: nn.LeakyReLU("0.1"), TypeError, "LeakyReLU: negative_slope must be a real number"),
    (lambda: F.elu(cr.Tensor([1.0]), alpha=None), TypeError, "elu: alpha must be a real number"),
    (
        lambda: nn.LeakyReLU(inplace=True),
        TypeError,
        "LeakyReLU: chainrule does not support the keyword inplace=",
    ),
    (
        lambda: F.silu(cr.Tensor([1.0]), inplace=True),
        TypeError,
        "silu: chainrule does not support the keyword inplace=",
    ),
    (lambda: nn.ELU(inplace=True), TypeError, "keyword inplace="),
    (
        lambda: F.layer_norm(cr.Tensor(np.ones((2, 3))), 4),
        ValueError,
        r"layer_norm: input of shape \(2, 3\) does not end with normalized_shape \(4,\)",
    ),
    (
        lambda: F.layer_norm(cr.Tensor(np.ones(3)), (2, 3)),
        ValueError,
        r"does not end with normalized_shape \(2, 3\)",
    ),
    (
        lambda: F.layer_norm(cr.Tensor(np.ones((2, 3))), 3, cr.Tensor(np.ones(2))),
        ValueError,
        r"layer_norm: weight has shape \(2,\), expected normalized_shape \(3,\)",
    ),
    (
        lambda: F.layer_norm(cr.Tensor(np.ones((2, 3))), 3, None, cr.Tensor(np.ones((1, 3)))),
        ValueError,
        r"layer_norm: bias has shape \(1, 3\)",
    ),
    (
        lambda: nn.LayerNorm(()),
        ValueError,
        "LayerNorm: normalized_shape must have at least one dimension",
    ),
    (lambda: nn.LayerNorm(0), ValueError, "LayerNorm: normalized_shape must be positive sizes"),
    (
        lambda: nn.LayerNorm(2.5),
        TypeError,
        "LayerNorm: normalized_shape must be an int or a sequence of ints",
    ),
    (
        lambda: nn.LayerNorm(3, dtype=np.int64),
        TypeError,
        "LayerNorm: dtype must be a floating-point type",
    ),
    (
        lambda: nn.Embedding(5, 2)(cr.tensor([1, 5])),
        IndexError,
        r"embedding: index 5 at position \(1,\) is out of range for 5 embeddings; "
        r"indices must be in \[0, 4\]",
    ),
    (
        lambda: nn.Embedding(5, 2)([[0, -1]]),
        IndexError,
        r"embedding: index -1 at position \(0, 1\) is out of range",
    ),
    (
        lambda: nn.Embedding(5, 2)(cr.Tensor([1.0])),
        TypeError,
        "embedding: indices must be integers, got dtype float64",
    ),
    (
        lambda: nn.Embedding(5, 2)(np.array([True])),
        TypeError,
        "embedding: indices must be integers, got dtype bool",
    ),
    (lambda: nn.Embedding(5, 2)("a"), TypeError, "embedding: indices must be integers"),
    (
        lambda: nn.Embedding(5, 2, padding_idx=5),
        ValueError,
        r"Embedding: padding_idx must be in \[-5, 4\] for 5 embeddings, got 5",
    ),
    (
        lambda: nn.Embedding(5, 2, padding_idx=1.0),
        TypeError,
        "Embedding: padding_idx must be an int or None",
    ),
    (
        lambda: nn.Embedding(5, 2, max_norm=1.0),
        TypeError,
        "Embedding: chainrule does not support the keyword max_norm=",
    ),
    (
        lambda: nn.Embedding(5, 2, sparse=True),
        TypeError,
        "keyword sparse=; the gradient is always a dense array",
    ),
    (
        lambda: F.embedding([0], cr.Tensor(np.ones((2, 2))), scale_grad_by_freq=True),
        TypeError,
        "embedding: chainrule does not support the keyword scale_grad_by_freq=",
    ),
    (
        lambda: nn.Embedding(-1, 2),
        ValueError,
        "Embedding: num_embeddings must be a non-negative int",
    ),
    (
        lambda: nn.Embedding(3, 2.0),
        ValueError,
        "Embedding: embedding_dim must be a non-negative int",
    ),
    (
        lambda: nn.Embedding(3, 2, weight=np.ones((2, 3))),
        ValueError,
        r"Embedding: weight has shape \(2, 3\), expected \(3, 2\)",
    ),
    (
        lambda: F.embedding([0], cr.Tensor(np.ones(3))),
        ValueError,
        r"embedding: weight must be 2-D \(num_embeddings, embedding_dim\), got shape \(3,\)",
    ),
    (lambda: F.embedding([0], np.ones((2, 2))), TypeError, "embedding: weight must be a Tensor"),
    (
        lambda: nn.Embedding.from_pretrained(np.ones(3)),
        ValueError,
        "Embedding.from_pretrained: embeddings must be 2-D",
    ),
    (
        lambda: nn.Flatten()(cr.Tensor(1.0)),
        IndexError,
        r"Flatten: start_dim=1 is out of range for a tensor of shape \(\) "
        r"\(expected a dimension in \[-1, 0\]\)",
    ),
    (
        lambda: nn.Flatten(0, 3)(cr.Tensor(np.ones((2, 3)))),
        IndexError,
        r"Flatten: end_dim=3 is out of range for a tensor of shape \(2, 3\)",
    ),
    (
        lambda: nn.Flatten(2, 1)(cr.Tensor(np.ones((2, 3, 4)))),
        ValueError,
        "Flatten: start_dim=2 comes after end_dim=1",
    ),
    (lambda: nn.Flatten(1.0), TypeError, "Flatten: start_dim must be an int"),
]


@pytest.mark.parametrize(("call", "kind", "message"), ERRORS)
def test_errors_name_the_operation_and_the_problem(call, kind, message) -> None:
    with pytest.raises(kind, match=message):
        call()
