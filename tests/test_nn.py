"""Modules: registration, dotted names, scopes, freezing, state dicts, containers and layers."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.engine import iter_graph, scope_of


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(2, 3)
        self.act = nn.Tanh()
        self.out = nn.Linear(3, 1)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


class Deep(nn.Module):
    def __init__(self, n: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(n)])
        self.head = nn.Linear(2, 1, bias=False)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return self.head(x)


def test_parameters_and_children_are_registered_in_order():
    net = TwoLayer()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    assert list(net.parameters()) == [p for _, p in net.named_parameters()]
    assert list(net.children()) == [net.hidden, net.act, net.out]
    assert [n for n, _ in net.named_modules()] == ["", "hidden", "act", "out"]


def test_module_list_names_and_parameters():
    net = Deep()
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "layers.1.bias",
        "layers.2.weight",
        "layers.2.bias",
        "head.weight",
    ]
    assert len(net.layers) == 3
    assert net.layers[-1] is net.layers[2]
    assert net.head.bias is None


def test_parameter_names_are_dotted_paths_from_the_root():
    net = Deep()
    for name, p in net.named_parameters():
        assert p.name == name


def test_names_follow_when_a_built_module_is_nested_later():
    inner = TwoLayer()
    assert inner.hidden.weight.name == "hidden.weight"

    class Outer(nn.Module):
        def __init__(self, body):
            super().__init__()
            self.body = body

    outer = Outer(inner)
    assert inner.hidden.weight.name == "body.hidden.weight"
    assert inner.hidden._full_name() == "body.hidden"
    # Removing it makes it a root again.
    del outer.body
    assert inner.hidden.weight.name == "hidden.weight"


def test_a_module_registered_twice_keeps_its_first_name():
    shared = nn.Linear(2, 2)
    a = nn.Sequential(shared)
    b = nn.Sequential(nn.Identity(), shared)
    assert shared.weight.name == "0.weight"
    assert shared._full_name() == "0"
    # Still in b, which lists it under its own key.
    assert [n for n, _ in b.named_parameters()] == ["1.weight", "1.bias"]
    del a


def test_slicing_a_container_does_not_rename_its_modules():
    net = Deep()
    head = net.layers[1:]
    assert isinstance(head, nn.ModuleList)
    assert len(head) == 2
    assert net.layers[1].weight.name == "layers.1.weight"
    seq = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 1))
    part = seq[:2]
    assert seq[0].weight.name == "0.weight"
    assert part[0] is seq[0]


def test_forward_runs_inside_the_module_scope():
    net = TwoLayer()
    y = net(cr.Tensor([[0.5, -1.0]]))
    scopes = {scope_of(n) for n in iter_graph([y]) if not n.is_leaf}
    assert scopes == {"hidden", "act", "out"}
    weights = [n for n in iter_graph([y]) if n.is_leaf and n.requires_grad]
    assert {w.name for w in weights} == {"hidden.weight", "hidden.bias", "out.weight", "out.bias"}


def test_nested_module_scopes_use_full_dotted_names():
    net = Deep()
    y = net(cr.Tensor([[0.5, -1.0]]))
    scopes = {scope_of(n) for n in iter_graph([y]) if not n.is_leaf}
    # The relu is applied in Deep.forward itself: the root has no scope.
    assert {"layers.0", "layers.1", "layers.2", "head", None} == scopes


def test_wrong_number_of_inputs_raises_clearly():
    net = TwoLayer()
    with pytest.raises(TypeError, match=r"TwoLayer.*forward.*2 positional"):
        net(cr.Tensor([1.0, 2.0]), cr.Tensor([1.0]))
    with pytest.raises(TypeError, match=r"Linear \(hidden\).*forward"):
        net.hidden()


def test_type_error_inside_forward_is_not_rewritten():
    class Bad(nn.Module):
        def forward(self, x):
            return x + "text"

    with pytest.raises(TypeError, match="unsupported operand"):
        Bad()(cr.Tensor([1.0]))


def test_module_without_forward_says_so():
    with pytest.raises(NotImplementedError, match="Empty has no forward"):
        type("Empty", (nn.Module,), {})()(1)


def test_setting_attributes_before_init_is_explained():
    class Forgot(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"super\(\)\.__init__"):
        Forgot()


def test_assigning_a_plain_tensor_over_a_parameter_is_refused():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        layer.weight = cr.Tensor(np.zeros((2, 2)))
    layer.weight = nn.Parameter(np.ones((2, 2)))
    assert layer.weight.name == "weight"
    assert np.array_equal(layer(cr.Tensor([1.0, 1.0])).data, 2.0 + layer.bias.data)


def test_a_module_cannot_contain_itself():
    seq = nn.Sequential(nn.Linear(1, 1))
    inner = nn.Sequential()
    seq.append(inner)
    with pytest.raises(ValueError, match="loop"):
        inner.append(seq)


def test_zero_grad_clears_every_parameter():
    net = TwoLayer()
    net(cr.Tensor([[1.0, 2.0]])).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_train_and_eval_reach_every_module():
    net = Deep()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_frozen_parameters_get_no_gradient():
    net = TwoLayer()
    net.hidden.requires_grad_(False)
    net(cr.Tensor([[1.0, 2.0]])).sum().backward()
    assert net.hidden.weight.grad is None and net.hidden.bias.grad is None
    assert net.out.weight.grad is not None
    net.requires_grad_(True)
    assert all(p.requires_grad for p in net.parameters())


def test_frozen_bias_only():
    layer = nn.Linear(2, 2)
    layer.bias.requires_grad_(False)
    layer(cr.Tensor([1.0, 2.0])).sum().backward()
    assert layer.bias.grad is None
    assert np.array_equal(layer.weight.grad, np.array([[1.0, 2.0], [1.0, 2.0]]))


def test_state_dict_is_a_copy_keyed_by_dotted_names():
    net = Deep()
    state = net.state_dict()
    assert list(state) == [n for n, _ in net.named_parameters()]
    before = state["layers.0.weight"].copy()
    net.layers[0].weight.data += 1.0
    assert np.array_equal(state["layers.0.weight"], before)


def test_load_state_dict_round_trip():
    a, b = Deep(), Deep()
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = cr.Tensor(np.random.default_rng(0).normal(size=(4, 2)))
    assert np.array_equal(a(x).data, b(x).data)


def test_load_state_dict_reports_every_problem_and_changes_nothing():
    net = TwoLayer()
    before = {k: v.copy() for k, v in net.state_dict().items()}
    state = net.state_dict()
    state["hidden.weight"] = np.zeros((3, 3))  # wrong shape
    state["out.bias"] = state["out.bias"].astype(np.float32)  # wrong dtype
    del state["out.weight"]  # missing
    state["extra.weight"] = np.zeros(1)  # unexpected
    state["hidden.bias"] = np.full(3, 7.0)  # fine, but must not be written
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(state)
    msg = str(info.value)
    for text in (
        "missing keys: out.weight",
        "unexpected keys: extra.weight",
        "hidden.weight: shape (3, 3) in the state dict, (3, 2) in the model",
        "out.bias: dtype float32 in the state dict, float64 in the model",
    ):
        assert text in msg
    for k, v in net.state_dict().items():
        assert np.array_equal(v, before[k]), k


def test_load_state_dict_non_strict_returns_the_differences():
    net = TwoLayer()
    state = net.state_dict()
    del state["out.bias"]
    state["other"] = np.zeros(2)
    state["hidden.weight"] = np.ones((3, 2))
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["out.bias"]
    assert result.unexpected_keys == ["other"]
    assert np.array_equal(net.hidden.weight.data, np.ones((3, 2)))


def test_load_state_dict_accepts_tensors():
    layer = nn.Linear(2, 1)
    layer.load_state_dict({"weight": cr.Tensor([[1.0, 2.0]]), "bias": cr.Tensor([3.0])})
    assert np.array_equal(layer.weight.data, [[1.0, 2.0]])


def test_repr_is_indented_like_pytorch():
    text = repr(Deep(2))
    assert text.splitlines() == [
        "Deep(",
        "  (layers): ModuleList(",
        "    (0): Linear(in_features=2, out_features=2, bias=True)",
        "    (1): Linear(in_features=2, out_features=2, bias=True)",
        "  )",
        "  (head): Linear(in_features=2, out_features=1, bias=False)",
        ")",
    ]


def test_deepcopy_and_pickle_keep_names_and_values():
    net = Deep()
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert [n for n, _ in clone.named_parameters()] == [n for n, _ in net.named_parameters()]
        for (name, p), q in zip(clone.named_parameters(), net.parameters()):
            assert p.name == name
            assert p is not q and np.array_equal(p.data, q.data)
        clone.layers[0].weight.data += 1
        assert not np.array_equal(clone.layers[0].weight.data, net.layers[0].weight.data)


def test_sequential_chains_and_indexes():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    x = cr.Tensor([[1.0, -2.0]])
    expected = seq[2](seq[1](seq[0](x)))
    assert np.array_equal(seq(x).data, expected.data)
    assert len(seq) == 3
    with pytest.raises(IndexError, match="out of range for 3 modules"):
        seq[3]
    with pytest.raises(TypeError, match="argument 1"):
        nn.Sequential(nn.ReLU(), "relu")


def test_module_list_setitem_and_errors():
    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml[0] = nn.Linear(1, 2)
    assert ml[0].out_features == 2
    with pytest.raises(TypeError, match=r"nn\.Module"):
        ml.append(3)
    with pytest.raises(NotImplementedError, match="iterate"):
        ml(cr.Tensor([1.0]))


# -- Linear ---------------------------------------------------------------------


def test_linear_computes_x_weight_t_plus_bias():
    w = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    b = np.array([0.5, -0.5, 1.0])
    layer = nn.Linear(2, 3, weight=w, bias=b)
    x = np.random.default_rng(1).normal(size=(4, 2))
    assert np.allclose(layer(cr.Tensor(x)).data, x @ w.T + b)
    assert layer(cr.Tensor(x[0])).shape == (3,)
    assert layer(cr.Tensor(x.reshape(2, 2, 2))).shape == (2, 2, 3)


def test_linear_default_init_is_uniform_within_one_over_sqrt_fan_in():
    layer = nn.Linear(25, 400, generator=np.random.default_rng(0))
    bound = 1 / math.sqrt(25)
    w = layer.weight.data
    assert w.shape == (400, 25) and layer.bias.shape == (400,)
    assert np.abs(w).max() <= bound and np.abs(layer.bias.data).max() <= bound
    # A uniform distribution on [-b, b] has variance b^2 / 3.
    assert abs(w.var() - bound**2 / 3) < 0.1 * bound**2 / 3
    assert w.max() > 0.95 * bound and w.min() < -0.95 * bound


def test_linear_init_is_seedable():
    cr.manual_seed(5)
    a = nn.Linear(3, 4)
    cr.manual_seed(5)
    b = nn.Linear(3, 4)
    c = nn.Linear(3, 4)
    assert np.array_equal(a.weight.data, b.weight.data)
    assert not np.array_equal(b.weight.data, c.weight.data)
    g1 = nn.Linear(3, 4, generator=np.random.default_rng(9))
    g2 = nn.Linear(3, 4, generator=np.random.default_rng(9))
    assert np.array_equal(g1.bias.data, g2.bias.data)


def test_linear_float32_and_bad_arguments():
    layer = nn.Linear(2, 2, dtype=np.float32)
    assert layer.weight.dtype == np.float32
    with pytest.raises(ValueError, match=r"weight has shape \(2, 2\), expected \(3, 2\)"):
        nn.Linear(2, 3, weight=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(-1, 2)
    with pytest.raises(ValueError, match="last dimension must be in_features = 2"):
        nn.Linear(2, 3)(cr.Tensor(np.zeros((4, 5))))


def test_linear_gradients_match_finite_differences():
    layer = nn.Linear(3, 2, generator=np.random.default_rng(2))
    x = cr.Tensor(np.random.default_rng(3).normal(size=(4, 3)), requires_grad=True)
    cr.gradcheck(lambda x, w, b: nn.functional.linear(x, w, b), [x, layer.weight, layer.bias])


def test_worked_example_matches_the_scalar_engine():
    """The 2-2-2 network with given weights and frozen biases: one SGD step, two ways."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(2, 2, weight=[[0.15, 0.20], [0.25, 0.30]], bias=[0.35, 0.35])
            self.output = nn.Linear(2, 2, weight=[[0.40, 0.45], [0.50, 0.55]], bias=[0.60, 0.60])

        def forward(self, x):
            return self.output(self.hidden(x).sigmoid()).sigmoid()

    net = Net()
    net.hidden.bias.requires_grad_(False)
    net.output.bias.requires_grad_(False)
    opt = cr.optim.SGD(net.parameters(), lr=0.5)
    out = net(cr.Tensor([0.05, 0.10]))
    e_total = 0.5 * nn.functional.mse_loss(out, cr.Tensor([0.01, 0.99]), reduction="sum")
    e_total.backward()
    opt.step()

    # The same network, one scalar Value per number.
    v = {k: cr.Value(x) for k, x in zip(["w1", "w2", "w3", "w4"], [0.15, 0.20, 0.25, 0.30])}
    v.update({k: cr.Value(x) for k, x in zip(["w5", "w6", "w7", "w8"], [0.40, 0.45, 0.50, 0.55])})
    i1, i2 = 0.05, 0.10
    h1 = (v["w1"] * i1 + v["w2"] * i2 + 0.35).sigmoid()
    h2 = (v["w3"] * i1 + v["w4"] * i2 + 0.35).sigmoid()
    o1 = (v["w5"] * h1 + v["w6"] * h2 + 0.60).sigmoid()
    o2 = (v["w7"] * h1 + v["w8"] * h2 + 0.60).sigmoid()
    e = 0.5 * (0.01 - o1) ** 2 + 0.5 * (0.99 - o2) ** 2
    e.backward()
    assert math.isclose(e_total.item(), e.data, rel_tol=1e-12)
    new = {k: x.data - 0.5 * x.grad for k, x in v.items()}
    hidden = [[new["w1"], new["w2"]], [new["w3"], new["w4"]]]
    output = [[new["w5"], new["w6"]], [new["w7"], new["w8"]]]
    assert np.allclose(net.hidden.weight.data, hidden, rtol=1e-12)
    assert np.allclose(net.output.weight.data, output, rtol=1e-12)
    assert np.array_equal(net.hidden.bias.data, [0.35, 0.35])


