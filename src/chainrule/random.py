"""Random numbers for chainrule: one default generator, seedable.

Everything random in chainrule (parameter initialisation, dropout masks)
draws from a :class:`numpy.random.Generator`.  Functions that need one take a
``generator`` argument; when it is None they use the process-wide default
generator kept here, which :func:`manual_seed` resets.  Seeding it therefore
makes a whole run repeatable, and passing a generator explicitly keeps one
part of a program independent of the rest.

>>> import chainrule as cr
>>> _ = cr.manual_seed(0)
>>> a = cr.nn.Linear(3, 2).weight.data.copy()
>>> _ = cr.manual_seed(0)
>>> bool((cr.nn.Linear(3, 2).weight.data == a).all())
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

_DEFAULT: list[np.random.Generator] = [np.random.default_rng()]


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the default generator to a fresh one seeded with ``seed``, and return it."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"manual_seed: seed must be non-negative, got {seed}")
    _DEFAULT[0] = np.random.default_rng(int(seed))
    return _DEFAULT[0]


def default_generator() -> np.random.Generator:
    """The generator used when a function is given no ``generator``."""
    return _DEFAULT[0]


def resolve(generator: np.random.Generator | None, where: str) -> np.random.Generator:
    """``generator`` itself, or the default generator when it is None."""
    if generator is None:
        return _DEFAULT[0]
    if not isinstance(generator, np.random.Generator):
        raise TypeError(
            f"{where}: generator must be a numpy.random.Generator "
            f"(e.g. numpy.random.default_rng(0)), got {type(generator).__name__}"
        )
    return generator


def get_rng_state() -> dict[str, Any]:
    """The default generator's state: plain Python data, storable in a checkpoint."""
    return dict(_DEFAULT[0].bit_generator.state)


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the default generator to a state from :func:`get_rng_state`."""
    if not isinstance(state, dict) or "bit_generator" not in state:
        raise ValueError(
            "set_rng_state: expected a dict from get_rng_state() "
            f"(with a 'bit_generator' entry), got {type(state).__name__}"
        )
    name = state["bit_generator"]
    kind = getattr(np.random, str(name), None)
    if not (isinstance(kind, type) and issubclass(kind, np.random.BitGenerator)):
        raise ValueError(f"set_rng_state: unknown bit generator {name!r}")
    bits = kind()
    bits.state = state
    _DEFAULT[0] = np.random.Generator(bits)
