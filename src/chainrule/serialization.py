"""Checkpoints: state dicts saved as ``.npz`` or ``.safetensors`` files, never with pickle.

The file's extension chooses the format: a path ending in ``.safetensors``
(in any case) is read and written in the safetensors format, any other path
as a numpy ``.npz`` archive.

.npz checkpoints
----------------

:func:`save` takes a state dict, or any nesting of dicts, lists and tuples
whose leaves are numpy arrays, Tensors, numbers, strings, booleans or None
(so ``{"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch":
3}`` works), and writes one ``.npz`` archive (format version 2):

* ``__chainrule_checkpoint__`` holds the format version, the marker
  :func:`load` looks for;
* ``__structure__`` holds the nesting as JSON text: a flat list of nodes,
  children before their parent and the whole object last, so no depth of
  nesting is too deep to read back.  A node is ``["value", x]`` for None, a
  bool, int, float or str; ``["dict", [[key, child], ...]]``, ``["list",
  [child, ...]]`` or ``["tuple", [child, ...]]`` with children given by
  their place in the list; ``["array", k]``, ``["tensor", k]`` or
  ``["scalar", k]`` for the k-th array;
* the arrays are the members ``0``, ``1``, ``2``, ... in the order they
  appear in the structure.  Member names are positions, never the user's
  keys, so no key (with dots, slashes, an ``.npy`` suffix, the name of a
  format member, any length) can clash with another; the keys live in the
  structure.  Plain ``numpy.load`` reads every array too.

Nothing is ever pickled, and :func:`load` reads every member with pickle
disallowed, so loading a file cannot run code; anything in the file that
:func:`save` could not have written raises :class:`CheckpointError`.  Files
in format version 1 (arrays named by their path in the nesting) still load.

Saving is atomic: the archive is written to a temporary file next to the
target, flushed and synced to disk, then renamed over the target, so a crash
in the middle never leaves a truncated checkpoint where a good one was.  A
file that is replaced keeps its permission bits; a new file gets the ones
the umask allows, as ``open(path, "w")`` would give it.  Saving to a symbolic
link replaces the file the link points to and leaves the link in place.

>>> import os, tempfile
>>> import chainrule as cr
>>> model = cr.nn.Linear(2, 1)
>>> path = os.path.join(tempfile.mkdtemp(), "linear.npz")
>>> cr.save(model.state_dict(), path)
>>> state = cr.load(path)
>>> sorted(state), bool((state["weight"] == model.weight.data).all())
(['bias', 'weight'], True)

.safetensors files
------------------
The safetensors format (a JSON header naming each tensor's dtype, shape
and byte range, then the raw little-endian bytes) is what PyTorch users
share weights in.  It holds one flat mapping from names to arrays, so
:func:`save` takes a state dict there: str keys, numpy arrays or Tensors of
bool, integer or float16/32/64 dtype; :func:`load` gives back a dict of
numpy arrays.  The format sorts tensors its own way, so :func:`save` also
records the dict's key order as JSON text in the header's metadata
(``"chainrule.order"``), and :func:`load` restores it.  A chainrule
module's state dict already uses PyTorch's names (``0.weight``,
``hidden.bias``) and layout (a Linear weight is ``(out_features,
in_features)``), so the file loads into the equivalent ``torch.nn`` model
with ``load_state_dict``, and a file saved from PyTorch loads into the
chainrule model (with matching dtypes: PyTorch defaults to float32,
chainrule to float64).  Reading and writing go through the ``safetensors``
package's numpy functions (``pip install 'chainrule[safetensors]'``); the
format has no place for code, and saving is atomic as above.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, NoReturn

import numpy as np

from .tensor import Tensor

__all__ = ["FORMAT_VERSION", "MARKER", "SAFETENSORS_SUFFIX", "CheckpointError", "load", "save"]

#: Name of the archive member that marks a chainrule checkpoint and holds its version.
MARKER = "__chainrule_checkpoint__"
#: Name of the archive member holding the JSON description of the nesting.
STRUCTURE = "__structure__"
#: The format version this chainrule writes (and the newest it reads).
FORMAT_VERSION = 2

# Array dtypes a checkpoint holds: booleans, integers, floats, complex numbers
# and fixed-width strings.  Everything else would need pickle (objects) or is
# never written by ``save`` (records, datetimes).
_KINDS = "biufcUS"
_LINK_HOPS = 40  # as many symbolic links as Linux follows before giving up (ELOOP)
_CHUNK = 1 << 20  # bytes read from a member at a time

#: The file extension that selects the safetensors format (compared without case).
SAFETENSORS_SUFFIX = ".safetensors"
# The safetensors dtype names numpy has a type for.  (BF16 and the 8-bit
# floats have none; complex numbers are not in every safetensors release.)
_ST_DTYPES = {
    "BOOL": "?",
    "U8": "u1",
    "I8": "i1",
    "U16": "<u2",
    "I16": "<i2",
    "U32": "<u4",
    "I32": "<i4",
    "U64": "<u8",
    "I64": "<i8",
    "F16": "<f2",
    "F32": "<f4",
    "F64": "<f8",
}
_ST_KINDS = {np.dtype(code).newbyteorder("=") for code in _ST_DTYPES.values()}
# The header metadata entry in which save records the order of the state dict's keys.
_ST_ORDER = "chainrule.order"


class CheckpointError(ValueError):
    """A file could not be read as a chainrule checkpoint; the message says why."""


# ---------------------------------------------------------------------------
# Saving.
# ---------------------------------------------------------------------------


def save(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` (a state dict or a nesting of them) to ``path`` atomically.

    A file already at ``path`` keeps its permission bits (and, where the
    system allows, its owner and group); a new file gets ``0o666`` less the
    umask.  If ``path`` is a symbolic link, the file it points to is replaced.

    A path ending in ``.safetensors`` writes that format, which holds one
    flat dict of arrays: ``obj`` must then be a state dict (str keys; numpy
    arrays or Tensors of a bool, integer or float16/32/64 dtype).

    Raises:
        TypeError: for a leaf that cannot be stored without pickle (an
            object array, a class instance, a dict key that is not a str or
            int), naming where it is; for ``.safetensors``, for anything but
            a flat dict of such arrays.
        ValueError: for a dict, list or tuple that contains itself; for
            ``.safetensors``, for a key the format cannot hold (``__metadata__``,
            or text that is not valid UTF-8).
        FileNotFoundError: if the folder to write in does not exist.
        ImportError: for ``.safetensors`` when the safetensors package is
            not installed.
    """
    given = os.fspath(path)
    if _is_safetensors(given):
        # Encoded in full before any file is touched: a refused state dict leaves none behind.
        data = _safetensors_bytes(obj)
        _write_atomically(given, lambda f: f.write(data))
        return
    nodes, arrays = _encode(obj)
    members: dict[str, np.ndarray] = {
        MARKER: np.array(FORMAT_VERSION, dtype=np.int64),
        # ensure_ascii: every key, even one with lone surrogates, is plain ASCII text here.
        STRUCTURE: np.array(json.dumps(nodes, allow_nan=True, separators=(",", ":"))),
    }
    members.update((str(k), arr) for k, arr in enumerate(arrays))
    _write_atomically(given, lambda f: np.savez(f, **members))  # type: ignore[arg-type]


