"""``manage.py prune_events``: delete events older than the retention period.

    manage.py prune_events             # older than event_retention_days (runtime config)
    manage.py prune_events --days 7

Streams remember what was cut, so a socket resuming from before it is answered
``recovered: false`` with a fresh snapshot (``realtime/retention.py``). Every serving
process also prunes once an hour by itself; this is for cron jobs and one-off cleanups.
"""

from django.core.management.base import BaseCommand, CommandError

from experiments import runtime_config
from experiments.management.database import require_migrated
from realtime.retention import prune_events


class Command(BaseCommand):
    help = "Delete stored events older than event_retention_days (or --days)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, help="Keep this many days (default: the runtime config).")

    def handle(self, *args, **options):
        require_migrated()
        days = options["days"]
        if days is None:
            days = runtime_config.get("event_retention_days")
        elif days < 0:
            raise CommandError("--days must be 0 or more.")
        deleted = prune_events(older_than_days=days)
        self.stdout.write(f"Deleted {deleted} event(s) older than {days} day(s).")