# -- activations, dropout, identity, init ------------------------------------------------


@pytest.mark.parametrize(
    ("module", "fn"),
    [
        (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
        (nn.Tanh(), np.tanh),
        (nn.ReLU(), lambda x: np.maximum(x, 0)),
        (nn.Softplus(), lambda x: np.log1p(np.exp(x))),
        (nn.Softmax(axis=1), lambda x: np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)),
        (nn.LogSoftmax(dim=1), lambda x: x - np.log(np.exp(x).sum(axis=1, keepdims=True))),
        (nn.Identity(), lambda x: x),
    ],
)
def test_activation_modules_compute_their_functions(module, fn):
    x = np.random.default_rng(4).normal(size=(3, 4))
    assert np.allclose(module(cr.Tensor(x)).data, fn(x), rtol=1e-12)
    assert module.named_parameters() is not None and list(module.parameters()) == []


def test_dropout_masks_in_training_and_passes_through_in_eval():
    drop = nn.Dropout(0.25, generator=np.random.default_rng(0))
    x = cr.Tensor(np.ones((200, 50)), requires_grad=True)
    y = drop(x)
    kept = y.data != 0
    assert abs(kept.mean() - 0.75) < 0.02
    assert np.allclose(y.data[kept], 1 / 0.75)
    y.sum().backward()
    assert np.array_equal(x.grad, y.data)  # the gradient is the same scaled mask
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.5)


