"""Checkpoints: saving and loading state dicts as numpy ``.npz`` files, without pickle.

:func:`save` takes a state dict, or any nesting of dicts, lists and tuples
whose leaves are numpy arrays, Tensors, numbers, strings, booleans or None
(so ``{"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch":
3}`` works), and writes one ``.npz`` archive:

* each array is a member of the archive, named by its path in the nesting
  (``hidden.weight``, or ``model/hidden.weight`` one level down), so the
  file can be read with plain ``numpy.load`` too;
* ``__chainrule_checkpoint__`` holds the format version, the marker
  :func:`load` looks for;
* ``__structure__`` holds the nesting as JSON text, with every array
  replaced by the name of its member.

Nothing is ever pickled, and :func:`load` reads with ``allow_pickle=False``,
so loading a file cannot run code.  Saving is atomic: the archive is written
to a temporary file in the same folder, flushed and synced to disk, then
renamed over the target, so a crash in the middle never leaves a truncated
checkpoint where a good one was.

>>> import os, tempfile
>>> import chainrule as cr
>>> model = cr.nn.Linear(2, 1)
>>> path = os.path.join(tempfile.mkdtemp(), "linear.npz")
>>> cr.save(model.state_dict(), path)
>>> state = cr.load(path)
>>> sorted(state), bool((state["weight"] == model.weight.data).all())
(['bias', 'weight'], True)
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["FORMAT_VERSION", "MARKER", "CheckpointError", "load", "save"]

#: Name of the archive member that marks a chainrule checkpoint and holds its version.
MARKER = "__chainrule_checkpoint__"
#: Name of the archive member holding the JSON description of the nesting.
STRUCTURE = "__structure__"
#: The format version this chainrule writes (and the newest it reads).
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file could not be read as a chainrule checkpoint; the message says why."""


# ---------------------------------------------------------------------------
# Saving.
# ---------------------------------------------------------------------------


def save(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` (a state dict or a nesting of them) to ``path`` atomically.

    Raises:
        TypeError: for a leaf that cannot be stored without pickle (an
            object array, a class instance, a dict key that is not a str or
            int), naming where it is.
    """
    arrays: dict[str, np.ndarray] = {}
    structure = _encode(obj, [], arrays)
    members: dict[str, np.ndarray] = {
        MARKER: np.array(FORMAT_VERSION, dtype=np.int64),
        STRUCTURE: np.array(json.dumps(structure, allow_nan=True)),
    }
    members.update(arrays)
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: the folder {folder!r} for {target!r} does not exist")
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix="." + os.path.basename(target) + ".", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **members)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _sync_folder(folder)


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


def _encode(obj: Any, path: list[str], arrays: dict[str, np.ndarray]) -> Any:
    """The JSON description of ``obj``; arrays go into ``arrays`` under unique member names."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int) and not isinstance(obj, bool):
        return obj
    if isinstance(obj, float):
        return obj
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(
                    f"save: dict keys must be str or int, got {type(k).__name__} {k!r} at "
                    f"{_where(path)}"
                )
            items.append([k, _encode(v, [*path, str(k)], arrays)])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, [*path, str(i)], arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, Tensor):
        return {"tensor": _store(obj.data, path, arrays)}
    if isinstance(obj, np.ndarray):
        return {"array": _store(obj, path, arrays)}
    if isinstance(obj, np.generic):
        return {"scalar": _store(np.asarray(obj), path, arrays)}
    raise TypeError(
        f"save: cannot store a {type(obj).__name__} at {_where(path)} without pickle; "
        "checkpoints hold arrays, Tensors, numbers, strings, booleans, None, and dicts, "
        "lists and tuples of them"
    )


def _store(arr: np.ndarray, path: list[str], arrays: dict[str, np.ndarray]) -> str:
    if arr.dtype.kind not in "biufcUS":
        raise TypeError(
            f"save: the array at {_where(path)} has dtype {arr.dtype}, which cannot be stored "
            "without pickle"
        )
    base = "/".join(path) or "array"
    if base.startswith("__"):  # names starting "__" belong to the format itself
        base = "~" + base
    key, n = base, 1
    while key in arrays:
        key = f"{base}#{n}"
        n += 1
    arrays[key] = arr
    return key


def _where(path: list[str]) -> str:
    return "/".join(path) if path else "the top level"


# ---------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> Any:
    """Read a checkpoint written by :func:`save` and rebuild the saved object.

    Arrays come back as numpy arrays (Tensors as Tensors), tuples as tuples,
    dicts with their keys and order.

    Raises:
        FileNotFoundError: if there is no file at ``path``.
        CheckpointError: if the file is truncated or corrupted, is not a
            chainrule checkpoint, or was written by a newer format version.
    """
    target = os.fspath(path)
    if not os.path.exists(target):
        raise FileNotFoundError(f"load: no checkpoint at {target!r}")
    try:
        members = _read_members(target)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, KeyError, OSError) as e:
        if isinstance(e, OSError) and e.errno is not None:
            raise  # a real I/O failure (permissions, a folder), not a bad file
        raise CheckpointError(
            f"load: {target!r} is truncated, corrupted or not a chainrule checkpoint "
            f"({type(e).__name__}: {e})"
        ) from e
    try:
        structure = json.loads(str(members.pop(STRUCTURE)[()]))
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise CheckpointError(
            f"load: {target!r} is corrupted: its structure is not valid ({e})"
        ) from e
    members.pop(MARKER)
    return _decode(structure, members, target)


def _read_members(target: str) -> dict[str, np.ndarray]:
    """Every member of the archive, read in full (so a bad checksum shows up here)."""
    archive = np.load(target, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CheckpointError(
            f"load: {target!r} is a single numpy array, not a chainrule checkpoint "
            f"(no {MARKER!r} entry)"
        )
    with archive:
        names = set(archive.files)
        if MARKER not in names:
            raise CheckpointError(
                f"load: {target!r} is an .npz archive but not a chainrule checkpoint "
                f"(no {MARKER!r} entry)"
            )
        # Only version 1 exists so far; later versions will branch on this.
        _version(archive[MARKER], target)
        if STRUCTURE not in names:
            raise CheckpointError(f"load: {target!r} is corrupted: its {STRUCTURE!r} is missing")
        return {name: archive[name] for name in archive.files}


def _version(marker: np.ndarray, target: str) -> int:
    if marker.shape != () or marker.dtype.kind not in "iu":
        raise CheckpointError(f"load: {target!r} has a malformed {MARKER!r} entry")
    version = int(marker)
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"load: {target!r} was written in checkpoint format version {version}, but this "
            f"chainrule reads versions up to {FORMAT_VERSION}; upgrade chainrule to load it"
        )
    if version < 1:
        raise CheckpointError(f"load: {target!r} has an invalid format version {version}")
    return version


def _decode(node: Any, members: dict[str, np.ndarray], target: str) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, dict) and len(node) == 1:
        ((kind, body),) = node.items()
        if kind == "dict":
            return {k: _decode(v, members, target) for k, v in body}
        if kind == "list":
            return [_decode(v, members, target) for v in body]
        if kind == "tuple":
            return tuple(_decode(v, members, target) for v in body)
        if kind in ("array", "tensor", "scalar"):
            if body not in members:
                raise CheckpointError(f"load: {target!r} is corrupted: member {body!r} is missing")
            arr = members[body]
            if kind == "tensor":
                return Tensor(arr)
            if kind == "scalar":
                return arr[()]
            return arr
    raise CheckpointError(f"load: {target!r} is corrupted: unreadable structure entry {node!r:.60}")