def _write_atomically(given: str, write: Callable[[IO[bytes]], Any]) -> None:
    """Have ``write`` fill a temporary file next to ``given``'s target, then rename it over."""
    target = _follow_links(given)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: the folder {folder!r} for {given!r} does not exist")
    fd, tmp = _create_temp(folder, os.path.basename(target), target)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _sync_folder(folder)


def _follow_links(path: str) -> str:
    """The file that writing to ``path`` writes to: its last component's links followed.

    Folders along the way may be links too; the rename resolves those itself.
    """
    for _ in range(_LINK_HOPS):
        if not os.path.islink(path):
            return path
        # A relative link is relative to the folder holding the link.
        path = os.path.join(os.path.dirname(path), os.readlink(path))
    raise OSError(errno.ELOOP, "save: too many levels of symbolic links", path)


def _create_temp(folder: str, name: str, target: str) -> tuple[int, str]:
    """Open a new hidden file in ``folder`` for the archive, with the mode ``target`` will need.

    Replacing a file: created private (0o600), then given that file's owner
    and permission bits before anything is written.  A new file: created
    with 0o666, which the system reduces by the umask (and a folder's default
    ACL) exactly as for any new file.
    """
    try:
        old: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        old = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o600 if old is not None else 0o666)
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(f"save: no free temporary file name in {folder!r}")
    if old is not None:
        try:
            _match(fd, tmp, old)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
    return fd, tmp


