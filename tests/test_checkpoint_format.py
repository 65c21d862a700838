"""Checkpoint files: any key round-trips, saved files get the right mode and follow
links, and every malformed file gives a CheckpointError that says what is wrong."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import stat
import struct
import tempfile
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.serialization import FORMAT_VERSION, MARKER, STRUCTURE, CheckpointError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _same(a, b, where="top"):
    """Assert ``b`` is ``a`` rebuilt: same types, keys in order, arrays equal in dtype and value."""
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}/{k!r}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}/{i}")
    elif isinstance(a, cr.Tensor):
        _same(a.data, b.data, where)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), where
    elif isinstance(a, float) and a != a:
        assert b != b, where
    else:
        assert a == b, where


# ---------------------------------------------------------------------------
# Any key round-trips to its own array.
# ---------------------------------------------------------------------------

# Keys that name the same member, or a format member, under numpy's npz naming.
AWKWARD = [
    "",
    "w",
    "w.npy",
    "w.npy.npy",
    ".npy",
    "0",
    "0.npy",
    "1",
    "arr_0",
    MARKER,
    MARKER + ".npy",
    STRUCTURE,
    STRUCTURE + ".npy",
    "~" + MARKER,
    "a/b",
    "a\\b",
    "/",
    "..",
    "x#1",
    "nul\x00",
    "\x00",
    "é",
    "日本",
    "\ud800",  # a lone surrogate: not encodable as UTF-8
    "k" * 70_000,  # longer than a zip member name can be
]


def test_keys_equal_up_to_an_npy_suffix_keep_their_own_arrays(tmp_path):
    obj = {"w": np.arange(3.0), "w.npy": np.arange(4.0), "w.npy.npy": np.arange(5.0)}
    cr.save(obj, tmp_path / "c.npz")
    _same(obj, cr.load(tmp_path / "c.npz"))


def test_every_awkward_key_round_trips(tmp_path):
    obj = {k: np.full(2, i) for i, k in enumerate(AWKWARD)}
    obj["nested"] = {k: cr.Tensor(np.full(3, -float(i))) for i, k in enumerate(AWKWARD)}
    cr.save(obj, tmp_path / "c.npz")
    _same(obj, cr.load(tmp_path / "c.npz"))


keys = st.one_of(
    st.sampled_from(AWKWARD[:-1]),
    st.text(st.characters(exclude_categories=()), max_size=8),  # surrogates included
    st.text(alphabet="w./_0#~", max_size=10).map(lambda s: s + ".npy"),
    st.integers(-3, 3),
)
tree = st.recursive(
    st.sampled_from(["array", "tensor", "scalar", "f64", "value"]),
    lambda inner: st.one_of(
        st.dictionaries(keys, inner, max_size=4),
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
    ),
    max_leaves=12,
)


def _fill(shape, counter):
    """Replace each leaf marker with a value no other leaf has."""
    if isinstance(shape, dict):
        return {k: _fill(v, counter) for k, v in shape.items()}
    if isinstance(shape, (list, tuple)):
        return type(shape)(_fill(v, counter) for v in shape)
    counter[0] += 1
    n = counter[0]
    dtypes = [np.float64, np.float32, np.int64, np.uint8, np.bool_, np.complex128, "<U3", ">f8"]
    if shape == "array":
        return np.full((n % 3, 2), n, dtype=dtypes[n % len(dtypes)])
    if shape == "tensor":
        return cr.Tensor(np.full(n % 4 + 1, float(n)))
    if shape == "scalar":
        return np.int32(n)
    if shape == "f64":
        return np.float64(n + 0.5)
    return [None, True, n, n + 0.25, f"s{n}"][n % 5]


@SETTINGS
@given(st.dictionaries(keys, tree, min_size=1, max_size=6))
def test_random_keys_and_nestings_round_trip(shape):
    obj = _fill(shape, [0])
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "c.npz")
        cr.save(obj, path)
        _same(obj, cr.load(path))


def test_any_depth_of_nesting_round_trips(tmp_path):
    deep = leaf = [np.arange(2.0)]
    for i in range(5000):
        deep = {str(i): deep} if i % 2 else [deep]
    cr.save(deep, tmp_path / "deep.npz")
    back = cr.load(tmp_path / "deep.npz")
    for i in reversed(range(5000)):
        back = back[str(i)] if i % 2 else back[0]
    _same(leaf, back)


def test_a_nesting_that_contains_itself_is_refused(tmp_path):
    loop: list = [1]
    loop.append({"again": loop})
    with pytest.raises(ValueError, match="the list at loop/1/again contains itself"):
        cr.save({"x": 1, "loop": loop}, tmp_path / "c.npz")
    assert not os.listdir(tmp_path)
    shared = np.ones(2)
    cr.save([shared, shared, (shared,)], tmp_path / "c.npz")  # shared, not cyclic: fine
    _same([shared, shared, (shared,)], cr.load(tmp_path / "c.npz"))


def _v1_file(path, structure, arrays):
    """A file laid out as format version 1 wrote it: arrays named by their path."""
    np.savez(
        path,
        **{MARKER: np.array(1, dtype=np.int64), STRUCTURE: np.array(json.dumps(structure))},
        **arrays,
    )


def test_version_1_files_still_load_even_where_numpy_would_mix_up_members(tmp_path):
    a, b, c, d = np.arange(2.0), np.arange(3), np.ones((2, 2), np.float32), np.zeros(1)
    structure = {
        "dict": [
            ["w", {"array": "w"}],
            ["w.npy", {"tensor": "w.npy"}],
            [MARKER, {"array": "~" + MARKER}],
            ["a", {"dict": [["b", {"array": "a/b"}]]}],
            ["a/b", {"scalar": "a/b#1"}],
            [7, {"tuple": [1.5, None, "x"]}],
        ]
    }
    arrays = {"w": a, "w.npy": c, "~" + MARKER: b, "a/b": d, "a/b#1": np.array(4)}
    _v1_file(tmp_path / "old.npz", structure, arrays)
    back = cr.load(tmp_path / "old.npz")
    _same(
        {
            "w": a,
            "w.npy": cr.Tensor(c),
            MARKER: b,
            "a": {"b": d},
            "a/b": np.array(4)[()],
            7: (1.5, None, "x"),
        },
        back,
    )


# ---------------------------------------------------------------------------
# File modes and symbolic links.
# ---------------------------------------------------------------------------


@pytest.fixture
def umask():
    """Set the process umask for one test; the old one comes back after."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_checkpoint_gets_the_mode_open_gives_a_new_file(tmp_path, umask):
    for mask in (0o022, 0o002, 0o027, 0o077, 0o000):
        umask(mask)
        saved, opened = tmp_path / f"saved{mask:o}.npz", tmp_path / f"opened{mask:o}"
        cr.save({"w": np.ones(2)}, saved)
        with open(opened, "w"):
            pass
        assert _mode(saved) == _mode(opened) == 0o666 & ~mask, oct(mask)


