"""Models move between chainrule and PyTorch through .safetensors files, both ways.

Optional: skipped unless both torch and safetensors are installed (the bench
extra brings torch).  Nothing here uses pickle: PyTorch reads and writes the
files with safetensors.torch, chainrule with chainrule.save / load.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")


class CrNet(nn.Module):
    def __init__(self, dtype=np.float64):
        super().__init__()
        self.hidden = nn.Linear(3, 6, dtype=dtype)
        self.out = nn.Linear(6, 2, dtype=dtype)

    def forward(self, x):
        return self.out(self.hidden(x).tanh())


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(3, 6)
        self.out = torch.nn.Linear(6, 2)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))


def _sequentials(dtype=np.float64):
    ours = nn.Sequential(
        nn.Linear(4, 8, dtype=dtype), nn.ReLU(), nn.Linear(8, 8, dtype=dtype), nn.Tanh(),
        nn.Linear(8, 3, dtype=dtype),
    )  # fmt: skip
    theirs = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.Tanh(),
        torch.nn.Linear(8, 3),
    )  # fmt: skip
    return ours, theirs


X = np.random.default_rng(0).normal(size=(5, 4))


def test_a_chainrule_sequential_loads_into_torch_and_agrees(tmp_path):
    cr.manual_seed(1)
    ours, theirs = _sequentials()
    path = tmp_path / "seq.safetensors"
    cr.save(ours.state_dict(), path)
    state = st_torch.load_file(str(path))
    assert set(state) == set(theirs.state_dict())  # the same names: 0.weight, 2.bias, ...
    theirs.double().load_state_dict(state)  # strict: every name and shape matches
    for name, p in ours.named_parameters():
        assert np.array_equal(theirs.state_dict()[name].numpy(), p.data)
    want = ours(cr.Tensor(X)).data
    got = theirs(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


def test_a_torch_sequential_loads_into_chainrule_and_agrees(tmp_path):
    torch.manual_seed(2)
    ours, theirs = _sequentials(np.float32)
    path = tmp_path / "seq.safetensors"
    st_torch.save_file(theirs.state_dict(), str(path))
    ours.load_state_dict(cr.load(path))
    for name, t in theirs.state_dict().items():
        assert np.array_equal(dict(ours.named_parameters())[name].data, t.numpy())
    x = X.astype(np.float32)
    want = theirs(torch.from_numpy(x)).detach().numpy()
    got = ours(cr.Tensor(x)).data
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_named_submodules_match_both_ways(tmp_path):
    cr.manual_seed(3)
    ours, theirs = CrNet(), TorchNet().double()
    path = tmp_path / "net.safetensors"
    cr.save(ours.state_dict(), path)
    theirs.load_state_dict(st_torch.load_file(str(path)))
    x = np.random.default_rng(4).normal(size=(7, 3))
    want = ours(cr.Tensor(x)).data
    np.testing.assert_allclose(theirs(torch.from_numpy(x)).detach().numpy(), want, rtol=1e-13)
    # Train the torch copy a step, then bring it back.
    theirs(torch.from_numpy(x)).pow(2).sum().backward()
    with torch.no_grad():
        for p in theirs.parameters():
            p -= 0.1 * p.grad
    back = tmp_path / "back.safetensors"
    st_torch.save_file(theirs.state_dict(), str(back))
    ours.load_state_dict(cr.load(back))
    assert ours.hidden.bias.name == "hidden.bias"
    np.testing.assert_allclose(
        ours(cr.Tensor(x)).data, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-13
    )


def test_torch_float32_into_a_float64_model_is_refused_by_name(tmp_path):
    torch.manual_seed(5)
    path = tmp_path / "f32.safetensors"
    st_torch.save_file(TorchNet().state_dict(), str(path))
    ours = CrNet()
    before = ours.hidden.weight.data.copy()
    with pytest.raises(RuntimeError, match=r"hidden\.weight: dtype float32 in the state dict"):
        ours.load_state_dict(cr.load(path))
    assert np.array_equal(ours.hidden.weight.data, before)
