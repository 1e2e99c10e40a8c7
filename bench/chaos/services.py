"""The services the chaos run breaks on purpose.

Redis: the run starts its own Redis (broker, cache and channel layer of the stack under
test), with an append-only file fsynced on every write. The checkout's Redis runs without
persistence (`--save '' --appendonly no`), where a restart drops every queued message; in
production the broker is SQS, which keeps a message until a worker deletes it. A Redis that
fsyncs each write is the local stand-in with the same promise, so "Redis restarted" asks a
meaningful question: does the app lose what the broker had accepted?

PostgreSQL: the cluster `scripts/setup.sh` started for this checkout, stopped with
`pg_ctl stop -m fast` and started again with the options it was running with.

SQS: moto's server, production's broker. Every scenario runs on it and on Redis: the two
transports differ where it matters. kombu's Redis transport takes a message off its list
(BRPOP) before it records it as unacknowledged, so a worker killed between the two loses
that message; SQS only hides a received message until it is deleted, and gives it back
after the visibility timeout. moto keeps its queues in memory: it is frozen (SIGSTOP) to
make it unreachable, never restarted while a scenario runs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
import redis

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class ChaosRedis:
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        try:
            return int((self.folder / "redis.pid").read_text())
        except (OSError, ValueError):
            return None

    def start(self, *, fresh: bool = False) -> None:
        if fresh:
            self.stop()
            shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "yes",
             "--pidfile", str(self.folder / "redis.pid"), "--logfile", str(self.folder / "redis.log")],
            check=True,
        )  # fmt: skip
        self.wait_answering()

    def wait_answering(self, *, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        raise RuntimeError(f"the chaos Redis on port {self.port} does not answer; see {self.folder}/redis.log")

    def kill(self) -> None:
        """A crash: no shutdown, no final save; only what the AOF already holds survives."""
        pid = self.pid
        if pid:
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
            (self.folder / "redis.pid").unlink(missing_ok=True)

    def freeze(self) -> None:
        """Unreachable without refusing: connections open (the kernel accepts them) and then
        nothing answers, as when the broker is cut off by the network."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def clients_kill(self, *, pids: list[int]) -> int:
        """Close the connections these processes hold to this Redis (`CLIENT KILL ID`), as a
        network blip or a failover does; returns how many were closed."""
        ports = set()
        for pid in pids:
            try:
                ports |= {
                    c.laddr.port
                    for c in psutil.Process(pid).net_connections("tcp")
                    if c.raddr and c.raddr.port == self.port
                }
            except psutil.NoSuchProcess:
                continue
        client = redis.Redis(port=self.port, socket_timeout=2)
        killed = 0
        for entry in client.client_list(_type="normal"):
            if int(entry["addr"].rsplit(":", 1)[1]) in ports:
                killed += client.client_kill_filter(_id=entry["id"])
        return killed

    def queue_depth(self, *, queue: str) -> int:
        """Messages waiting in a queue (kombu keeps a list per queue and priority), not those
        a worker received and holds."""
        client = redis.Redis.from_url(self.url, socket_timeout=2)
        return sum(
            client.llen(key) for key in client.scan_iter(match=f"{queue}*", count=1000) if client.type(key) == b"list"
        )

    def stop(self) -> None:
        pid = self.pid
        if pid and _alive(pid):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours is dead too (redis-server daemonizes, so it is never ours).
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


@dataclass
class SqsEmulator:
    """moto's server on its own port, with the three Celery queues (`queues_create`)."""

    port: int
    folder: Path
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "moto.log", "ab")  # noqa: SIM115 (the child owns it)
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"moto's server on port {self.port} does not answer; see {self.folder}/moto.log")

    def freeze(self) -> None:
        """Unreachable without refusing, as Redis.freeze: its queues stay in memory."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGCONT)

    def _client(self):
        import boto3

        return boto3.session.Session().client(
            "sqs", region_name="us-east-1", endpoint_url=self.endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    def queue_depth(self, *, url: str) -> int:
        """Messages waiting in the queue (not those a worker received and holds)."""
        attributes = self._client().get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    def queues_create(self, *, prefix: str, visibility_timeout_s: int) -> dict[str, str]:
        """Fresh queues with this visibility timeout; returns the app's broker variables,
        as deploy/ passes them (sqs:// broker, one URL per queue)."""
        sqs = self._client()
        variables = {
            "CELERY_BROKER_URL": f"sqs://testing:testing@127.0.0.1:{self.port}",
            "SQS_IS_SECURE": "0",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        for name in ("pings", "notifications", "maintenance"):
            url = sqs.create_queue(
                QueueName=f"{prefix}-{name}", Attributes={"VisibilityTimeout": str(visibility_timeout_s)}
            )["QueueUrl"]
            variables[f"SQS_{name.upper()}_QUEUE_URL"] = url
        return variables

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None


@dataclass
class PostgresCluster:
    """The local cluster behind `dsn`, controlled with pg_ctl (as `postgres` when root)."""

    dsn: str
    data_directory: Path | None = None
    options: str = ""

    def discover(self) -> str | None:
        """Find the cluster's folder and start-up options; None, or why it cannot be controlled."""
        try:
            with psycopg.connect(self.dsn, connect_timeout=5) as conn:
                folder = conn.execute("SHOW data_directory").fetchone()[0]
        except psycopg.Error as exc:
            return f"cannot ask the database for its folder: {exc}"
        opts = Path(folder) / "postmaster.opts"
        if not os.access(opts, os.R_OK):
            return f"the database's folder {folder} is not on this machine (an external DATABASE_URL?)"
        # postmaster.opts is the running server's command line: binary, -D folder, options.
        words = shlex.split(opts.read_text())[1:]
        kept, skip = [], False
        for word in words:
            if skip:
                skip = False
            elif word == "-D":
                skip = True
            else:
                kept.append(word)
        self.data_directory, self.options = Path(folder), shlex.join(kept)
        return None

    def _pg_ctl(self, *args: str) -> None:
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data_directory), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, cwd="/", stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast", "-w")

    def start(self) -> None:
        self._pg_ctl("start", "-w", "-l", str(self.data_directory / "server.log"), "-o", self.options)

    def answering(self) -> bool:
        try:
            with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False
