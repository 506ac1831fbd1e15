"""Run tokens: the secret an agent presents as ``Authorization: Bearer <token>``.

Only a sha256 of the token is stored. Tokens carry about 238 random bits, so a plain
hash is enough (there is nothing to brute-force), and it lets the lookup use the unique
index instead of comparing against every run.
"""

import hashlib
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
TOKEN_PREFIX = "rt_"  # noqa: S105 (a prefix, not a secret)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh token and its hash."""
    token = TOKEN_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(40))
    return token, hash_token(token)


def run_for_token(token: str):
    """The run whose token this is, or None. Finished runs keep their token (reports 409)."""
    from agents.models import AgentRun

    if not token or len(token) > 200:
        return None
    return AgentRun.objects.select_related("experiment").filter(token_hash=hash_token(token)).first()
