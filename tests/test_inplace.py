"""In-place changes: views share one version with their base, and writes that carry
a gradient are recorded, so no in-place change can leave a wrong gradient behind.

Either backward gives the gradient of what was computed, or it raises
``InplaceError``; the tests below try every kind of view and write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import InplaceError

# ---------------------------------------------------------------------------
# Views share the version of the memory they view
# ---------------------------------------------------------------------------

#: Ways to view a (3, 4) tensor's memory, each with a write through the view.
VIEWS: dict[str, Callable[[cr.Tensor], cr.Tensor]] = {
    "slice": lambda t: t[0:2],
    "row": lambda t: t[1],
    "step slice": lambda t: t[:, ::2],
    "reshape": lambda t: t.reshape(12),
    "reshape -1": lambda t: t.reshape(2, -1),
    "transpose": lambda t: t.transpose(),
    ".T": lambda t: t.T,
    "swapaxes": lambda t: t.swapaxes(0, 1),
    "None index": lambda t: t[None],
    "ellipsis": lambda t: t[..., 1:],
    "detach": lambda t: t.detach(),
    "view of a view": lambda t: t.T[1:][:, ::2],
    "iterated row": lambda t: next(iter(t)),
}


def _base(requires_grad: bool = False) -> cr.Tensor:
    return cr.Tensor(np.arange(12.0).reshape(3, 4) / 7, requires_grad=requires_grad)


@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
def test_a_write_through_a_view_invalidates_saved_uses_of_the_base(view):
    w = cr.Tensor(np.ones((3, 4)), requires_grad=True)
    c = _base()
    loss = (w * c).sum()  # d loss / dw is c, as it is now
    v = view(c)
    v += 10.0
    with pytest.raises(InplaceError, match=r"mul"):
        loss.backward()


@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
def test_a_write_through_the_base_invalidates_saved_uses_of_a_view(view):
    c = _base()
    v = view(c)
    w = cr.Tensor(np.ones(v.shape), requires_grad=True)
    loss = (w * v).sum()
    c.fill_(2.0)
    with pytest.raises(InplaceError, match=r"mul"):
        loss.backward()


def test_the_documented_example_raises_instead_of_giving_11():
    w = cr.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    c = cr.Tensor([1.0, 1.0, 1.0])
    loss = (w * c).sum()
    v = c[0:2]
    v += 10
    with pytest.raises(InplaceError):
        loss.backward()
    assert w.grad is None


@pytest.mark.parametrize(
    "change",
    [
        lambda w: w[0:2].__isub__(1.0),
        lambda w: w.T.__setitem__(0, 5.0),
        lambda w: w.reshape(4).zero_(),
        lambda w: w.detach().add_(1.0),
        lambda w: w[1].copy_(np.array([7.0, 7.0])),
    ],
    ids=["slice -=", ".T setitem", "reshape zero_", "detach add_", "row copy_"],
)
def test_changing_a_parameter_through_a_view_under_no_grad_invalidates_its_graphs(change):
    w = cr.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, name="w")
    loss = (w * w).sum()
    with cr.no_grad():
        change(w)
    with pytest.raises(InplaceError, match=r"'w'"):
        loss.backward()


def test_zeroing_a_detached_copy_invalidates_the_graph_of_the_original():
    x = cr.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    s = (x * x).sum()
    x.detach().zero_()
    with pytest.raises(InplaceError):
        s.backward()


def test_a_view_made_after_a_change_is_not_stale():
    c = _base()
    c += 1.0  # changed before anything used it
    w = cr.Tensor(np.ones(4), requires_grad=True)
    loss = (w * c[2]).sum()
    loss.backward()
    np.testing.assert_array_equal(w.grad, c.data[2])


def test_writes_to_a_copy_leave_the_original_graph_alone():
    w = cr.Tensor([1.0, 2.0], requires_grad=True)
    c = cr.Tensor([3.0, 4.0])
    loss = (w * c).sum()
    copy = cr.Tensor(c)  # a copy, not a view
    copy += 1.0
    loss.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])


def test_a_broadcast_view_is_read_only_with_a_clear_error():
    b = cr.Tensor([1.0, 2.0]).broadcast_to((3, 2))
    with pytest.raises(ValueError, match=r"\+=.*read-only"):
        b += 1.0


def test_random_view_chains_every_stale_use_raises_and_fresh_uses_are_exact():
    """Random chains of views; a write through any member makes every saved use stale."""
    rng = np.random.default_rng(0)
    steps: list[Callable[[cr.Tensor], cr.Tensor]] = [
        lambda t: t.T,
        lambda t: t.reshape(-1) if t.ndim > 1 else t.reshape(1, -1),
        lambda t: t[1:] if t.shape[0] > 1 else t,
        lambda t: t[None],
        lambda t: t.detach(),
        lambda t: t[..., ::-1],
        lambda t: t.swapaxes(0, -1),
    ]
    writes: list[Callable[[cr.Tensor], Any]] = [
        lambda t: t.__iadd__(1.5),
        lambda t: t.__imul__(2.0),
        lambda t: t.__setitem__(..., 0.25),
        lambda t: t.fill_(3.0),
        lambda t: t.zero_(),
        lambda t: t.sub_(np.ones(t.shape), alpha=0.5),
        lambda t: t.copy_(np.full(t.shape, -1.0)),
    ]
    raised = 0
    for trial in range(400):
        base = cr.Tensor(rng.standard_normal((3, 4)), requires_grad=bool(trial % 2))
        chain = [base]
        block = [0]  # which memory each member uses: a reshape may have to copy
        for _ in range(rng.integers(1, 6)):
            chain.append(steps[rng.integers(len(steps))](chain[-1]))
            same = np.shares_memory(chain[-1].data, chain[-2].data)
            block.append(block[-1] if same else block[-1] + 1)
        u, k = rng.integers(len(chain)), rng.integers(len(chain))
        used, written = chain[u], chain[k]
        w = cr.Tensor(rng.standard_normal(used.shape), requires_grad=True)
        loss = (w * used).sum()
        # Backward checks each node it visits and that node's inputs: it must raise
        # when one of them lives in the memory the write went to.
        members = {id(t): b for t, b in zip(chain, block)}
        checked = [
            x
            for n in cr.engine.toposort([loss])
            if not n.is_leaf
            for x in (n, *n.parents)
            if members.get(id(x)) == block[k]
        ]
        with cr.no_grad():
            writes[rng.integers(len(writes))](written)
        if checked:
            with pytest.raises(InplaceError):
                loss.backward()
            raised += 1
        else:  # the write went into other memory: the graph is still right
            loss.backward()
            np.testing.assert_array_equal(w.grad, used.data)
        # The same product formed after the write is exact.
        w.grad = None
        (w * used.detach()).sum().backward()
        np.testing.assert_array_equal(w.grad, used.data)
    assert raised > 150  # most chains are views all the way


# ---------------------------------------------------------------------------
# Writes that carry a gradient are recorded
# ---------------------------------------------------------------------------


WRITES: dict[str, Callable[[cr.Tensor, cr.Tensor], cr.Tensor]] = {
    "setitem slice": lambda t, v: t.__setitem__(slice(0, 2), 3 * v[0:2]) or t,
    "setitem int index": lambda t, v: t.__setitem__(1, v[0] * v[1]) or t,
    "setitem list index": lambda t, v: t.__setitem__([0, 2], v[1:3].exp()) or t,
    "setitem mask": lambda t, v: t.__setitem__(np.array([True, False, True]), v[0:2]) or t,
    "setitem broadcast": lambda t, v: t.__setitem__(slice(None), v[1]) or t,
    "+=": lambda t, v: t.__iadd__(3 * v),
    "-=": lambda t, v: t.__isub__(v * v),
    "*=": lambda t, v: t.__imul__(v.tanh()),
    "/=": lambda t, v: t.__itruediv__(v * v + 1.0),
    "add_ alpha": lambda t, v: t.add_(v, alpha=-2.0),
    "sub_": lambda t, v: t.sub_(v.sigmoid()),
    "mul_": lambda t, v: t.mul_(v * 2.0),
    "copy_": lambda t, v: t.copy_(3 * v),
    "copy_ broadcast": lambda t, v: t.copy_(v.sum()),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_writing_a_value_that_requires_grad_into_a_constant_records_it(write):
    def fn(v: cr.Tensor) -> cr.Tensor:
        t = cr.Tensor([0.5, -1.0, 2.0])
        t = write(t, v)
        return (t * v).sum()

    v = cr.Tensor([0.3, -0.7, 1.1], requires_grad=True)
    cr.gradcheck(fn, [v])
    cr.gradgradcheck(fn, [v])


def test_the_example_from_the_reliability_page_gives_12_not_6():
    def setitem(t: cr.Tensor, w: cr.Tensor) -> cr.Tensor:
        t[0:1] = 3 * w
        return t

    def augmented(t: cr.Tensor, w: cr.Tensor) -> cr.Tensor:
        t += 3 * w  # rebinds t to the node t + 3w, as t = t + 3 * w would
        return t

    for write in (setitem, augmented, lambda t, w: t.copy_(3 * w)):
        w = cr.Tensor([2.0], requires_grad=True)
        t = write(cr.Tensor([0.0]), w)
        (t * w).sum().backward()  # 3 w^2: the slope is 6 w = 12
        np.testing.assert_array_equal(w.grad, [12.0])


def test_an_accumulator_that_starts_constant_joins_the_graph():
    w = cr.Tensor([1.0, -2.0], requires_grad=True)
    total = cr.Tensor(0.0)
    for k in range(1, 4):
        total += (w * k).sum() ** 2
    assert total.requires_grad
    total.backward()
    # d/dw sum_k (k (w1 + w2))^2 = sum_k 2 k^2 (w1 + w2)
    np.testing.assert_allclose(w.grad, [2 * 14 * -1.0] * 2)


def test_filling_rows_of_a_buffer_one_at_a_time_is_recorded_each_time():
    def fn(x: cr.Tensor) -> cr.Tensor:
        out = cr.Tensor(np.zeros((3, 2)))
        for i in range(3):
            out[i] = (x[i] * (i + 1)).tanh()  # the second write goes into a node
        out[1, 0] = out.data[1, 0] * 0.0 + x[0, 0]  # and a single element
        return (out * out).sum()

    x = cr.Tensor(np.linspace(-1, 1, 6).reshape(3, 2), requires_grad=True)
    cr.gradcheck(fn, [x])
    cr.gradgradcheck(fn, [x])


def test_an_intermediate_changed_in_place_keeps_the_old_node_for_its_gradient():
    def fn(x: cr.Tensor) -> cr.Tensor:
        h = x.exp()  # its rule needs its output: the old numbers must be kept
        h[0] = x[1] * 5.0
        h.mul_(x)
        return h.sum()

    x = cr.Tensor([0.2, -0.4, 0.9], requires_grad=True)
    cr.gradcheck(fn, [x])


def test_a_recorded_write_keeps_the_tensor_dtype():
    t = cr.Tensor(np.zeros(2, dtype=np.float32))
    w = cr.Tensor([1.0, 2.0], requires_grad=True)  # float64
    t += w * 3
    assert t.dtype == np.float32
    t.sum().backward()
    assert w.grad.dtype == np.float64
    np.testing.assert_array_equal(w.grad, [3.0, 3.0])


def test_graphs_that_used_a_tensor_before_a_recorded_write_raise():
    t = cr.Tensor([1.0, 2.0])
    w = cr.Tensor([3.0, 4.0], requires_grad=True)
    before = (t * w).sum()
    t[0] = w[0] * 2
    with pytest.raises(InplaceError):
        before.backward()


def test_recorded_write_into_memory_a_constant_view_shares_is_refused():
    t = cr.Tensor([1.0, 2.0, 3.0])
    view = t[1:]
    w = cr.Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"setitem.*shares its memory.*constant"):
        t[1] = w[0]
    with pytest.raises(RuntimeError, match=r"copy_.*shares its memory"):
        view.copy_(w)
    np.testing.assert_array_equal(t.data, [1.0, 2.0, 3.0])  # nothing was written
    del view
    t[1] = w[0]  # no other tensor holds the memory any more
    assert t.requires_grad


def test_recorded_write_through_a_view_of_a_leaf_that_requires_grad_is_refused():
    w = cr.Tensor([1.0, 2.0], requires_grad=True, name="w")
    v = w[0:1]  # a recorded view of the leaf
    with pytest.raises(RuntimeError, match=r"shares its memory with another tensor 'w'"):
        v[0] = 5.0
    np.testing.assert_array_equal(w.data, [1.0, 2.0])


def test_recorded_write_with_a_repeated_index_is_refused():
    t = cr.Tensor([0.0, 0.0, 0.0])
    w = cr.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"more than once"):
        t[[0, 0]] = w
    t[[2, 0]] = w  # distinct positions are fine
    (t * t).sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, 4.0])


def test_a_leaf_that_requires_grad_still_refuses_in_place_changes_with_grad_on():
    w = cr.Tensor([1.0, 2.0], requires_grad=True)
    u = cr.Tensor([1.0, 1.0], requires_grad=True)
    for change in (
        lambda: w.__setitem__(0, u[0]),
        lambda: w.copy_(u),
        lambda: w.add_(u),
    ):
        with pytest.raises(RuntimeError, match=r"leaf that requires grad"):
            change()
    np.testing.assert_array_equal(w.data, [1.0, 2.0])


def test_a_failed_recorded_write_changes_nothing():
    t = cr.Tensor([1.0, 2.0])
    w = cr.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"setitem.*\(3,\)"):
        t[0:2] = w
    assert not t.requires_grad and t.is_leaf
    np.testing.assert_array_equal(t.data, [1.0, 2.0])


def test_copies_and_pickles_carry_no_version_and_shallow_copies_share_it():
    import copy
    import pickle

    model = cr.nn.Linear(2, 2)
    model(cr.Tensor(np.ones((3, 2))))  # the forward viewed the weight (weight.T)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        np.testing.assert_array_equal(twin.weight.data, model.weight.data)
        assert not np.shares_memory(twin.weight.data, model.weight.data)
        buffer = cr.Tensor(twin.weight.data)  # (a copy)
        buffer[0] = cr.Tensor([1.0, 2.0], requires_grad=True)  # nothing else holds it
    c = cr.Tensor([1.0, 2.0])
    w = cr.Tensor([3.0, 4.0], requires_grad=True)
    loss = (w * c).sum()
    shallow = copy.copy(c)
    shallow += 1.0  # the same memory as c
    with pytest.raises(InplaceError):
        loss.backward()