def _match(fd: int, tmp: str, old: os.stat_result) -> None:
    """Give the open file ``fd`` (named ``tmp``) the owner, group and permission bits of ``old``."""
    new = os.fstat(fd)
    if hasattr(os, "fchown") and (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid):
        # Only root may give a file away; an owner may still set a group it belongs to.
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except PermissionError:
            with contextlib.suppress(PermissionError):
                os.fchown(fd, -1, old.st_gid)
    # After the chown, which clears set-id bits.
    os.chmod(fd if os.chmod in os.supports_fd else tmp, stat.S_IMODE(old.st_mode))


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable (where the system lets a folder be synced)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Open:
    """A dict, list or tuple being encoded: its keys, its values, its children's nodes so far."""

    __slots__ = ("children", "container", "keys", "values")

    def __init__(self, container: Any, keys: list[Any] | None, values: list[Any]) -> None:
        self.container = container
        self.keys = keys
        self.values = values
        self.children: list[int] = []

    def key(self) -> Any:
        """The key (or index) of the child being encoded."""
        i = len(self.children)
        return self.keys[i] if self.keys is not None else i


def _encode(obj: Any) -> tuple[list[Any], list[np.ndarray]]:
    """The structure's node list for ``obj`` (children first, ``obj`` last) and its arrays.

    Walks the nesting with an explicit stack rather than recursion, so any
    depth saves (and, the list being flat, loads) without hitting Python's
    recursion limit.
    """
    nodes: list[Any] = []
    arrays: list[np.ndarray] = []
    stack: list[_Open] = []
    on_stack: set[int] = set()  # ids of the containers in ``stack``: meeting one again is a cycle

    def where() -> str:
        return "/".join(str(s.key()) for s in stack) if stack else "the top level"

    def visit(x: Any) -> int | None:
        """Add the node of a leaf and return its index; push a container and return None."""
        if isinstance(x, (dict, list, tuple)):
            if id(x) in on_stack:
                raise ValueError(f"save: the {type(x).__name__} at {where()} contains itself")
            if isinstance(x, dict):
                for k in x:
                    if isinstance(k, bool) or not isinstance(k, (str, int)):
                        raise TypeError(
                            f"save: dict keys must be str or int, got {type(k).__name__} "
                            f"{k!r} at {where()}"
                        )
                stack.append(_Open(x, list(x.keys()), list(x.values())))
            else:
                stack.append(_Open(x, None, list(x)))
            on_stack.add(id(x))
            return None
        if isinstance(x, Tensor):
            kind, arr = "tensor", x.data
        elif isinstance(x, np.ndarray):
            kind, arr = "array", x
        elif isinstance(x, np.generic) and not isinstance(x, str):
            # Before the float test: np.float64 is a float, and would come back a plain one.
            kind, arr = "scalar", np.asarray(x)
        elif x is None or isinstance(x, (bool, int, float, str)):
            nodes.append(["value", x])
            return len(nodes) - 1
        else:
            raise TypeError(
                f"save: cannot store a {type(x).__name__} at {where()} without pickle; "
                "checkpoints hold arrays, Tensors, numbers, strings, booleans, None, and dicts, "
                "lists and tuples of them"
            )
        if arr.dtype.kind not in _KINDS:
            raise TypeError(
                f"save: the array at {where()} has dtype {arr.dtype}, which cannot be stored "
                "without pickle"
            )
        arrays.append(arr)
        nodes.append([kind, len(arrays) - 1])
        return len(nodes) - 1

    done = visit(obj)
    while stack:
        top = stack[-1]
        if len(top.children) < len(top.values):
            child = visit(top.values[len(top.children)])
            if child is not None:
                top.children.append(child)
            continue
        stack.pop()
        on_stack.discard(id(top.container))
        if top.keys is not None:
            nodes.append(["dict", [[k, c] for k, c in zip(top.keys, top.children)]])
        else:
            nodes.append(["list" if isinstance(top.container, list) else "tuple", top.children])
        done = len(nodes) - 1
        if stack:
            stack[-1].children.append(done)
    assert done is not None
    return nodes, arrays