def test_replacing_a_checkpoint_keeps_its_mode(tmp_path, umask):
    umask(0o077)  # a new file would be 0o600: the old mode must come from the old file
    for mode in (0o644, 0o640, 0o664, 0o600, 0o755, 0o444, 0o2750):
        path = tmp_path / f"c{mode:o}.npz"
        cr.save({"w": np.zeros(2)}, path)
        os.chmod(path, mode)
        cr.save({"w": np.ones(2)}, path)
        assert _mode(path) == mode, oct(mode)
        assert np.array_equal(cr.load(path)["w"], np.ones(2))
    assert all(not p.name.startswith(".") for p in tmp_path.iterdir())


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root can give a file away"
)
def test_replacing_a_checkpoint_keeps_its_owner_and_group(tmp_path):
    path = tmp_path / "c.npz"
    cr.save({"w": np.zeros(2)}, path)
    os.chown(path, 65534, 65533)
    os.chmod(path, 0o640)
    cr.save({"w": np.ones(2)}, path)
    st_ = os.stat(path)
    assert (st_.st_uid, st_.st_gid, stat.S_IMODE(st_.st_mode)) == (65534, 65533, 0o640)


def test_saving_through_a_symlink_replaces_its_target_atomically(tmp_path, umask, monkeypatch):
    real_dir, link_dir = tmp_path / "real", tmp_path / "links"
    real_dir.mkdir()
    link_dir.mkdir()
    real = real_dir / "c.npz"
    cr.save({"w": np.zeros(2)}, real)
    os.chmod(real, 0o640)
    link = link_dir / "c.npz"
    os.symlink(os.path.join("..", "real", "c.npz"), link)  # relative to the link's folder
    chain = tmp_path / "chain.npz"
    os.symlink(link, chain)  # a link to the link

    renames, synced = [], []
    real_replace, real_fsync = os.replace, os.fsync

    def replace(src, dst):
        renames.append((os.path.dirname(src), os.fspath(dst)))
        real_replace(src, dst)

    def fsync(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    for step, through in enumerate((link, chain), start=1):
        cr.save({"w": np.full(2, step)}, through)
        assert np.array_equal(cr.load(real)["w"], np.full(2, step))
        assert os.readlink(link) == os.path.join("..", "real", "c.npz")
        assert os.readlink(chain) == str(link)
        assert _mode(real) == 0o640
    # The temporary file was made next to the real file and renamed there; that folder synced.
    assert [os.path.realpath(src) for src, _ in renames] == [str(real_dir)] * 2
    assert [os.path.realpath(dst) for _, dst in renames] == [str(real)] * 2
    assert str(real_dir) in synced
    assert sorted(p.name for p in real_dir.iterdir()) == ["c.npz"]
    assert sorted(p.name for p in link_dir.iterdir()) == ["c.npz"]


def test_saving_through_a_dangling_symlink_creates_its_target(tmp_path, umask):
    umask(0o027)
    link = tmp_path / "link.npz"
    os.symlink("made.npz", link)
    cr.save({"w": np.ones(3)}, link)
    assert os.path.islink(link) and os.readlink(link) == "made.npz"
    assert _mode(tmp_path / "made.npz") == 0o640
    assert np.array_equal(cr.load(tmp_path / "made.npz")["w"], np.ones(3))


def test_saving_through_a_symlink_loop_fails_like_open(tmp_path):
    os.symlink("b.npz", tmp_path / "a.npz")
    os.symlink("a.npz", tmp_path / "b.npz")
    with pytest.raises(OSError) as opened, open(tmp_path / "a.npz", "w"):
        pass
    with pytest.raises(OSError) as saved:
        cr.save({"w": 1}, tmp_path / "a.npz")
    assert saved.value.errno == opened.value.errno == errno.ELOOP
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz"]
    assert all(p.is_symlink() for p in tmp_path.iterdir())


# ---------------------------------------------------------------------------
# Malformed files.
# ---------------------------------------------------------------------------


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=True)
    return buf.getvalue()


