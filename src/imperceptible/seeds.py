"""One way to derive seeds: every seed the library makes from another (a replicate's world, a stage's draws, a
sample's noise) comes from :func:`derive`, on ``numpy.random.SeedSequence``, so that two derived streams never
collide by an arithmetic accident (``seed * 1000 + r`` meets ``seed' * 1000 + r'``).

Examples:
    >>> from imperceptible.seeds import derive
    >>> derive(0, "world", 1) == derive(0, "world", 1), derive(0, "world", 1) == derive(0, "world", 2)
    (True, False)
"""

from __future__ import annotations

import zlib

import numpy as np


def _word(key) -> int:
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return int(key) % 2**63
    return zlib.crc32(str(key).encode())


def derive(*keys) -> int:
    """A seed in ``[0, 2^63)`` determined by ``keys`` (integers and strings), for ``torch.Generator().manual_seed``
    or ``numpy.random.RandomState`` (which takes the low 32 bits: use :func:`derive32`)."""
    state = np.random.SeedSequence([_word(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31 | int(state[1]) >> 1) % 2**63


def derive32(*keys) -> int:
    """:func:`derive` in ``[0, 2^32)`` (numpy's legacy ``RandomState``)."""
    return derive(*keys) % 2**32


__all__ = ["derive", "derive32"]