# ---------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> Any:
    """Read a checkpoint written by :func:`save` and rebuild the saved object.

    Arrays come back as numpy arrays (Tensors as Tensors, numpy scalars as
    numpy scalars), tuples as tuples, dicts with their keys and order.  A
    path ending in ``.safetensors`` is read as that format (from chainrule,
    PyTorch or anything else that writes it) and gives a dict of numpy
    arrays, in the order they were saved when chainrule saved them (else in
    the order the safetensors package reads them).  No file, whatever it
    holds, is ever unpickled.

    Raises:
        FileNotFoundError: if there is no file at ``path``.
        CheckpointError: if the file is truncated or corrupted, is not a
            chainrule checkpoint (or not a safetensors file), holds anything
            :func:`save` would not have written (for safetensors: a dtype
            numpy has no type for, such as BF16), or was written by a newer
            format version.
        ImportError: for ``.safetensors`` when the safetensors package is
            not installed.
    """
    target = os.fspath(path)
    if not os.path.exists(target):
        raise FileNotFoundError(f"load: no checkpoint at {target!r}")
    if _is_safetensors(target):
        return _load_safetensors(target)
    with open(target, "rb") as fh:
        head = fh.read(16)
        if head.startswith(b"\x93NUMPY"):
            raise CheckpointError(
                f"load: {target!r} is a single numpy array, not a chainrule checkpoint "
                f"(no {MARKER!r} entry)"
            )
        fh.seek(0)
        what = "is truncated, corrupted or not a chainrule checkpoint"
        if _looks_like_safetensors(head):
            what += f" (it starts like a safetensors file: name it *{SAFETENSORS_SUFFIX})"
        with _reading(target, what):
            archive = zipfile.ZipFile(fh)
        with archive:
            return _Reader(archive, target, os.fstat(fh.fileno()).st_size).load()


@contextlib.contextmanager
def _reading(target: str, what: str) -> Iterator[None]:
    """Turn whatever a damaged zip or ``.npy`` makes the readers raise into a CheckpointError.

    Errors of the disk itself (an OSError such as EIO) pass through; an
    OSError from seeking to an offset the file's own bytes give (EINVAL) is
    damage.
    """
    try:
        yield
    except CheckpointError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        struct.error,
        EOFError,
        ValueError,  # also UnicodeDecodeError, and numpy's header errors
        KeyError,
        OverflowError,
        NotImplementedError,  # a compression method zipfile lacks
        RuntimeError,  # an encrypted member
        OSError,
    ) as e:
        if isinstance(e, OSError) and e.errno not in (None, errno.EINVAL, errno.EOVERFLOW):
            raise
        raise CheckpointError(f"load: {target!r} {what} ({type(e).__name__}: {e})") from e


