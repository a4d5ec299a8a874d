"""Deterministic, stateless pseudo-randomness: every generated value is a pure
function of (seed, stream, index, salt), so any row can be rebuilt on demand
without keeping the world in memory (splitmix64 finaliser, no global RNG)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
_MASK = (1 << 64) - 1
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def mix(x: int) -> int:
    """splitmix64 finaliser: a fast 64-bit avalanche."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def h64(seed: int, stream: int, index: int, salt: int = 0) -> int:
    # One finaliser over a linear combination with distinct odd multipliers:
    # rows are built from dozens of these, so speed matters (1M-row scenarios).
    return mix(
        (
            seed * 0xA24BAED4963EE407
            + stream * 0x9FB21C651E98DF25
            + index * 0xD1B54A32D192ED03
            + salt * 0x8CB92BA72F3D8DD7
        )
        & _MASK
    )


def hasher(seed: int, stream: int) -> Callable[[int, int], int]:
    """`h64(seed, stream, index, salt)` as a function of (index, salt): the same values, with the
    constant part summed once and the finaliser inlined (a 1,000,000-row shop hashes ~25 times
    a row, and every Python call and big-integer product counts)."""
    base = seed * 0xA24BAED4963EE407 + stream * 0x9FB21C651E98DF25 + 0x9E3779B97F4A7C15

    def h(index: int, salt: int) -> int:
        x = (base + index * 0xD1B54A32D192ED03 + salt * 0x8CB92BA72F3D8DD7) & _MASK
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
        return x ^ (x >> 31)

    return h


def u01(seed: int, stream: int, index: int, salt: int = 0) -> float:
    """Uniform float in [0, 1)."""
    return h64(seed, stream, index, salt) / 18446744073709551616.0


def randint(seed: int, stream: int, index: int, salt: int, lo: int, hi: int) -> int:
    """Uniform int in [lo, hi] inclusive."""
    return lo + h64(seed, stream, index, salt) % (hi - lo + 1)


def pick(seq: Sequence[T], seed: int, stream: int, index: int, salt: int = 0) -> T:
    return seq[h64(seed, stream, index, salt) % len(seq)]


def uuid_for(seed: int, stream: int, index: int, salt: int = 0) -> str:
    hi = h64(seed, stream, index, salt)
    lo = h64(seed, stream, index, salt + 0x5151)
    return str(uuid.UUID(int=(hi << 64) | lo, version=4))


def token_chars(seed: int, stream: int, index: int, length: int, salt: int = 0) -> str:
    out = []
    for n in range(length):
        out.append(_ALPHABET[h64(seed, stream, index, salt * 131 + n) % len(_ALPHABET)])
    return "".join(out)
