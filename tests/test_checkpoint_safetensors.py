"""Checkpoints in the safetensors format: chosen by extension, atomic, never unpickled."""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import sys
import zipfile

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.serialization import CheckpointError


def _model(seed=0):
    return nn.Sequential(
        nn.Linear(3, 5, generator=np.random.default_rng(seed)),
        nn.Tanh(),
        nn.Linear(5, 2, generator=np.random.default_rng(seed + 1)),
    )


@pytest.fixture
def st():
    return pytest.importorskip("safetensors.numpy")


def _header(path):
    """The JSON header of a safetensors file, read by hand (8-byte length, then JSON)."""
    data = pathlib.Path(path).read_bytes()
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def test_a_state_dict_round_trips_with_dtypes_shapes_and_order(tmp_path, st):
    rng = np.random.default_rng(0)
    state = {
        "z.last_in_the_alphabet": rng.normal(size=(3, 4)),
        "half": rng.normal(size=5).astype(np.float16),
        "single": rng.normal(size=(2, 2)).astype(np.float32),
        "ints": np.arange(-3, 3, dtype=np.int8),
        "big": np.array([2**40, -(2**40)], dtype=np.int64),
        "unsigned": np.array([0, 65535], dtype=np.uint16),
        "mask": np.array([True, False, True]),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 3)),
        "transposed": np.arange(6.0).reshape(2, 3).T,  # not C-contiguous
        "big_endian": np.arange(4.0, dtype=">f8"),
        "tensor": cr.Tensor([1.0, -1.0]),
    }
    path = tmp_path / "state.safetensors"
    cr.save(state, path)
    back = cr.load(path)
    assert list(back) == list(state)
    for key, value in state.items():
        want = value.data if isinstance(value, cr.Tensor) else value
        got = back[key]
        assert type(got) is np.ndarray and got.flags.writeable
        assert got.shape == want.shape and got.dtype == want.dtype.newbyteorder("=")
        assert np.array_equal(got, want)


def test_the_file_is_plain_safetensors(tmp_path, st):
    model = _model()
    path = tmp_path / "m.safetensors"
    cr.save(model.state_dict(), path)
    header, body = _header(path)
    # Each tensor's header entry describes its bytes exactly, little-endian, row-major.
    for name, p in model.named_parameters():
        entry = header[name]
        assert entry["dtype"] == "F64" and entry["shape"] == list(p.data.shape)
        start, end = entry["data_offsets"]
        assert body[start:end] == p.data.astype("<f8").tobytes()
    # And the library's own reader agrees.
    read = st.load_file(str(path))
    assert set(read) == set(model.state_dict())
    for name, arr in model.state_dict().items():
        assert np.array_equal(read[name], arr)


def test_a_file_written_by_the_library_loads_in_its_order(tmp_path, st):
    path = tmp_path / "other.safetensors"
    st.save_file({"b": np.ones(2, np.float32), "a": np.arange(3, dtype=np.int32)}, str(path))
    back = cr.load(path)
    assert sorted(back) == ["a", "b"]
    assert back["a"].dtype == np.int32 and np.array_equal(back["a"], [0, 1, 2])
    assert back["b"].dtype == np.float32 and np.array_equal(back["b"], [1, 1])


def test_the_extension_chooses_the_format_whatever_its_case(tmp_path, st):
    path = tmp_path / "M.SafeTensors"
    cr.save({"w": np.ones(2)}, path)
    assert not zipfile.is_zipfile(path)
    assert np.array_equal(st.load_file(str(path))["w"], np.ones(2))
    assert np.array_equal(cr.load(path)["w"], np.ones(2))


