"""``manage.py export_experiment``: the API's export, written to a file, with a progress bar.

    manage.py export_experiment exp_… --format ndjson --include runs,metrics -o out.ndjson

The bytes are those of ``POST /api/research/export/<id>`` (``experiments/export.py``
writes both), produced in constant memory whatever the experiment's size.
"""

import contextlib
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from experiments import export
from experiments.management.database import require_migrated
from experiments.models import Experiment


class Command(BaseCommand):
    help = "Export an experiment as JSON, CSV or NDJSON to a file (the same bytes as the API export)."

    def add_arguments(self, parser):
        parser.add_argument("experiment_id")
        parser.add_argument("--format", choices=export.FORMATS, default="json")
        parser.add_argument(
            "--include",
            default="",
            help=f"Comma-separated parts: {', '.join(export.PARTS)} (default: all; CSV: metrics).",
        )
        parser.add_argument("-o", "--output", help="File to write (default <id>.<format>; '-' for stdout).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options):
        require_migrated()
        experiment = Experiment.objects.filter(public_id=options["experiment_id"]).first()
        if experiment is None:
            raise CommandError(f"No experiment {options['experiment_id']!r}.")
        requested = [part.strip() for part in options["include"].split(",") if part.strip()]
        unknown = sorted(set(requested) - set(export.PARTS))
        if unknown:
            raise CommandError(f"Unknown part(s) {', '.join(unknown)}; choose from {', '.join(export.PARTS)}.")
        fmt = options["format"]
        include = export.parts_for(fmt, list(dict.fromkeys(requested)))
        output = options["output"] or export.filename(experiment, fmt)
        to_stdout = output == "-"
        bar = tqdm(
            total=export.count_records(experiment, include),
            unit=" records",
            desc=experiment.public_id,
            disable=options["no_progress"],
            file=sys.stderr,
            mininterval=0.5,
        )
        with bar, contextlib.ExitStack() as stack:
            target = sys.stdout.buffer if to_stdout else stack.enter_context(Path(output).open("wb"))
            written = 0
            for chunk in export.export_chunks(experiment, fmt, include, on_record=bar.update):
                target.write(chunk)
                written += len(chunk)
        if not to_stdout:
            self.stderr.write(f"Wrote {written:,} bytes to {output}")
