"""Optional: losses, layers and optimizers agree numerically with PyTorch (skipped without it)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _pair(array):
    ours = cr.Tensor(array, requires_grad=True)
    theirs = torch.tensor(array, dtype=torch.float64, requires_grad=True)
    return ours, theirs


def _check(ours_fn, torch_fn, array):
    x, tx = _pair(array)
    out, tout = ours_fn(x), torch_fn(tx)
    assert np.allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    seed = np.random.default_rng(0).normal(size=out.shape)
    out.backward(seed)
    tout.backward(torch.tensor(seed))
    assert np.allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


RNG = np.random.default_rng(42)
LOGITS = RNG.normal(scale=3.0, size=(6, 4))
PROBS = RNG.uniform(0.01, 0.99, size=(6, 4))
BINARY = RNG.integers(0, 2, size=(6, 4)).astype(float)
CLASSES = np.array([0, 3, 1, 2, -100, 3])
WEIGHT = np.array([0.5, 1.0, 2.0, 1.5])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_match_pytorch(reduction):
    tgt = torch.tensor(BINARY)
    _check(
        lambda x: F.mse_loss(x, BINARY, reduction=reduction),
        lambda x: TF.mse_loss(x, tgt, reduction=reduction),
        LOGITS,
    )
    _check(
        lambda x: F.binary_cross_entropy(x, BINARY, weight=WEIGHT, reduction=reduction),
        lambda x: TF.binary_cross_entropy(x, tgt, weight=torch.tensor(WEIGHT), reduction=reduction),
        PROBS,
    )
    _check(
        lambda x: F.binary_cross_entropy_with_logits(
            x, BINARY, pos_weight=WEIGHT, reduction=reduction
        ),
        lambda x: TF.binary_cross_entropy_with_logits(
            x, tgt, pos_weight=torch.tensor(WEIGHT), reduction=reduction
        ),
        LOGITS * 10,
    )
    _check(
        lambda x: F.cross_entropy(x, CLASSES, weight=WEIGHT, reduction=reduction),
        lambda x: TF.cross_entropy(
            x, torch.tensor(CLASSES), weight=torch.tensor(WEIGHT), reduction=reduction
        ),
        LOGITS,
    )


def test_spatial_cross_entropy_matches_pytorch():
    x = RNG.normal(size=(2, 3, 4))
    t = RNG.integers(0, 3, size=(2, 4))
    _check(
        lambda x: F.cross_entropy(x, t),
        lambda x: TF.cross_entropy(x, torch.tensor(t)),
        x,
    )


def test_activations_match_pytorch():
    _check(F.softplus, TF.softplus, LOGITS)
    _check(lambda x: F.softmax(x, 1), lambda x: torch.softmax(x, 1), LOGITS)
    _check(lambda x: F.log_softmax(x, 0), lambda x: torch.log_softmax(x, 0), LOGITS)


def _train_both(make_ours, make_theirs, steps=8):
    lin = nn.Linear(4, 3, generator=np.random.default_rng(0))
    tlin = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        tlin.weight.copy_(torch.tensor(lin.weight.data))
        tlin.bias.copy_(torch.tensor(lin.bias.data))
    opt, topt = make_ours(list(lin.parameters())), make_theirs(list(tlin.parameters()))
    rng = np.random.default_rng(1)
    for _ in range(steps):
        x = rng.normal(size=(5, 4))
        t = rng.integers(0, 3, size=5)
        opt.zero_grad()
        F.cross_entropy(lin(cr.Tensor(x)), t).backward()
        opt.step()
        topt.zero_grad()
        TF.cross_entropy(tlin(torch.tensor(x)), torch.tensor(t)).backward()
        topt.step()
    assert np.allclose(lin.weight.data, tlin.weight.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert np.allclose(lin.bias.data, tlin.bias.detach().numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (
            lambda p: cr.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
        ),
        (
            lambda p: cr.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        ),
        (
            lambda p: cr.optim.Adam(p, lr=0.05, weight_decay=0.1),
            lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=0.1),
        ),
        (
            lambda p: cr.optim.Adam(p, lr=0.05, amsgrad=True),
            lambda p: torch.optim.Adam(p, lr=0.05, amsgrad=True),
        ),
        (
            lambda p: cr.optim.AdamW(p, lr=0.05, weight_decay=0.1),
            lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1),
        ),
    ],
)
def test_optimizers_match_pytorch(ours, theirs):
    _train_both(ours, theirs)


def test_linear_init_bound_matches_pytorch():
    tlin = torch.nn.Linear(50, 200)
    lin = nn.Linear(50, 200)
    t_bound = float(tlin.weight.detach().abs().max())
    o_bound = float(np.abs(lin.weight.data).max())
    assert t_bound <= 1 / np.sqrt(50) and o_bound <= 1 / np.sqrt(50)
    assert abs(t_bound - o_bound) < 0.01


# -- activations and layers added alongside GELU: same inputs and weights, same numbers --

# Zeros included: there the piecewise ones take PyTorch's branch (the x <= 0 one).
ACTIVATION_INPUT = np.concatenate([LOGITS.ravel(), [0.0, -0.0, 1e-9, -1e-9, 30.0, -30.0]])


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda x: F.leaky_relu(x), lambda x: TF.leaky_relu(x)),
        (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
        (lambda x: F.elu(x), lambda x: TF.elu(x)),
        (lambda x: F.elu(x, alpha=0.3), lambda x: TF.elu(x, alpha=0.3)),
        (F.silu, TF.silu),
        (F.gelu, TF.gelu),
        (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
        (nn.LeakyReLU(0.05), torch.nn.LeakyReLU(0.05)),
        (nn.ELU(2.0), torch.nn.ELU(2.0)),
        (nn.SiLU(), torch.nn.SiLU()),
        (nn.GELU("tanh"), torch.nn.GELU("tanh")),
    ],
)
def test_new_activations_match_pytorch(ours, theirs):
    _check(ours, theirs, ACTIVATION_INPUT)
    if isinstance(ours, nn.Module):
        assert repr(ours) == repr(theirs)


def test_activation_second_derivatives_match_pytorch():
    for ours, theirs in (
        (F.gelu, TF.gelu),
        (F.silu, TF.silu),
        (lambda x: F.elu(x, 0.5), lambda x: TF.elu(x, 0.5)),
    ):
        x, tx = _pair(LOGITS)
        (g,) = cr.grad(ours(x).sum(), [x], create_graph=True)
        (g.tanh().sum()).backward()
        (tg,) = torch.autograd.grad(theirs(tx).sum(), [tx], create_graph=True)
        tg.tanh().sum().backward()
        assert np.allclose(g.data, tg.detach().numpy(), rtol=1e-10, atol=1e-12)
        assert np.allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("shape", "normalized", "kwargs"),
    [
        ((6, 4), (4,), {}),
        ((2, 3, 4), (3, 4), {"eps": 1e-3}),
        ((2, 5), (5,), {"elementwise_affine": False}),
        ((3, 5), (5,), {"bias": False}),
    ],
)
def test_layer_norm_matches_pytorch(shape, normalized, kwargs):
    rng = np.random.default_rng(3)
    ours = nn.LayerNorm(normalized, **kwargs)
    theirs = torch.nn.LayerNorm(normalized, **kwargs).double()
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    with torch.no_grad():
        for name, p in ours.named_parameters():
            p.data[...] = rng.normal(size=p.shape)
            theirs.get_parameter(name).copy_(torch.tensor(p.data))
    _check(ours, theirs, rng.normal(loc=1.0, scale=2.0, size=shape))
    for name, p in ours.named_parameters():
        assert np.allclose(p.grad, theirs.get_parameter(name).grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("index_shape", [(), (5,), (2, 3)])
def test_embedding_matches_pytorch(index_shape):
    rng = np.random.default_rng(4)
    idx = rng.integers(0, 6, size=index_shape)
    for padding_idx in (None, 2):
        ours = nn.Embedding(6, 3, padding_idx=padding_idx)
        theirs = torch.nn.Embedding(6, 3, padding_idx=padding_idx).double()
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert np.all(theirs.weight.detach().numpy()[2] == 0) == (padding_idx == 2)
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(ours.weight.data))
        out, tout = ours(idx), theirs(torch.tensor(idx))
        assert np.array_equal(out.data, tout.detach().numpy())
        seed = rng.normal(size=out.shape)
        out.backward(seed)
        tout.backward(torch.tensor(seed))
        assert np.allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_flatten_matches_pytorch():
    x = RNG.normal(size=(2, 3, 4, 5))
    for dims in ((), (0, -1), (1, 2), (-3, -2), (2, 2)):
        ours, theirs = nn.Flatten(*dims), torch.nn.Flatten(*dims)
        assert repr(ours) == repr(theirs)
        _check(ours, theirs, x)


# -- Tensor methods in PyTorch's names: forward and gradient ---------------------

X = RNG.normal(size=(3, 4))
X3 = RNG.normal(size=(2, 3, 4))
POSITIVE = RNG.uniform(0.2, 2.0, size=(3, 4))
ZEROS = np.array([[1.5, 0.0, -2.0, 0.5], [0.0, 3.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
#: ties at the clamp bounds -0.5 and 0.5, where the gradient convention matters
AT_BOUNDS = np.array([[-1.0, -0.5, 0.0, 0.5], [1.0, 0.5, -0.5, 0.25], [-0.75, 2.0, 0.5, -0.5]])

METHODS = [
    ("view", lambda x: x.view(2, -1), lambda x: x.view(2, -1), X),
    ("reshape", lambda x: x.reshape((4, 3)), lambda x: x.reshape((4, 3)), X),
    ("unsqueeze", lambda x: x.unsqueeze(1), lambda x: x.unsqueeze(1), X),
    ("squeeze", lambda x: x.view(3, 1, 4).squeeze(), lambda x: x.view(3, 1, 4).squeeze(), X),
    ("squeeze dim", lambda x: x.view(1, 3, 4).squeeze(0), lambda x: x.view(1, 3, 4).squeeze(0), X),
    ("flatten", lambda x: x.flatten(1), lambda x: x.flatten(1), X3),
    ("permute", lambda x: x.permute(2, 0, 1), lambda x: x.permute(2, 0, 1), X3),
    ("t", lambda x: x.t(), lambda x: x.t(), X),
    (
        "expand",
        lambda x: x.view(3, 1, 4).expand(-1, 2, -1),
        lambda x: x.view(3, 1, 4).expand(-1, 2, -1),
        X,
    ),
    ("expand leading", lambda x: x.expand(2, 3, 4), lambda x: x.expand(2, 3, 4), X),
    ("repeat", lambda x: x.repeat(2, 1, 3), lambda x: x.repeat(2, 1, 3), X),
    ("clone", lambda x: x.clone() * x, lambda x: x.clone() * x, X),
    ("contiguous", lambda x: x.t().contiguous().view(-1), lambda x: x.t().contiguous().view(-1), X),
    ("pow", lambda x: x.pow(3.0), lambda x: x.pow(3.0), X),
    ("pow tensor", lambda x: x.pow(x), lambda x: x.pow(x), POSITIVE),
    ("clamp", lambda x: x.clamp(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5), AT_BOUNDS),
    ("clamp_min", lambda x: x.clamp_min(-0.5), lambda x: x.clamp_min(-0.5), AT_BOUNDS),
    ("clamp_max", lambda x: x.clamp_max(0.5), lambda x: x.clamp_max(0.5), AT_BOUNDS),
    ("clamp min > max", lambda x: x.clamp(0.5, -0.5), lambda x: x.clamp(0.5, -0.5), AT_BOUNDS),
    ("matmul", lambda x: x.matmul(x.t()), lambda x: x.matmul(x.t()), X),
    ("float", lambda x: x.float().double() * x, lambda x: x.float().double() * x, X),
    ("var", lambda x: x.var(), lambda x: x.var(), X),
    ("var dim", lambda x: x.var(dim=1, keepdim=True), lambda x: x.var(dim=1, keepdim=True), X),
    ("var unbiased", lambda x: x.var(0, unbiased=False), lambda x: x.var(0, unbiased=False), X),
    (
        "var correction",
        lambda x: x.var((0, 2), correction=2),
        lambda x: x.var((0, 2), correction=2),
        X3,
    ),
    ("std", lambda x: x.std(), lambda x: x.std(), X),
    ("std dim", lambda x: x.std(dim=0), lambda x: x.std(dim=0), X),
    ("std correction 0", lambda x: x.std(1, correction=0), lambda x: x.std(1, correction=0), X3),
    (
        "std constant rows",
        lambda x: (x * 0.0 + 1.0).std(1) + x.std(1),
        lambda x: (x * 0.0 + 1.0).std(1) + x.std(1),
        X,
    ),
    ("norm", lambda x: x.norm(), lambda x: x.norm(), X),
    ("norm dim", lambda x: x.norm(dim=1), lambda x: x.norm(dim=1), X),
    ("norm fro", lambda x: x.norm("fro", dim=(0, 1)), lambda x: x.norm("fro", dim=(0, 1)), X3),
    (
        "norm p=1",
        lambda x: x.norm(1, dim=0, keepdim=True),
        lambda x: x.norm(1, dim=0, keepdim=True),
        X,
    ),
    ("norm p=3", lambda x: x.norm(3, dim=1), lambda x: x.norm(3, dim=1), X),
    ("norm p=inf", lambda x: x.norm(float("inf"), dim=1), lambda x: x.norm(float("inf"), dim=1), X),
    ("norm zero rows", lambda x: x.norm(dim=1), lambda x: x.norm(dim=1), ZEROS),
    ("norm p=3 zero rows", lambda x: x.norm(3, dim=1), lambda x: x.norm(3, dim=1), ZEROS),
    ("prod", lambda x: x.prod(), lambda x: x.prod(), X),
    ("prod dim", lambda x: x.prod(1), lambda x: x.prod(1), X),
    (
        "prod zeros",
        lambda x: x.prod(dim=1, keepdim=True),
        lambda x: x.prod(dim=1, keepdim=True),
        ZEROS,
    ),
    ("cumsum", lambda x: x.cumsum(1), lambda x: x.cumsum(1), X),
    ("cumsum dim 0", lambda x: x.cumsum(dim=0), lambda x: x.cumsum(dim=0), X3),
    ("exp2", lambda x: x.exp2(), lambda x: x.exp2(), X),
    ("log2", lambda x: x.log2(), lambda x: x.log2(), POSITIVE),
    ("log1p", lambda x: x.log1p(), lambda x: x.log1p(), POSITIVE),
    ("expm1", lambda x: x.expm1(), lambda x: x.expm1(), X),
    ("sin", lambda x: x.sin(), lambda x: x.sin(), X),
    ("cos", lambda x: x.cos(), lambda x: x.cos(), X),
    ("square", lambda x: x.square(), lambda x: x.square(), X),
    ("rsqrt", lambda x: x.rsqrt(), lambda x: x.rsqrt(), POSITIVE),
    ("softplus", lambda x: x.softplus(), TF.softplus, X * 3.0),
    (
        "function forms",
        lambda x: cr.sin(x) * cr.clamp(x, min=0.0),
        lambda x: torch.sin(x) * torch.clamp(x, min=0.0),
        X,
    ),
]


@pytest.mark.parametrize(
    ("ours", "theirs", "data"), [m[1:] for m in METHODS], ids=[m[0] for m in METHODS]
)
def test_tensor_methods_match_pytorch(ours, theirs, data):
    _check(ours, theirs, data)


def test_shape_queries_and_indices_match_pytorch():
    x = cr.Tensor(X3)
    tx = torch.tensor(X3)
    assert x.size() == tuple(tx.size()) and x.size(-2) == tx.size(-2)
    assert x.numel() == tx.numel() and x.dim() == tx.dim()
    for name in ("argmax", "argmin"):
        assert getattr(x, name)().item() == getattr(tx, name)().item()
        assert getattr(x, name)(keepdim=True).shape == tuple(getattr(tx, name)(keepdim=True).shape)
        for d in (0, 1, -1):
            ours = getattr(x, name)(dim=d, keepdim=True)
            theirs = getattr(tx, name)(dim=d, keepdim=True)
            assert np.array_equal(ours.data, theirs.numpy()) and ours.dtype == np.int64


def test_to_takes_pytorch_dtypes_and_the_cpu_device():
    x = cr.Tensor(X, requires_grad=True)
    assert x.to(torch.float32).dtype == np.float32 and x.to(torch.float).dtype == np.float32
    assert x.to(torch.double).dtype == np.float64 and x.to(torch.device("cpu")) is x
    with pytest.raises(ValueError, match="to: chainrule computes with numpy on the CPU"):
        x.to(torch.device("meta"))
