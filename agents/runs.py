"""Building a run row with its token (no transition, no signal: callers announce it)."""

from agents.models import AgentRun
from agents.tokens import new_token


def build_run(*, experiment, agent_type: str, name: str = "", config: dict | None = None, **fields):
    """Create a pending run of ``experiment``; returns the run and its plain token."""
    token, token_hash = new_token()
    run = AgentRun.objects.create(
        experiment=experiment,
        agent_type=agent_type,
        name=name or agent_type,
        config=config or {},
        token_hash=token_hash,
        **fields,
    )
    return run, token