def _zip(members) -> bytes:
    """A zip of ``(name, bytes)`` members, written as given (duplicates included)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(buf, "w") as z:
            for name, data in members:
                z.writestr(name, data)
    return buf.getvalue()


def _v2(nodes, arrays=(), marker=FORMAT_VERSION, extra=()):
    """Members of a format 2 checkpoint with the given node list and arrays."""
    text = nodes if isinstance(nodes, str) else json.dumps(nodes)
    members = [(MARKER + ".npy", _npy(np.array(marker))), (STRUCTURE + ".npy", _npy(text))]
    members += [(f"{k}.npy", a if isinstance(a, bytes) else _npy(a)) for k, a in enumerate(arrays)]
    return _zip(members + list(extra))


def _patch_headers(data: bytes, local: int, central: int, fmt: str, value: int) -> bytes:
    """Overwrite a field at the given offsets of every local and central zip header."""
    out = bytearray(data)
    for sig, off in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        at = out.find(sig)
        while at >= 0:
            struct.pack_into(fmt, out, at + off, value)
            at = out.find(sig, at + 4)
    return bytes(out)


def _npy_with(changes, data: bytes) -> bytes:
    """An .npy file whose header is a float64 vector of 10 with ``changes``, then ``data``."""
    header = {"descr": "<f8", "fortran_order": False, "shape": (10,), **changes}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + data


ONE = [["array", 0], ["dict", [["w", 0]]]]  # {"w": <array 0>}
GOOD = _v2(ONE, [np.arange(3.0)])
NPY = _npy(np.arange(10.0))
BAD_HEADER = b"\x93NUMPY\x01\x00" + struct.pack("<H", 16) + b"{bad header!}  \n"

# (what is wrong, the file's bytes, fragments the message must contain)
MALFORMED = [
    ("not a zip", b"hello, world", ["not a chainrule checkpoint"]),
    ("empty file", b"", ["not a chainrule checkpoint"]),
    ("truncated", GOOD[: len(GOOD) // 2], ["truncated, corrupted"]),
    ("a single .npy", NPY, ["single numpy array"]),
    ("zip without the marker", _zip([("w.npy", NPY)]), [f"no {MARKER!r} entry"]),
    ("empty zip", _zip([]), [f"no {MARKER!r} entry"]),
    ("marker without .npy", _zip([(MARKER, _npy(np.array(2)))]), [f"no {MARKER!r} entry"]),
    ("float marker", _v2(ONE, [NPY], marker=2.0), ["should be one integer", "float64"]),
    ("str marker", _v2(ONE, [NPY], marker="2"), ["should be one integer", "<U1"]),
    ("bool marker", _v2(ONE, [NPY], marker=True), ["should be one integer", "bool"]),
    ("marker of shape (1,)", _v2(ONE, [NPY], marker=[2]), ["shape (1,)"]),
    ("object marker", _v2(ONE, [NPY], marker=np.array(2, dtype=object)), ["need pickle"]),
    ("version 0", _v2(ONE, [NPY], marker=0), ["format version 0 is invalid"]),
    ("negative version", _v2(ONE, [NPY], marker=-3), ["format version -3 is invalid"]),
    ("newer version", _v2(ONE, [NPY], marker=FORMAT_VERSION + 1), ["upgrade chainrule"]),
    (
        "marker not an array",
        _zip([(MARKER + ".npy", b"definitely not npy")]),
        [f"member {MARKER!r} cannot be read"],
    ),
    (
        "structure missing",
        _zip([(MARKER + ".npy", _npy(np.array(2))), ("0.npy", NPY)]),
        [f"{STRUCTURE!r} is missing"],
    ),
    (
        "int structure",
        _zip([(MARKER + ".npy", _npy(np.array(2))), (STRUCTURE + ".npy", _npy(np.array(5)))]),
        ["should be a single string", "int64"],
    ),
    (
        "bytes structure",
        _zip([(MARKER + ".npy", _npy(np.array(2))), (STRUCTURE + ".npy", _npy(np.array(b"[]")))]),
        ["should be a single string", "S2"],
    ),
    (
        "structure of shape (2,)",
        _zip([(MARKER + ".npy", _npy(np.array(2))), (STRUCTURE + ".npy", _npy(["[]", "[]"]))]),
        ["should be a single string", "shape (2,)"],
    ),
    ("invalid JSON", _v2("{not json"), ["not valid JSON"]),
    ("JSON nested too deeply", _v2("[" * 100_000 + "]" * 100_000), ["nested too deeply"]),
    ("structure a dict", _v2({"dict": []}), ["non-empty list of nodes"]),
    ("structure empty", _v2([]), ["non-empty list of nodes"]),
    ("structure a string", _v2('"x"'), ["non-empty list of nodes"]),
    ("node not a pair", _v2([["array"]]), ["node 0 is not a [kind, body] pair"]),
    ("node kind not a str", _v2([[1, 2]]), ["node 0 is not a [kind, body] pair"]),
    ("unknown kind", _v2([["set", []]]), ["node 0 has the unknown kind 'set'"]),
    ("value holding a list", _v2([["value", [1]]]), ["node 0 holds a list as a plain value"]),
    ("forward reference", _v2([["list", [1]], ["value", 1]]), ["refers to 1", "earlier node"]),
    ("self reference", _v2([["value", 1], ["list", [1]]]), ["node 1 refers to 1"]),
    ("bool reference", _v2([["value", 1], ["list", [True]]]), ["refers to True"]),
    ("float reference", _v2([["value", 1], ["tuple", [0.0]]]), ["refers to 0.0"]),
    ("node used twice", _v2([["value", 1], ["list", [0, 0]]]), ["node 0 is used twice"]),
    (
        "node used by two parents",
        _v2([["value", 1], ["list", [0]], ["list", [0]], ["list", [1, 2]]]),
        ["node 0 is used twice"],
    ),
    ("unused node", _v2([["value", 1], ["value", 2]]), ["nodes 0 are not part of"]),
    ("list body not a list", _v2([["list", 3]]), ["node 0 (list) does not list its items"]),
    ("dict item not a pair", _v2([["dict", [["a"]]]]), ["not a [key, node] pair"]),
    ("float key", _v2([["value", 1], ["dict", [[1.5, 0]]]]), ["key 1.5, not a str or int"]),
    ("bool key", _v2([["value", 1], ["dict", [[True, 0]]]]), ["key True, not a str or int"]),
    ("list key", _v2([["value", 1], ["dict", [[[1], 0]]]]), ["key [1], not a str or int"]),
    (
        "duplicate key",
        _v2([["value", 1], ["value", 2], ["dict", [["a", 0], ["a", 1]]]]),
        ["key 'a' twice"],
    ),
    ("array number a str", _v2([["array", "0"]], [NPY]), ["refers to '0', not an array number"]),
    ("negative array number", _v2([["array", -1]], [NPY]), ["refers to -1"]),
    (
        "array used twice",
        _v2([["array", 0], ["array", 0], ["list", [0, 1]]], [NPY]),
        ["array 0 is used twice"],
    ),
    ("array missing", _v2(ONE), ["'0.npy'", "missing"]),
    ("array numbered past the members", _v2([["array", 1]], [NPY]), ["'1.npy'", "missing"]),
    ("member without .npy", _v2(ONE, extra=[("0", NPY)]), ["'0.npy'", "missing"]),
    ("extra member", _v2(ONE, [NPY], extra=[("junk.npy", NPY)]), ["'junk.npy'", "not use"]),
    ("extra non-npy member", _v2(ONE, [NPY], extra=[("notes.txt", b"hi")]), ["'notes.txt'"]),
    ("two members of one name", _v2(ONE, [NPY], extra=[("0.npy", NPY)]), ["two members named"]),
    ("object array", _v2(ONE, [np.array([None, 1])]), ["member '0'", "object", "need pickle"]),
    (
        "record array",
        _v2(ONE, [np.zeros(2, dtype=[("a", "<f8")])]),
        ["member '0'", "save never writes"],
    ),
    (
        "datetime array",
        _v2(ONE, [np.array(["2020-01-01"], dtype="datetime64[D]")]),
        ["datetime64", "save never writes"],
    ),
    ("array data cut short", _v2(ONE, [NPY[:-16]]), ["holds 64 bytes", "describes 80"]),
    ("array data too long", _v2(ONE, [NPY + b"junk"]), ["more data than its header"]),
    ("array header garbage", _v2(ONE, [BAD_HEADER]), ["member '0' cannot be read"]),
    ("array header cut short", _v2(ONE, [NPY[:20]]), ["member '0' cannot be read"]),
    ("array not npy at all", _v2(ONE, [b"PK\x03\x04"]), ["member '0' cannot be read"]),
    (
        "npy version 3",
        _v2(ONE, [NPY[:6] + b"\x03\x00" + NPY[8:]]),
        ["member '0'", "version (3, 0)"],
    ),
    (
        "negative shape",
        _v2(ONE, [NPY.replace(b"(10,)", b"(-1,)")]),
        ["member '0' has the negative shape (-1,)"],
    ),
    (
        "huge shape",
        _v2(ONE, [_npy_with({"shape": (10**18,)}, NPY[-80:])]),
        ["member '0' holds 80 bytes", "describes 8000000000000000000"],
    ),
    ("Fortran flag not a bool", _v2(ONE, [_npy_with({"fortran_order": 1}, NPY[-80:])]), ["'0'"]),
    ("shape not a tuple", _v2(ONE, [_npy_with({"shape": [10]}, NPY[-80:])]), ["'0'"]),
    ("Tensor of strings", _v2([["tensor", 0]], [np.array(["a"])]), ["Tensor of dtype <U1"]),
    ("scalar of shape (10,)", _v2([["scalar", 0]], [NPY]), ["scalar, but", "shape (10,)"]),
    (
        "encrypted member",
        _patch_headers(GOOD, 6, 8, "<H", 1),
        ["member", "cannot be read", "encrypted"],
    ),
    (
        "unknown compression",
        _patch_headers(GOOD, 8, 10, "<H", 77),
        ["member", "cannot be read", "compression"],
    ),
]


def _v1(structure, arrays=None, extra=()):
    """A version 1 file's bytes: arrays as members named by their key, nesting as JSON."""
    text = structure if isinstance(structure, str) else json.dumps(structure)
    members = [
        (MARKER + ".npy", _npy(np.array(1))),
        (STRUCTURE + ".npy", _npy(text)),
    ]
    members += [
        (k + ".npy", a if isinstance(a, bytes) else _npy(a)) for k, a in (arrays or {}).items()
    ]
    return _zip(members + list(extra))


