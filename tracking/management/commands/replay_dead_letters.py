from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tracking.services.dead_letters import ping_dead_letters_replay


class Command(BaseCommand):
    help = (
        "Store dead-lettered pings again through the worker's service, once the cause is fixed. "
        "A stored ping marks its row replayed; one refused again keeps its row with the new error."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--id", dest="ids", type=int, action="append", help="A dead letter's id (repeatable).")
        which.add_argument("--all", action="store_true", help="Every dead letter not yet replayed.")

    def handle(self, *args, ids=None, all=False, **options):
        if not ids and not all:
            raise CommandError("Name the dead letters to replay with --id N (repeatable) or --all.")
        counts = ping_dead_letters_replay(
            ids=ids,
            progress=lambda letter, outcome: self.stdout.write(
                f"dead letter {letter.id} (courier {letter.courier_id}, event {letter.event_id}): {outcome}"
            ),
        )
        self.stdout.write(self.style.SUCCESS(f"{counts['replayed']} replayed, {counts['failed']} failed"))