def test_init_functions():
    rng = np.random.default_rng(0)
    w = nn.Parameter(np.empty((300, 200)))
    nn.init.xavier_uniform_(w, generator=rng)
    bound = math.sqrt(6 / 500)
    assert np.abs(w.data).max() <= bound and w.data.max() > 0.95 * bound
    nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=rng)
    assert np.abs(w.data).max() <= 1 / math.sqrt(200)
    nn.init.normal_(w, 1.0, 0.5, generator=rng)
    assert abs(w.data.mean() - 1.0) < 0.01 and abs(w.data.std() - 0.5) < 0.01
    nn.init.constant_(w, 3.0)
    assert np.all(w.data == 3.0)
    nn.init.zeros_(w)
    assert not w.data.any()
    nn.init.ones_(w)
    assert np.all(w.data == 1.0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(nn.Parameter(np.zeros(3)))


def test_parameter_is_a_float_tensor_requiring_grad():
    p = nn.Parameter([1, 2, 3])
    assert p.dtype == np.float64 and p.requires_grad and p.is_leaf
    assert isinstance(p, cr.Tensor)
    assert "Parameter containing" in repr(p)
    assert not nn.Parameter([1.0], requires_grad=False).requires_grad
    # Operations on parameters give ordinary tensors.
    assert type(p * 2) is cr.Tensor


def test_manual_seed_checks_its_argument():
    with pytest.raises(TypeError, match="int"):
        cr.manual_seed(1.5)
    with pytest.raises(TypeError, match="Generator"):
        nn.Linear(1, 1, generator=42)