def _v1_nested(depth):
    node: object = {"array": "w"}
    for _ in range(depth):
        node = {"list": [node]}
    return node


MALFORMED += [
    ("v1 array missing", _v1({"array": "w"}), ["array 'w' it refers to is missing"]),
    ("v1 unknown entry", _v1({"set": [1]}), ["unreadable structure entry"]),
    ("v1 entry with two kinds", _v1({"list": [], "tuple": []}), ["unreadable structure entry"]),
    ("v1 array name not a str", _v1({"array": 3}), ["unreadable structure entry"]),
    ("v1 dict key a float", _v1({"dict": [[1.5, 1]]}), ["key 1.5, not a str or int"]),
    ("v1 dict item not a pair", _v1({"dict": [[1]]}), ["not a [key, value] pair"]),
    (
        "v1 array used twice",
        _v1({"list": [{"array": "w"}, {"array": "w"}]}, {"w": NPY}),
        ["uses the array 'w' twice"],
    ),
    ("v1 extra member", _v1({"array": "w"}, {"w": NPY, "v": NPY}), ["'v.npy'", "not use"]),
    (
        "v1 two members of one name",
        _v1({"array": "w"}, {"w": NPY}, extra=[("w.npy", NPY)]),
        ["two members named 'w.npy'"],
    ),
    ("v1 object array", _v1({"array": "w"}, {"w": np.array([{}])}), ["need pickle"]),
    (
        "v1 nested too deeply",
        _v1('{"list":[' * 3000 + '{"array":"w"}' + "]}" * 3000, {"w": NPY}),
        ["nested too deeply"],
    ),
]


