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

from .validation import check_int


def _word(key) -> int:
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return int(key) % 2**63
    return zlib.crc32(str(key).encode())


def derive(*keys, bits: int = 63) -> int:
    """A seed in ``[0, 2^bits)`` determined by ``keys`` (integers and strings): 63 bits for
    ``torch.Generator().manual_seed``, 32 for numpy's legacy ``RandomState``, 31 where a signed 32-bit integer is
    wanted; the low ``bits`` of the 63-bit seed.

    Examples:
        >>> derive(0, "oracle", bits=32) == derive(0, "oracle") % 2**32
        True
        >>> derive(0, "oracle", bits=64)
        Traceback (most recent call last):
        ...
        imperceptible.errors.ParameterError: bits: expected an integer in [1, 63], got 64
    """
    check_int("bits", bits, minimum=1, maximum=63, expected="an integer in [1, 63]")
    state = np.random.SeedSequence([_word(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31 | int(state[1]) >> 1) % 2**bits


__all__ = ["derive"]