def test_a_model_reloads_and_predicts_identically(tmp_path, st):
    model, other = _model(0), _model(7)
    x = cr.Tensor(np.random.default_rng(3).normal(size=(4, 3)))
    path = tmp_path / "m.safetensors"
    cr.save(model.state_dict(), path)
    assert not zipfile.is_zipfile(path)
    other.load_state_dict(cr.load(path))
    assert np.array_equal(other(x).data, model(x).data)


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ({"model": {"w": np.ones(2)}}, "only arrays, but 'model' is a dict"),
        ({"w": [1.0, 2.0]}, "only arrays, but 'w' is a list"),
        ({"epoch": 3}, "only arrays, but 'epoch' is a int"),
        ({1: np.ones(2)}, "keys of a .safetensors file are str"),
        ([np.ones(2)], "one flat dict of arrays"),
        ({"c": np.ones(2, np.complex128)}, "dtype complex128"),
        ({"s": np.array(["a"])}, "dtype <U1"),
        ({"o": np.array([None], dtype=object)}, "dtype object"),
    ],
)
def test_what_the_format_cannot_hold_is_refused_and_the_old_file_kept(tmp_path, st, obj, match):
    path = tmp_path / "m.safetensors"
    cr.save({"w": np.arange(3.0)}, path)
    good = path.read_bytes()
    with pytest.raises(TypeError, match=match):
        cr.save(obj, path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["m.safetensors"]


@pytest.mark.parametrize(
    ("key", "match"),
    [("__metadata__", "'__metadata__' names the header's metadata"), ("a\ud800", "lone surrogate")],
)
def test_keys_the_header_cannot_hold_are_refused_and_the_old_file_kept(tmp_path, st, key, match):
    path = tmp_path / "m.safetensors"
    cr.save({"w": np.arange(3.0)}, path)
    good = path.read_bytes()
    with pytest.raises(ValueError, match=match):
        cr.save({key: np.ones(2)}, path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["m.safetensors"]


def test_a_crash_while_saving_leaves_the_old_file_intact(tmp_path, st, monkeypatch):
    path = tmp_path / "m.safetensors"
    cr.save({"w": np.arange(5.0)}, path)
    good = path.read_bytes()
    assert _header(path)[0]["w"]["shape"] == [5]

    def crash(fd):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        cr.save({"w": np.zeros(5)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert np.array_equal(cr.load(path)["w"], np.arange(5.0))


def test_truncated_files_give_a_clear_error(tmp_path, st):
    path = tmp_path / "m.safetensors"
    cr.save(_model().state_dict(), path)
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    for cut in (0, 5, 8, 8 + size // 2, 8 + size, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated, corrupted or not a safetensors"):
            cr.load(path)


def test_foreign_files_give_a_clear_error(tmp_path, st):
    path = tmp_path / "x.safetensors"
    cr.save({"w": np.ones(2)}, tmp_path / "real.npz")
    path.write_bytes((tmp_path / "real.npz").read_bytes())
    with pytest.raises(CheckpointError, match=r"not a safetensors file.*zip archive"):
        cr.load(path)
    path.write_bytes(b"just some text, not tensors at all")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        cr.load(path)
    # A damaged header whose length happens to start with the byte a pickle starts
    # with is called damaged, not a pickle.
    header = b'{"w": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}, "bad": 1}'
    header += b" " * (128 - len(header))
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))
    with pytest.raises(CheckpointError, match="not a safetensors file") as error:
        cr.load(path)
    assert "pickle" not in str(error.value)
    # A header whose ranges do not cover the data that follows it.
    header = json.dumps({"w": {"dtype": "F64", "shape": [4], "data_offsets": [0, 32]}}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(16))
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        cr.load(path)


def test_a_safetensors_file_under_another_name_is_pointed_out(tmp_path, st):
    cr.save({"w": np.ones(2)}, tmp_path / "m.safetensors")
    wrong = tmp_path / "m.npz"
    wrong.write_bytes((tmp_path / "m.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"starts like a safetensors file: name it \*"):
        cr.load(wrong)


def test_a_dtype_numpy_lacks_is_named(tmp_path, st):
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    with pytest.raises(CheckpointError, match="'w' as BF16, a dtype numpy has no type for"):
        cr.load(path)


def test_a_recorded_order_that_does_not_fit_is_ignored(tmp_path, st):
    path = tmp_path / "m.safetensors"
    for order in ('["a"]', '["a", "a"]', "[1, 2]", "not json"):
        st.save_file(
            {"b": np.ones(1), "a": np.zeros(1)}, str(path), metadata={"chainrule.order": order}
        )
        assert sorted(cr.load(path)) == ["a", "b"]


class _Trap:
    """Unpickling this creates a file: proof that a loader ran pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.parametrize("name", ["evil.safetensors", "evil.npz", "evil.pt"])
def test_loading_never_unpickles_whatever_the_file_holds(tmp_path, name):
    marker = tmp_path / "code-ran"
    payload = pickle.dumps(_Trap(marker))
    plain = tmp_path / name
    plain.write_bytes(payload)
    # What torch.save writes: a zip archive holding a pickle.
    zipped = tmp_path / ("zipped-" + name)
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("archive/data.pkl", payload)
    for path in (plain, zipped):
        if name.endswith(".safetensors"):
            pytest.importorskip("safetensors")
        with pytest.raises(CheckpointError):
            cr.load(path)
        assert not marker.exists()
    # The payload is live: unpickling it does run code.
    pickle.loads(payload)
    assert marker.exists()


def test_without_the_package_the_error_names_the_extra(tmp_path, monkeypatch):
    cr.save({"w": np.ones(2)}, tmp_path / "m.npz")  # .npz needs nothing extra
    existing = tmp_path / "old.safetensors"
    existing.write_bytes(b"left alone")
    for module in [m for m in sys.modules if m == "safetensors" or m.startswith("safetensors.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "safetensors", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"save: .*pip install 'chainrule\[safetensors\]'"):
        cr.save({"w": np.ones(2)}, tmp_path / "new.safetensors")
    with pytest.raises(ImportError, match=r"load: .*pip install 'chainrule\[safetensors\]'"):
        cr.load(existing)
    with pytest.raises(ImportError, match="safetensors"):
        cr.save({"w": np.ones(2)}, existing)
    assert existing.read_bytes() == b"left alone"
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "old.safetensors"]