@pytest.mark.parametrize(
    ("data", "fragments"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_each_malformed_file_gives_a_checkpoint_error_saying_what_is_wrong(
    tmp_path, data, fragments
):
    path = tmp_path / "bad.npz"
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as caught:
        cr.load(path)
    message = str(caught.value)
    assert message.startswith(f"load: {str(path)!r} ")
    for fragment in fragments:
        assert fragment in message


def test_the_hand_made_files_differ_from_good_ones_only_in_what_is_wrong(tmp_path):
    """The helpers above make loadable files when nothing is wrong."""
    path = tmp_path / "good.npz"
    for data, expected in [
        (GOOD, {"w": np.arange(3.0)}),
        (_v2(ONE, [np.zeros(2, dtype=">f8")]), {"w": np.zeros(2, dtype=">f8")}),
        (_v2(ONE, [np.asfortranarray(np.ones((2, 3)))]), {"w": np.ones((2, 3))}),
        (_v1({"array": "w"}, {"w": NPY}), np.arange(10.0)),
        (_v1(_v1_nested(50), {"w": NPY}), _wrapped(np.arange(10.0), 50)),
        (_npy_with({}, NPY[-80:]), None),
    ]:
        path.write_bytes(data)
        if expected is None:  # a bare .npy: the header helper makes valid ones
            _same(np.arange(10.0), np.load(path))
        else:
            _same(expected, cr.load(path))


def _wrapped(x, depth):
    for _ in range(depth):
        x = [x]
    return x


def _mutations(good: bytes, rng: np.random.Generator):
    """Damaged copies of ``good``: flipped bytes, random spans, cuts, insertions."""
    for _ in range(400):
        data = bytearray(good)
        how = rng.integers(4)
        at = int(rng.integers(len(data)))
        if how == 0:
            data[at] ^= 1 << int(rng.integers(8))
        elif how == 1:
            n = int(rng.integers(1, 16))
            data[at : at + n] = rng.integers(0, 256, size=n, dtype=np.uint8).tobytes()
        elif how == 2:
            del data[at:]
        else:
            data[at:at] = rng.integers(
                0, 256, size=int(rng.integers(1, 8)), dtype=np.uint8
            ).tobytes()
        yield bytes(data)


@pytest.mark.parametrize("version", [1, 2])
def test_randomly_damaged_files_load_or_give_a_checkpoint_error(tmp_path, version):
    rng = np.random.default_rng(version)
    path = tmp_path / "c.npz"
    obj = {"a": np.arange(6.0).reshape(2, 3), "b": [1, (2.5, "x")], "c": cr.Tensor([1.0])}
    if version == 2:
        cr.save(obj, path)
    else:
        _v1_file(
            path,
            {
                "dict": [
                    ["a", {"array": "a"}],
                    ["b", {"list": [1, {"tuple": [2.5, "x"]}]}],
                    ["c", {"tensor": "c"}],
                ]
            },
            {"a": obj["a"], "c": obj["c"].data},
        )
    good = path.read_bytes()
    errors = 0
    for data in _mutations(good, rng):
        path.write_bytes(data)
        try:
            back = cr.load(path)
        except CheckpointError:
            errors += 1
            continue
        # Whatever still loads holds the saved numbers: the zip's checksums guard the data.
        assert np.array_equal(back["a"], obj["a"])
        assert np.array_equal(back["c"].data, obj["c"].data)
    assert errors > 200  # the damage really reached the parts that matter


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=10,
)
nodes = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(["value", "list", "tuple", "dict", "array", "tensor", "scalar", "x"]),
            json_values,
        ).map(list),
        st.tuples(st.sampled_from(["list", "tuple"]), st.lists(st.integers(-1, 4), max_size=3)).map(
            list
        ),
        st.tuples(
            st.just("dict"),
            st.lists(st.tuples(json_values, st.integers(-1, 4)).map(list), max_size=3),
        ).map(list),
        st.tuples(st.sampled_from(["array", "tensor", "scalar"]), st.integers(-1, 2)).map(list),
        json_values,
    ),
    max_size=6,
)


@SETTINGS
@given(nodes, st.integers(0, 2))
def test_random_structures_load_or_give_a_checkpoint_error(structure, n_arrays):
    arrays = [np.array(1.5), np.arange(3), np.array("s")][:n_arrays]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "c.npz")
        with open(path, "wb") as f:
            f.write(_v2(structure, arrays))
        with contextlib.suppress(CheckpointError):
            cr.load(path)
