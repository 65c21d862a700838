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
