"""Short references that staff can read aloud and type: no 0/O or 1/I to confuse."""

from __future__ import annotations

import secrets

_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def new_ref(prefix: str, length: int = 6) -> str:
    """A random reference like ``F-7KQ2MX``."""
    return prefix + "-" + "".join(secrets.choice(_ALPHABET) for _ in range(length))