class _Reader:
    """Reads one open archive as a checkpoint, checking each part as it goes."""

    def __init__(self, archive: zipfile.ZipFile, target: str, size: int) -> None:
        self.archive = archive
        self.target = target
        self.size = size  # of the whole file, in bytes

    def fail(self, why: str) -> NoReturn:
        raise CheckpointError(f"load: {self.target!r} is corrupted: {why}")

    def load(self) -> Any:
        with _reading(self.target, "is truncated, corrupted or not a chainrule checkpoint"):
            names = self.archive.namelist()
        seen: set[str] = set()
        for name in names:
            if name in seen:
                self.fail(f"it holds two members named {name!r}, so which one is meant is unclear")
            seen.add(name)
        if MARKER + ".npy" not in seen:
            raise CheckpointError(
                f"load: {self.target!r} is a zip archive but not a chainrule checkpoint "
                f"(no {MARKER!r} entry)"
            )
        version = self.version(self.member(MARKER))
        if STRUCTURE + ".npy" not in seen:
            self.fail(f"its {STRUCTURE!r} is missing")
        text = self.member(STRUCTURE)
        if text.shape != () or text.dtype.kind != "U":
            self.fail(
                f"its {STRUCTURE!r} should be a single string, got a {text.dtype} array of "
                f"shape {text.shape}"
            )
        try:
            structure = json.loads(str(text[()]))
        except RecursionError:
            self.fail(f"its {STRUCTURE!r} is nested too deeply to be one save wrote")
        except ValueError as e:
            self.fail(f"its {STRUCTURE!r} is not valid JSON ({e})")
        arrays = sorted(seen - {MARKER + ".npy", STRUCTURE + ".npy"})
        if version == 1:
            return self.decode_v1(structure, arrays)
        return self.decode_v2(structure, arrays)

    # -- members ----------------------------------------------------------

    def member(self, name: str) -> np.ndarray:
        """The array stored as ``name + ".npy"``, read without pickle and checked in full."""
        what = f"is corrupted: its member {name!r} cannot be read"
        with _reading(self.target, what), self.archive.open(name + ".npy") as f:
            info = self.archive.getinfo(name + ".npy")
            # An uncompressed member's bytes are all in the file: that many
            # bytes can be set aside at once without trusting the header.
            stored = info.compress_type == zipfile.ZIP_STORED
            fits = info.header_offset + info.compress_size <= self.size
            return self.read_npy(f, name, info.compress_size if stored and fits else 0)

    def read_npy(self, f: IO[bytes], name: str, room: int) -> np.ndarray:
        """The array in the open ``.npy`` member ``f``; ``room`` bytes may be allocated at once."""
        fmt = np.lib.format
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            self.fail(f"its member {name!r} is in .npy version {version}, which save never writes")
        if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
            why = "would need pickle to read" if dtype.hasobject else "save never writes"
            self.fail(f"its member {name!r} has dtype {dtype}, which {why}")
        if any(n < 0 for n in shape):
            self.fail(f"its member {name!r} has the negative shape {shape}")
        count = math.prod(shape)
        size = count * dtype.itemsize
        # An uncompressed member that fits in the file is read straight into an
        # array (uninitialised, like numpy's own reader).  Anything else is read
        # as it comes rather than allocated as the header claims: a damaged
        # header cannot ask for more memory than the data holds.
        out: np.ndarray | bytearray = np.empty(size, np.uint8) if size <= room else bytearray()
        got = 0
        while got < size:
            chunk = f.read(min(size - got, _CHUNK))
            if not chunk:
                self.fail(
                    f"its member {name!r} holds {got} bytes of data, but its header "
                    f"describes {size} ({dtype} of shape {shape})"
                )
            if isinstance(out, bytearray):
                out += chunk
            else:
                out[got : got + len(chunk)] = np.frombuffer(chunk, np.uint8)
            got += len(chunk)
        if f.read(1):  # also where zipfile checks the member's CRC
            self.fail(f"its member {name!r} holds more data than its header describes")
        if not dtype.itemsize:
            arr = np.zeros(count, dtype)
        elif isinstance(out, bytearray):
            arr = np.frombuffer(out, dtype=dtype)  # no copy, and writable over a bytearray
        else:
            arr = out.view(dtype)
        if fortran:
            return arr.reshape(shape[::-1]).transpose()
        return arr.reshape(shape)

    def version(self, marker: np.ndarray) -> int:
        if marker.shape != () or marker.dtype.kind not in "iu":
            self.fail(
                f"its {MARKER!r} should be one integer, got a {marker.dtype} array of shape "
                f"{marker.shape}"
            )
        version = int(marker)
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"load: {self.target!r} was written in checkpoint format version {version}, but "
                f"this chainrule reads versions up to {FORMAT_VERSION}; upgrade chainrule to "
                "load it"
            )
        if version < 1:
            self.fail(f"its format version {version} is invalid")
        return version

    def check_members(self, used: list[str], present: list[str]) -> None:
        """Every member the structure names is there, and no other."""
        missing = sorted(set(used) - set(present))
        if missing:
            self.fail(f"the arrays {_few(missing)} it refers to are missing")
        extra = sorted(set(present) - set(used))
        if extra:
            self.fail(f"it holds members {_few(extra)} that its structure does not use")

    # -- version 2: a flat list of nodes -------------------------------------

    def decode_v2(self, nodes: Any, present: list[str]) -> Any:
        """Check the node list is a tree save could have written, then build it."""
        if not isinstance(nodes, list) or not nodes:
            self.fail(f"its {STRUCTURE!r} should be a non-empty list of nodes")
        used_node = [False] * len(nodes)
        refs: dict[int, tuple[int, str]] = {}  # array number -> (its node, the node's kind)

        def child(c: Any, i: int) -> None:
            if type(c) is not int or not 0 <= c < i:
                self.fail(f"node {i} refers to {c!r}, which is not an earlier node")
            if used_node[c]:
                self.fail(f"node {c} is used twice (again by node {i})")
            used_node[c] = True

        for i, node in enumerate(nodes):
            if not (isinstance(node, list) and len(node) == 2 and isinstance(node[0], str)):
                self.fail(f"node {i} is not a [kind, body] pair: {node!r:.60}")
            kind, body = node
            if kind == "value":
                if isinstance(body, (list, dict)):
                    self.fail(f"node {i} holds a {type(body).__name__} as a plain value")
            elif kind in ("list", "tuple", "dict"):
                if not isinstance(body, list):
                    self.fail(f"node {i} ({kind}) does not list its items")
                if kind != "dict":
                    for c in body:
                        child(c, i)
                    continue
                keys: set[Any] = set()
                for item in body:
                    if not (isinstance(item, list) and len(item) == 2):
                        self.fail(f"node {i} (dict) has an item that is not a [key, node] pair")
                    key, c = item
                    if isinstance(key, bool) or not isinstance(key, (str, int)):
                        self.fail(f"node {i} (dict) has the key {key!r:.60}, not a str or int")
                    if key in keys:
                        self.fail(f"node {i} (dict) has the key {key!r:.60} twice")
                    keys.add(key)
                    child(c, i)
            elif kind in ("array", "tensor", "scalar"):
                if type(body) is not int or body < 0:
                    self.fail(f"node {i} ({kind}) refers to {body!r:.60}, not an array number")
                if body in refs:
                    self.fail(f"array {body} is used twice (by nodes {refs[body][0]} and {i})")
                refs[body] = (i, kind)
            else:
                self.fail(f"node {i} has the unknown kind {kind!r:.60}")
        unused = [i for i, u in enumerate(used_node[:-1]) if not u]
        if unused:
            self.fail(f"nodes {_few(unused)} are not part of the saved object")
        self.check_members([f"{k}.npy" for k in refs], present)
        arrays = {k: self.leaf(kind, self.member(str(k)), i) for k, (i, kind) in refs.items()}
        built: list[Any] = []
        for kind, body in nodes:
            if kind == "value":
                built.append(body)
            elif kind == "list":
                built.append([built[c] for c in body])
            elif kind == "tuple":
                built.append(tuple(built[c] for c in body))
            elif kind == "dict":
                built.append({k: built[c] for k, c in body})
            else:
                built.append(arrays[body])
        return built[-1]

    def leaf(self, kind: str, arr: np.ndarray, node: Any) -> Any:
        """What an array node stands for: the array, a Tensor of it, or its one element."""
        if kind == "tensor":
            if arr.dtype.kind not in "biuf":
                self.fail(f"node {node} is a Tensor of dtype {arr.dtype}; Tensors hold numbers")
            return Tensor(arr)
        if kind == "scalar":
            if arr.shape != ():
                self.fail(f"node {node} is a scalar, but its array has shape {arr.shape}")
            return arr[()]
        return arr

    # -- version 1: nested JSON, arrays named by their path --------------------

    def decode_v1(self, structure: Any, present: list[str]) -> Any:
        """Read a version 1 structure: nested nodes; an array node holds its member's name.

        Version 1 wrote each array as the member ``name + ".npy"``.  Reading the
        archive by those exact member names (not through numpy's lookup, which
        also tries ``name`` itself as a member) finds every array, even for keys
        ending in ``.npy``.
        """
        used: dict[str, None] = {}  # member names in the order met

        def walk(node: Any) -> Any:
            if node is None or isinstance(node, (bool, int, float, str)):
                return node
            if isinstance(node, dict) and len(node) == 1:
                ((kind, body),) = node.items()
                if kind == "dict" and isinstance(body, list):
                    out: dict[Any, Any] = {}
                    for item in body:
                        if not (isinstance(item, list) and len(item) == 2):
                            self.fail("a dict has an item that is not a [key, value] pair")
                        key, value = item
                        if isinstance(key, bool) or not isinstance(key, (str, int)):
                            self.fail(f"a dict has the key {key!r:.60}, not a str or int")
                        out[key] = walk(value)
                    return out
                if kind in ("list", "tuple") and isinstance(body, list):
                    items = [walk(v) for v in body]
                    return items if kind == "list" else tuple(items)
                if kind in ("array", "tensor", "scalar") and isinstance(body, str):
                    name = body + ".npy"
                    if name not in present:
                        self.fail(f"the array {body!r:.60} it refers to is missing")
                    if name in used:
                        self.fail(f"its structure uses the array {body!r:.60} twice")
                    used[name] = None
                    return self.leaf(kind, self.member(body), repr(body))
            self.fail(f"unreadable structure entry {node!r:.60}")

        try:
            obj = walk(structure)
        except RecursionError:
            self.fail(f"its {STRUCTURE!r} is nested too deeply to read")
        self.check_members(list(used), present)
        return obj


