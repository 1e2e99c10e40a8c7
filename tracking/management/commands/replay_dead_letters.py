from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tracking.services.dead_letters import ping_batch_dead_letters_replay, ping_dead_letters_replay


class Command(BaseCommand):
    help = (
        "Store dead-lettered pings and batches again through the worker's service, once the cause is fixed. "
        "What is stored marks its row replayed; what is refused again keeps its row with the new error."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--id", dest="ids", type=int, action="append", help="A ping dead letter's id (repeatable).")
        which.add_argument(
            "--batch-id", dest="batch_ids", type=int, action="append", help="A batch dead letter's id (repeatable)."
        )
        which.add_argument("--all", action="store_true", help="Every dead letter, ping or batch, not yet replayed.")

    def handle(self, *args, ids=None, batch_ids=None, all=False, **options):
        if not ids and not batch_ids and not all:
            raise CommandError("Name the dead letters to replay with --id N, --batch-id N (repeatable) or --all.")
        if ids or all:
            counts = ping_dead_letters_replay(
                ids=ids,
                progress=lambda letter, outcome: self.stdout.write(
                    f"dead letter {letter.id} (courier {letter.courier_id}, event {letter.event_id}): {outcome}"
                ),
            )
            self.stdout.write(self.style.SUCCESS(f"pings: {counts['replayed']} replayed, {counts['failed']} failed"))
        if batch_ids or all:
            counts = ping_batch_dead_letters_replay(
                ids=batch_ids,
                progress=lambda letter, outcome: self.stdout.write(
                    f"batch dead letter {letter.id} (task {letter.task_id}, courier {letter.courier_id}): {outcome}"
                ),
            )
            self.stdout.write(
                self.style.SUCCESS(
                    f"batches: {counts['replayed']} replayed, {counts['failed']} failed, "
                    f"{counts['unreadable']} unreadable"
                )
            )
