"""Single-use WebSocket tickets for clients that cannot send headers or cookies.

``POST /api/research/ws-ticket`` issues one (valid 30 s); ``?ticket=`` on a socket URL
consumes it. Only a sha256 is stored, and consumption is one conditional DELETE, so of two
sockets presenting the same ticket at once exactly one gets in.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from realtime.models import WsTicket


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("utf-8", "surrogatepass")).hexdigest()


def issue_ticket(*, user) -> tuple[str, object]:
    now = timezone.now()
    WsTicket.objects.filter(expires_at__lt=now).delete()
    ticket = "wst_" + secrets.token_urlsafe(24)
    expires_at = now + timedelta(seconds=settings.REALTIME["TICKET_TTL_SECONDS"])
    WsTicket.objects.create(key_hash=_hash(ticket), user=user, expires_at=expires_at)
    return ticket, expires_at


def consume_ticket(ticket: str):
    """The user the ticket was issued to, once; None if unknown, used or expired."""
    if not ticket or len(ticket) > 200:
        return None
    key_hash = _hash(ticket)
    row = WsTicket.objects.filter(key_hash=key_hash).values_list("user_id", "expires_at").first()
    if row is None:
        return None
    user_id, expires_at = row
    deleted, _ = WsTicket.objects.filter(key_hash=key_hash).delete()
    if deleted != 1 or expires_at <= timezone.now():
        return None
    return get_user_model().objects.filter(pk=user_id, is_active=True).first()
