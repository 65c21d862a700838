"""Learning-rate schedulers: each against its closed form, per group, and across a state dict."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.optim import lr_scheduler

EPOCHS = 12
BASES = (0.1, 0.03)


def _opt(kind=cr.optim.SGD):
    groups = [{"params": [nn.Parameter([1.0, 2.0])], "lr": BASES[0]}]
    groups.append({"params": [nn.Parameter([3.0])], "lr": BASES[1]})
    return kind(groups)


# Each schedule's closed form, written out here: lr of a group with base lr b at epoch e.
SCHEDULES = {
    "step": (
        lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
        lambda b, k, e: b * 0.5 ** (e // 3),
    ),
    "step default gamma": (
        lambda o: lr_scheduler.StepLR(o, 4),
        lambda b, k, e: b * 0.1 ** (e // 4),
    ),
    "exponential": (
        lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9),
        lambda b, k, e: b * 0.9**e,
    ),
    "cosine": (
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=8),
        lambda b, k, e: 0 + (b - 0) * (1 + math.cos(math.pi * e / 8)) / 2,
    ),
    "cosine eta_min": (
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
        lambda b, k, e: 0.01 + (b - 0.01) * (1 + math.cos(math.pi * e / 5)) / 2,
    ),
    "lambda": (
        lambda o: lr_scheduler.LambdaLR(o, lambda e: 1.0 / (1 + e) ** 0.5),
        lambda b, k, e: b / (1 + e) ** 0.5,
    ),
    "lambda per group": (
        lambda o: lr_scheduler.LambdaLR(o, [lambda e: 0.95**e, lambda e: min(1.0, (e + 1) / 4)]),
        lambda b, k, e: b * (0.95**e if k == 0 else min(1.0, (e + 1) / 4)),
    ),
}


def _expected(form, epoch):
    return [form(b, k, epoch) for k, b in enumerate(BASES)]


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_follows_its_closed_form(name):
    make, form = SCHEDULES[name]
    opt = _opt()
    sched = make(opt)
    assert sched.last_epoch == 0
    assert [g["initial_lr"] for g in opt.param_groups] == list(BASES)
    for epoch in range(EPOCHS):
        want = _expected(form, epoch)
        assert sched.last_epoch == epoch
        assert np.allclose(sched.get_last_lr(), want, rtol=1e-14, atol=0), f"epoch {epoch}"
        assert [g["lr"] for g in opt.param_groups] == sched.get_last_lr()
        opt.step()
        sched.step()


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_state_dict_round_trip(name):
    make, form = SCHEDULES[name]
    straight_opt = _opt(cr.optim.Adam)
    straight = make(straight_opt)
    for _ in range(5):
        straight.step()
    opt_state, sched_state = straight_opt.state_dict(), straight.state_dict()
    assert "optimizer" not in sched_state and "lr_lambdas" not in sched_state
    assert not any(callable(v) for v in sched_state.values())
    straight.step()  # later steps must not leak into the saved state
    assert sched_state["last_epoch"] == 5

    # Rebuild both, with other starting lrs, then load: training resumes at epoch 5.
    opt = cr.optim.Adam(
        [{"params": [nn.Parameter([1.0, 2.0])], "lr": 7.0}, {"params": [nn.Parameter([3.0])]}]
    )
    sched = make(opt)
    opt.load_state_dict(opt_state)
    sched.load_state_dict(sched_state)
    assert sched.last_epoch == 5 and sched.base_lrs == list(BASES)
    assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
    assert np.allclose(sched.get_last_lr(), _expected(form, 5), rtol=1e-14, atol=0)
    for epoch in range(6, EPOCHS):
        sched.step()
        assert np.allclose(sched.get_last_lr(), _expected(form, epoch), rtol=1e-14, atol=0)
    # The resumed and the uninterrupted schedule agree bit for bit.
    for _ in range(7, EPOCHS):  # (it is at epoch 6 already)
        straight.step()
    assert straight.last_epoch == sched.last_epoch == EPOCHS - 1
    assert sched.get_last_lr() == straight.get_last_lr()


def test_the_schedule_drives_the_optimizer_steps():
    w = nn.Parameter([1.0])
    opt = cr.optim.SGD([w], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(4):  # gradient 1 each epoch: lrs 1, 1, 0.5, 0.5
        opt.zero_grad()
        w.sum().backward()
        opt.step()
        sched.step()
    assert w.data[0] == 1.0 - 1.0 - 1.0 - 0.5 - 0.5


def test_scheduler_resumes_from_last_epoch_with_initial_lr():
    opt = _opt()
    first = lr_scheduler.ExponentialLR(opt, gamma=0.5)
    for _ in range(3):
        first.step()
    again = lr_scheduler.ExponentialLR(opt, gamma=0.5, last_epoch=3)
    assert again.last_epoch == 4
    assert np.allclose(again.get_last_lr(), [b * 0.5**4 for b in BASES], rtol=1e-14)
    with pytest.raises(KeyError, match="needs 'initial_lr' in parameter group 0"):
        lr_scheduler.ExponentialLR(_opt(), gamma=0.5, last_epoch=3)


def test_bad_scheduler_settings_are_explained():
    opt = _opt()
    with pytest.raises(ValueError, match="StepLR: step_size must be a positive integer, got 0"):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match=r"step_size must be a positive integer, got 1\.5"):
        lr_scheduler.StepLR(opt, step_size=1.5)
    with pytest.raises(ValueError, match="ExponentialLR: gamma must be a finite number"):
        lr_scheduler.ExponentialLR(opt, gamma="0.9")
    with pytest.raises(ValueError, match="CosineAnnealingLR: T_max must be a positive integer"):
        lr_scheduler.CosineAnnealingLR(opt, T_max=-3)
    with pytest.raises(ValueError, match="eta_min must be a finite number, got nan"):
        lr_scheduler.CosineAnnealingLR(opt, T_max=3, eta_min=float("nan"))
    with pytest.raises(ValueError, match="LambdaLR: got 1 lr_lambdas for 2 parameter groups"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(TypeError, match="LambdaLR: lr_lambda must be callable, got float"):
        lr_scheduler.LambdaLR(opt, 0.5)
    with pytest.raises(TypeError, match=r"lr_lambda\(0\) for group 0 returned str"):
        lr_scheduler.LambdaLR(opt, lambda e: "fast")
    with pytest.raises(TypeError, match="StepLR: expected a chainrule optimizer, got list"):
        lr_scheduler.StepLR([nn.Parameter([1.0])], step_size=2)
    sched = lr_scheduler.StepLR(opt, step_size=2)
    with pytest.raises(ValueError, match=r"StepLR\.load_state_dict: expected the keys"):
        sched.load_state_dict({"last_epoch": 3})
    one_group = lr_scheduler.StepLR(cr.optim.SGD([nn.Parameter([1.0])], lr=0.1), step_size=2)
    with pytest.raises(ValueError, match="state dict is for 1 parameter groups"):
        sched.load_state_dict(one_group.state_dict())
    assert sched.last_epoch == 0


def test_an_optimizer_with_a_scheduler_still_checks_unknown_settings():
    # initial_lr, which schedulers add, is accepted; a misspelt setting is not.
    opt = _opt()
    lr_scheduler.StepLR(opt, step_size=2)
    state = opt.state_dict()
    assert all("initial_lr" in g for g in state["param_groups"])
    _opt().load_state_dict(state)
    state["param_groups"][0]["momentun"] = 0.9
    with pytest.raises(ValueError, match="unknown settings"):
        _opt().load_state_dict(state)
