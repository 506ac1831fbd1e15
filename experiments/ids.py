"""Public identifiers: opaque, unguessable strings with a type prefix (``exp_…``, ``run_…``).

The database keeps an integer primary key for joins; the public id is what the API, the
events and the sockets speak. 20 characters of base 62 carry about 119 random bits.
"""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_LENGTH = 20
PUBLIC_ID_MAX_LENGTH = 32


def new_public_id(prefix: str) -> str:
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))


def new_experiment_id() -> str:
    return new_public_id("exp")


def new_run_id() -> str:
    return new_public_id("run")


def id_pattern(prefix: str) -> str:
    """A URL regex for ids with this prefix; anything else never reaches a lookup."""
    return f"{prefix}_[A-Za-z0-9]{{1,{PUBLIC_ID_MAX_LENGTH - len(prefix) - 1}}}"


def looks_like(public_id: object, prefix: str) -> bool:
    """True when ``public_id`` has the shape of an id with this prefix (not that it exists)."""
    return (
        isinstance(public_id, str)
        and public_id.startswith(prefix + "_")
        and len(public_id) <= PUBLIC_ID_MAX_LENGTH
        and public_id[len(prefix) + 1 :].isalnum()
    )