# ---------------------------------------------------------------------------
# safetensors.
# ---------------------------------------------------------------------------


def _is_safetensors(path: str) -> bool:
    return path.lower().endswith(SAFETENSORS_SUFFIX)


def _looks_like_safetensors(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) opens as a safetensors file does.

    The format starts with the header's length (8 bytes, little-endian), then
    the header, a JSON object.
    """
    return len(head) > 8 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") < 1 << 32


def _safetensors_package(owner: str) -> Any:
    """The ``safetensors`` package, or an ImportError that says how to install it."""
    try:
        # Imported when first needed: it is an optional dependency.
        import safetensors
        import safetensors.numpy
    except ImportError as e:
        raise ImportError(
            f"{owner}: reading and writing .safetensors files needs the safetensors package; "
            "install it with: pip install 'chainrule[safetensors]'"
        ) from e
    return safetensors


def _safetensors_bytes(obj: Any) -> bytes:
    """The whole safetensors file for the state dict ``obj``, checked before anything is written."""
    if not isinstance(obj, Mapping):
        raise TypeError(
            f"save: a .safetensors file holds one flat dict of arrays (a state dict), got a "
            f"{type(obj).__name__}; save nested checkpoints as .npz"
        )
    arrays: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise TypeError(
                f"save: the keys of a .safetensors file are str, got {type(key).__name__} {key!r}"
            )
        if key == "__metadata__":
            raise ValueError(
                "save: '__metadata__' names the header's metadata in a .safetensors file, so it "
                "cannot name an array there; save it as .npz or rename it"
            )
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"save: the key {key!r} is not valid text (a lone surrogate), and a "
                ".safetensors header is UTF-8; save it as .npz or rename it"
            ) from None
        arr = value.data if isinstance(value, Tensor) else value
        if not isinstance(arr, np.ndarray):
            raise TypeError(
                f"save: a .safetensors file holds only arrays, but {key!r} is a "
                f"{type(value).__name__}; save nested checkpoints or other values as .npz"
            )
        if arr.dtype.newbyteorder("=") not in _ST_KINDS:
            raise TypeError(
                f"save: {key!r} has dtype {arr.dtype}, which the safetensors format cannot "
                "hold here (it takes bool, integers and float16/32/64); save it as .npz"
            )
        # The library copies the array's memory as it lies: give it C order.
        arrays[key] = arr if arr.flags.c_contiguous else np.array(arr, order="C")
    st = _safetensors_package("save")
    # The format stores tensors sorted its own way; the header's free-text
    # metadata keeps the dict's order, so that load gives it back.
    order = json.dumps(list(arrays), separators=(",", ":"))
    return bytes(st.numpy.save(arrays, metadata={_ST_ORDER: order}))


def _load_safetensors(target: str) -> dict[str, np.ndarray]:
    """Read the safetensors file ``target`` as a dict of (writable, native-order) numpy arrays."""
    st = _safetensors_package("load")
    with open(target, "rb") as fh:
        data = fh.read()
    try:
        # The library checks the header against the bytes: every range within
        # the file, none overlapping, the whole file covered, shapes matching
        # the dtypes' sizes.
        views = st.deserialize(data)
    except getattr(st, "SafetensorError", Exception) as e:
        hint = ""
        if _looks_like_safetensors(data[:16]):
            pass  # a damaged safetensors file: the library's message says what is wrong
        elif data[:2] == b"PK":
            hint = " It is a zip archive (such as a .npz checkpoint or a torch.save file)."
        elif data[:1] == b"\x80":
            hint = " It looks like a pickle, which chainrule never loads."
        raise CheckpointError(
            f"load: {target!r} is truncated, corrupted or not a safetensors file ({e}).{hint}"
        ) from e
    out: dict[str, np.ndarray] = {}
    for name, view in sorted(views, key=_file_order(data, [name for name, _ in views])):
        code = _ST_DTYPES.get(view["dtype"])
        if code is None:
            raise CheckpointError(
                f"load: {target!r} holds {name!r} as {view['dtype']}, a dtype numpy has no "
                f"type for (it reads {', '.join(_ST_DTYPES)})"
            )
        dtype = np.dtype(code)
        flat = np.frombuffer(view["data"], dtype=dtype)
        # A copy in native byte order: writable, and independent of the file's bytes.
        out[name] = flat.astype(dtype.newbyteorder("=")).reshape(view["shape"])
    return out


def _file_order(data: bytes, names: list[str]) -> Callable[[tuple[str, Any]], int]:
    """A sort key giving the order a chainrule save recorded in the header, if it did.

    Files from elsewhere, or whose recorded order does not list exactly their
    tensors, keep the order the library reads them in.
    """
    keep = {name: i for i, name in enumerate(names)}
    try:
        size = int.from_bytes(data[:8], "little")
        recorded = json.loads(json.loads(data[8 : 8 + size])["__metadata__"][_ST_ORDER])
    except (ValueError, KeyError, TypeError):
        recorded = None
    if (
        isinstance(recorded, list)
        and all(isinstance(name, str) for name in recorded)
        and sorted(recorded) == sorted(names)
    ):
        keep = {name: i for i, name in enumerate(recorded)}
    return lambda item: keep[item[0]]


def _few(items: list[Any]) -> str:
    """A short listing of ``items`` for a message."""
    shown = ", ".join(repr(x) for x in items[:5])
    return shown + (f" and {len(items) - 5} more" if len(items) > 5 else "")
