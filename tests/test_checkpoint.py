"""Checkpoints: .npz without pickle, atomic writes, versioned format, clear errors, exact resume."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.serialization import FORMAT_VERSION, MARKER, CheckpointError


def _model(seed=0):
    return nn.Sequential(
        nn.Linear(3, 5, generator=np.random.default_rng(seed)),
        nn.Tanh(),
        nn.Linear(5, 2, generator=np.random.default_rng(seed + 1)),
    )


def test_round_trip_of_a_nested_state(tmp_path):
    obj = {
        "model": _model().state_dict(),
        "epoch": 7,
        "lr": 0.125,
        "name": "run-1",
        "done": False,
        "nothing": None,
        "betas": (0.9, 0.999),
        "history": [1.5, float("inf"), 2],
        "ints": np.arange(4, dtype=np.int32),
        "half": np.ones((2, 2), dtype=np.float32),
        "scalar": np.float32(2.5),
        "tensor": cr.Tensor([1.0, 2.0]),
        3: {"nested": [np.zeros(0)]},
    }
    path = tmp_path / "state.npz"
    cr.save(obj, path)
    back = cr.load(path)
    assert list(back) == list(obj)
    for k in ("epoch", "lr", "name", "done", "nothing", "betas", "history"):
        assert back[k] == obj[k] and type(back[k]) is type(obj[k])
    for k, v in obj["model"].items():
        assert back["model"][k].dtype == v.dtype and np.array_equal(back["model"][k], v)
    assert back["ints"].dtype == np.int32 and np.array_equal(back["ints"], obj["ints"])
    assert back["half"].dtype == np.float32
    assert isinstance(back["scalar"], np.float32) and back["scalar"] == 2.5
    assert isinstance(back["tensor"], cr.Tensor)
    assert np.array_equal(back["tensor"].data, [1.0, 2.0])
    assert back[3]["nested"][0].shape == (0,)


def test_file_is_plain_npz_with_marker_structure_and_arrays_by_position(tmp_path):
    model = _model()
    state = model.state_dict()
    path = tmp_path / "m.npz"
    cr.save({"model": state, "epoch": 3}, path)
    with np.load(path, allow_pickle=False) as f:
        assert int(f[MARKER]) == FORMAT_VERSION
        nodes = json.loads(str(f["__structure__"]))
        assert all(f[k].dtype != object for k in f.files)
        # The k-th array met in the structure is the member "k".
        for k, v in enumerate(state.values()):
            assert np.array_equal(f[str(k)], v)
    assert nodes[-1][0] == "dict" and [k for k, _ in nodes[-1][1]] == ["model", "epoch"]
    with zipfile.ZipFile(path) as z:
        assert set(z.namelist()) == {
            f"{k}.npy" for k in [MARKER, "__structure__", *map(str, range(len(state)))]
        }


def test_keys_that_clash_with_the_format_or_each_other_survive(tmp_path):
    obj = {MARKER: np.ones(2), "__structure__": np.zeros(1), "a/b": np.arange(2), "a": {"b": 5.0}}
    obj["a"]["b"] = np.arange(3)  # stored under the same path as "a/b"
    cr.save(obj, tmp_path / "clash.npz")
    back = cr.load(tmp_path / "clash.npz")
    assert list(back) == list(obj)
    assert np.array_equal(back[MARKER], np.ones(2))
    assert np.array_equal(back["__structure__"], np.zeros(1))
    assert np.array_equal(back["a/b"], np.arange(2))
    assert np.array_equal(back["a"]["b"], np.arange(3))


def test_save_refuses_what_would_need_pickle(tmp_path):
    with pytest.raises(TypeError, match="cannot store a object at model/extra without pickle"):
        cr.save({"model": {"extra": object()}}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="dtype object"):
        cr.save({"a": np.array([None, 1])}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="dict keys must be str or int"):
        cr.save({(1, 2): 3}, tmp_path / "x.npz")
    assert not os.listdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cr.save({"a": 1}, tmp_path / "no" / "such" / "x.npz")


def test_save_writes_a_temp_file_in_the_same_folder_syncs_and_renames(tmp_path, monkeypatch):
    calls = []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(("fsync", fd)) or real_fsync(fd))

    def replace(src, dst):
        calls.append(("replace", os.path.dirname(src), os.path.basename(src), dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "ckpt.npz"
    cr.save({"w": np.ones(3)}, target)
    kinds = [c[0] for c in calls]
    assert kinds.index("fsync") < kinds.index("replace")
    (rename,) = [c for c in calls if c[0] == "replace"]
    assert rename[1] == str(tmp_path) and rename[2] != "ckpt.npz" and rename[3] == str(target)
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_a_crash_while_saving_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    target = tmp_path / "ckpt.npz"
    cr.save({"w": np.arange(5.0)}, target)
    good = target.read_bytes()

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        cr.save({"w": np.zeros(5)}, target)
    assert target.read_bytes() == good
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert np.array_equal(cr.load(target)["w"], np.arange(5.0))


def test_truncated_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "m.npz"
    cr.save(_model().state_dict(), path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated, corrupted or not a chainrule"):
            cr.load(path)


def test_corrupted_bytes_give_a_clear_error(tmp_path):
    path = tmp_path / "m.npz"
    cr.save({"w": np.arange(1000.0)}, path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("0.npy")
    data[info.header_offset + 200] ^= 0xFF  # inside the array's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="CRC"):
        cr.load(path)


def test_files_that_are_not_checkpoints_are_recognised(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a chainrule checkpoint"):
        cr.load(junk)
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones(2))
    with pytest.raises(CheckpointError, match=f"no '{MARKER}' entry"):
        cr.load(plain)
    single = tmp_path / "single.npy"
    np.save(single, np.ones(2))
    with pytest.raises(CheckpointError, match="single numpy array"):
        cr.load(single)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        cr.load(tmp_path / "missing.npz")


def test_newer_format_versions_are_refused(tmp_path):
    path = tmp_path / "future.npz"
    np.savez(
        path,
        **{MARKER: np.array(FORMAT_VERSION + 1), "__structure__": np.array('{"dict": []}')},
    )
    with pytest.raises(CheckpointError, match=f"version {FORMAT_VERSION + 1}.*upgrade"):
        cr.load(path)


@pytest.mark.parametrize(
    ("version", "structure", "member"), [(1, {"array": "x"}, "x"), (2, [["array", 0]], "0")]
)
def test_loading_never_unpickles(tmp_path, version, structure, member):
    path = tmp_path / "evil.npz"
    np.savez(
        path,
        **{
            MARKER: np.array(version),
            "__structure__": np.array(json.dumps(structure)),
            member: np.array([object()], dtype=object),
        },
    )
    with pytest.raises(CheckpointError, match="pickle"):
        cr.load(path)


def test_model_and_optimizer_resume_bit_for_bit_through_a_file(tmp_path):
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(12, 6, 3)), rng.integers(0, 2, size=(12, 6))
    loss_fn = nn.CrossEntropyLoss()

    def train(model, opt, batches):
        for i in batches:
            opt.zero_grad()
            loss_fn(model(cr.Tensor(xs[i])), ys[i]).backward()
            opt.step()

    straight = _model()
    opt = cr.optim.Adam(straight.parameters(), lr=0.01)
    train(straight, opt, range(12))

    first = _model()
    opt1 = cr.optim.Adam(first.parameters(), lr=0.01)
    train(first, opt1, range(6))
    path = tmp_path / "resume.npz"
    cr.save({"model": first.state_dict(), "optimizer": opt1.state_dict(), "step": 6}, path)
    del first, opt1

    ckpt = cr.load(path)
    resumed = _model(seed=50)  # different initial values, all overwritten
    opt2 = cr.optim.Adam(resumed.parameters(), lr=0.5)
    resumed.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["betas"] == (0.9, 0.999)
    train(resumed, opt2, range(ckpt["step"], 12))
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert np.array_equal(a.data, b.data)


def test_rng_state_can_be_checkpointed(tmp_path):
    from chainrule.random import get_rng_state, set_rng_state

    cr.manual_seed(3)
    nn.Linear(4, 4)
    cr.save({"rng": get_rng_state()}, tmp_path / "rng.npz")
    expected = nn.Linear(4, 4).weight.data
    set_rng_state(cr.load(tmp_path / "rng.npz")["rng"])
    assert np.array_equal(nn.Linear(4, 4).weight.data, expected)
    with pytest.raises(ValueError, match="get_rng_state"):
        set_rng_state({"state": 1})


def test_killing_a_process_mid_save_never_leaves_a_broken_checkpoint(tmp_path):
    """SIGKILL a child while it saves over and over: every kill leaves a loadable file.

    The child reports each finished save, so the kills land while it is saving
    however slowly it starts (a busy machine), at several points into a save.
    """
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "ckpt.npz"
    cr.save({"step": np.array(-1), "w": np.zeros((256, 256))}, path)
    child = (
        "import sys, numpy as np, chainrule as cr\n"
        "step = int(sys.argv[2])\n"
        "while True:\n"
        "    w = np.full((256, 256), float(step))\n"
        "    cr.save({'step': np.array(step), 'w': w}, sys.argv[1])\n"
        "    print(step, flush=True)\n"
        "    step += 1\n"
    )
    for round_, delay in enumerate((0.0, 0.002, 0.005, 0.009, 0.014)):
        first = 1000 * round_
        proc = subprocess.Popen(
            [sys.executable, "-c", child, str(path), str(first)], stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        for _ in range(round_ + 1):  # let it finish a few saves first
            assert proc.stdout.readline(), f"the saving child died ({proc.wait()})"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        state = cr.load(path)  # never truncated: the old file or a complete new one
        step = int(state["step"])
        assert step >= first + round_  # written by this child, after the saves it reported
        assert np.all(state["w"] == float(step))
    # A kill can strand a temporary file, but only under its own hidden name.
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "ckpt.npz"]
    assert all(n.startswith(".ckpt.npz.") and n.endswith(".tmp") for n in leftovers)
