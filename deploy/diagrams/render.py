"""Render the architecture drawings into a folder (default docs/):

- architecture.png   every component and the paths between them (AWS icons, `diagrams`)
- ping-lifecycle.png the life of one batch of pings, as a sequence (plain graphviz)

`make diagram` runs this. The output is stable byte for byte: node ids are numbered
instead of random, and nothing time-dependent reaches graphviz.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import diagrams
import graphviz
from diagrams import Cluster, Diagram, Edge
from diagrams.aws.compute import ElasticBeanstalk
from diagrams.aws.database import Aurora, DatabaseMigrationService, ElasticacheForRedis, Redshift
from diagrams.aws.integration import SimpleNotificationServiceSns, SimpleQueueServiceSqsQueue
from diagrams.aws.management import CloudwatchAlarm
from diagrams.aws.network import ElbApplicationLoadBalancer
from diagrams.aws.devtools import Codebuild
from diagrams.aws.security import WAF, SecretsManager
from diagrams.generic.device import Mobile
from diagrams.onprem.client import Users

FONT = "DejaVu Sans"


def _deterministic_ids() -> None:
    counter = itertools.count(1)
    diagrams.Node._rand_id = staticmethod(lambda: f"n{next(counter):03d}")  # type: ignore[method-assign]


def architecture(out: Path) -> None:
    _deterministic_ids()
    graph = {
        "fontname": FONT,
        "fontsize": "20",
        "pad": "0.4",
        "nodesep": "0.6",
        "ranksep": "0.9",
        "splines": "spline",
        "newrank": "true",
    }
    back = {"constraint": "false"}
    with Diagram(
        "Ze tracking on AWS",
        filename=str(out / "architecture"),
        outformat="png",
        show=False,
        direction="LR",
        graph_attr=graph,
        node_attr={"fontname": FONT, "fontsize": "12"},
        edge_attr={"fontname": FONT, "fontsize": "11"},
    ):
        with Cluster("clients"):
            courier = Mobile("Courier app\n(Ze Entregador)")
            browsers = Users("Consumers and\nbackoffice (browser)")
        waf = WAF("AWS WAF\nmanaged rules,\nrate per address")
        with Cluster("VPC public subnets"):
            alb = ElbApplicationLoadBalancer("ALB\nHTTPS + WSS")
        with Cluster("private subnets: Elastic Beanstalk"):
            web = ElasticBeanstalk("web\nDjango ASGI (uvicorn)\nREST + Channels")
            beat = ElasticBeanstalk("scheduler\nCelery beat (exactly 1)")
        with Cluster("Amazon SQS (KMS, a DLQ each)"):
            pings = SimpleQueueServiceSqsQueue("pings")
            notifications = SimpleQueueServiceSqsQueue("notifications")
            maintenance = SimpleQueueServiceSqsQueue("maintenance")
        with Cluster("private subnets: Elastic Beanstalk "):
            workers = ElasticBeanstalk("worker\nCelery, scales on\npings backlog")
            release = Codebuild("release task\nmigrations, DB roles\n(admin login)")
        with Cluster("isolated subnets"):
            aurora = Aurora("Aurora PostgreSQL\nServerless v2 + PostGIS\nwriter + reader")
            redis = ElasticacheForRedis("ElastiCache Redis\nChannels layer, cache")
        with Cluster("analytics"):
            dms = DatabaseMigrationService("DMS\nfull load + CDC")
            redshift = Redshift("Redshift Serverless")
        sns = SimpleNotificationServiceSns("SNS\nconsumer notifications")
        consumers = Users("Consumers\n(push / SMS / webhook)")
        analysts = Users("Analytics team")
        with Cluster("operations"):
            secrets = SecretsManager("Secrets Manager\n(env at boot)")
            CloudwatchAlarm("CloudWatch alarms\n-> SNS -> on-call")

        courier >> Edge(label="POST /api/v1/locations\n(batch of pings)") >> waf
        browsers >> Edge(label="last location (REST)\nWSS ws/...") >> waf
        waf >> alb
        alb >> web
        web >> Edge(label="one task\nper batch") >> pings
        beat >> Edge(label="periodic") >> maintenance
        pings >> workers
        notifications >> workers
        maintenance >> workers
        workers >> Edge(label="status\nchanges", **back) >> notifications
        workers >> Edge(label="enrich, INSERT batch,\nupsert last location") >> aurora
        workers >> Edge(label="group_send\nafter commit") >> redis
        web >> Edge(label="read", style="dashed", **back) >> aurora
        redis >> Edge(label="Channels: live map to browsers", style="dashed", color="darkgreen", **back) >> web
        workers >> Edge(label="publish") >> sns >> consumers
        aurora >> Edge(label="logical replication") >> dms >> redshift >> Edge(label="SQL") >> analysts
        secrets >> Edge(style="dotted", **back) >> web
        release >> Edge(label="before each\nrelease", style="dashed") >> aurora


def ping_lifecycle(out: Path) -> None:
    """A sequence diagram in plain graphviz: one column per participant, one row per step."""
    participants = [
        ("app", "Courier app"),
        ("browser", "Consumer browser"),
        ("web", "web: PingBatchCreateApi\n+ Channels consumer"),
        ("sqs", "SQS pings"),
        ("worker", "worker: ping_batch_record"),
        ("db", "Aurora"),
        ("redis", "Redis (Channels)"),
        ("notify", "SNS / consumers"),
    ]
    steps = [
        ("app", "web", "POST /api/v1/locations: batch (<= 500), token"),
        ("web", "web", "pings_ingest: validate, stamp received_at"),
        ("web", "sqs", "SendMessage: one task per batch"),
        ("web", "app", "202 Accepted (accepted count)"),
        ("sqs", "worker", "ReceiveMessage (long poll)"),
        ("worker", "db", "pings_enrich: active orders, destinations"),
        ("worker", "db", "pings_store: INSERT ... unnest ON CONFLICT DO NOTHING"),
        ("worker", "db", "last_locations_upsert: one statement, newer only"),
        ("worker", "redis", "after commit: group_send, one per order"),
        ("redis", "web", "channel layer -> the order's group"),
        ("web", "browser", "websocket message: new last location"),
        ("worker", "notify", "arriving? order_transition -> outbox -> SNS"),
        ("worker", "sqs", "DeleteMessage (ack after success)"),
    ]
    g = graphviz.Digraph("ping_lifecycle", format="png")
    g.attr(
        rankdir="TB",
        splines="line",
        nodesep="0.35",
        ranksep="0.42",
        pad="0.3",
        fontname=FONT,
        label="Life of one batch of pings",
        labelloc="t",
        fontsize="18",
    )
    g.attr("node", fontname=FONT, fontsize="11")
    g.attr("edge", fontname=FONT, fontsize="10")
    rows = len(steps) + 1
    with g.subgraph() as head:
        head.attr(rank="same")
        for key, label in participants:
            head.node(f"{key}_0", label, shape="box", style="rounded,filled", fillcolor="#FFE9A8", width="1.9")
    for row in range(1, rows + 1):
        with g.subgraph() as same:
            same.attr(rank="same")
            for key, _ in participants:
                same.node(f"{key}_{row}", "", shape="point", width="0.01", height="0.01")
    # A step a participant does by itself is written beside its lifeline.
    own = {(src, row): label for row, (src, dst, label) in enumerate(steps, start=1) if src == dst}
    for key, _ in participants:
        for row in range(rows):
            note = own.get((key, row + 1))
            g.edge(
                f"{key}_{row}",
                f"{key}_{row + 1}",
                style="dashed",
                arrowhead="none",
                color="#999999",
                weight="100",
                **({"xlabel": f"{row + 1}. {note}", "fontcolor": "#1f5fa8"} if note else {}),
            )
    # Invisible edges keep the columns in participant order.
    for row in range(rows + 1):
        for (a, _), (b, _) in zip(participants, participants[1:]):
            g.edge(f"{a}_{row}", f"{b}_{row}", style="invis")
    for row, (src, dst, label) in enumerate(steps, start=1):
        if src != dst:
            g.edge(
                f"{src}_{row}",
                f"{dst}_{row}",
                xlabel=f"{row}. {label}",
                color="#1f5fa8",
                constraint="false",
                fontcolor="#1f5fa8",
            )
    g.render(filename="ping-lifecycle", directory=str(out), cleanup=True)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    target.mkdir(parents=True, exist_ok=True)
    architecture(target)
    ping_lifecycle(target)
    for name in ("architecture.png", "ping-lifecycle.png"):
        print(target / name)
