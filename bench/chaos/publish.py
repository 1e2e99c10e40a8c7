"""Messages the chaos run publishes itself, through kombu with the app's own broker settings.
Run with the stack's environment (its broker is SQS or Redis, chosen by variables), not
imported by the harness, whose Django settings name the run's Redis:

    python -m bench.chaos.publish undecodable TASK_ID   # a ping batch whose body is not JSON
    python -m bench.chaos.publish task NAME TASK_ID     # a task with no arguments, as beat sends it
"""

from __future__ import annotations

import sys

PING_TASK = "tracking.tasks.ping_batch_record"
# Cut short in the middle of a string: no JSON parser reads it.
UNDECODABLE_BODY = b'{"courier_id": "8c5e0f4e-3b1a-4c6e-9d2f'


def task_headers(*, name: str, task_id: str) -> dict:
    """The headers of Celery's message protocol 2, as `apply_async` writes them."""
    return {
        "lang": "py", "task": name, "id": task_id, "shadow": None, "eta": None, "expires": None,
        "group": None, "group_index": None, "retries": 0, "timelimit": [None, None], "root_id": task_id,
        "parent_id": None, "argsrepr": "", "kwargsrepr": "", "origin": "chaos", "ignore_result": True,
    }  # fmt: skip


def undecodable_publish(*, app, task_id: str) -> None:
    """The ping task's headers with a body that is not JSON, sent as JSON, into the pings queue."""
    queue = app.amqp.queues[app.conf.task_routes[PING_TASK]["queue"]]
    with app.connection_for_write() as connection:
        connection.Producer().publish(
            UNDECODABLE_BODY, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue],
            headers=task_headers(name=PING_TASK, task_id=task_id), content_type="application/json",
            content_encoding="utf-8", retry=True,
        )  # fmt: skip


def main(argv: list[str]) -> int:
    import django

    django.setup()
    from ze_tracking.celery import app

    if argv[:1] == ["undecodable"] and len(argv) == 2:
        undecodable_publish(app=app, task_id=argv[1])
    elif argv[:1] == ["task"] and len(argv) == 3:
        app.send_task(argv[1], task_id=argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
