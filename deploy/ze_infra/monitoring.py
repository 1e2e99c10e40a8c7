"""The alarms an on-call person acts on, all to one SNS topic."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from .analytics import Analytics
from .compute import Compute
from .config import StageConfig
from .data import Database
from .messaging import Messaging

FIVE_MINUTES = Duration.minutes(5)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cfg: StageConfig,
        messaging: Messaging,
        database: Database,
        compute: Compute,
        analytics: Analytics,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id)
        self.alarms: list[cw.Alarm] = []
        action = actions.SnsAction(topic)

        def alarm(
            name: str,
            metric: cw.IMetric,
            threshold: float,
            description: str,
            *,
            periods: int = 3,
            missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING,
            comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        ) -> cw.Alarm:
            a = cw.Alarm(
                self,
                name,
                alarm_name=f"{cfg.prefix}-{name}",
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                comparison_operator=comparison,
                treat_missing_data=missing,
                alarm_description=description,
            )
            a.add_alarm_action(action)
            a.add_ok_action(action)
            self.alarms.append(a)
            return a

        for name, queue in messaging.queues.items():
            alarm(
                f"queue-{name}-age",
                queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1), statistic="Maximum"),
                cfg.queue_age_alarm_seconds,
                f"The oldest message in {name} waits more than {cfg.queue_age_alarm_seconds}s: workers are behind or down.",
                periods=5,
            )
            alarm(
                f"queue-{name}-depth",
                queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"),
                cfg.queue_depth_alarm,
                f"More than {cfg.queue_depth_alarm} messages wait in {name}.",
                periods=5,
            )
        for name, dlq in messaging.dead_letter_queues.items():
            alarm(
                f"dlq-{name}-not-empty",
                dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"),
                0,
                f"A {name} task failed {5} times and was dead-lettered: inspect and redrive.",
                periods=1,
            )

        env = compute.web.environment_name or f"{cfg.prefix}-web"
        requests = cw.Metric(
            namespace="AWS/ElasticBeanstalk",
            metric_name="ApplicationRequestsTotal",
            dimensions_map={"EnvironmentName": env},
            statistic="Sum",
            period=Duration.minutes(1),
        )
        errors = cw.Metric(
            namespace="AWS/ElasticBeanstalk",
            metric_name="ApplicationRequests5xx",
            dimensions_map={"EnvironmentName": env},
            statistic="Sum",
            period=Duration.minutes(1),
        )
        alarm(
            "web-5xx-rate",
            cw.MathExpression(
                expression="100 * errors / IF(requests > 0, requests, 1)",
                using_metrics={"errors": errors, "requests": requests},
                label="5xx %",
                period=Duration.minutes(1),
            ),
            cfg.http_5xx_alarm_percent,
            f"More than {cfg.http_5xx_alarm_percent}% of API requests answer 5xx.",
            periods=5,
        )

        cluster = database.cluster
        alarm(
            "db-cpu",
            cluster.metric_cpu_utilization(period=FIVE_MINUTES),
            cfg.db_cpu_alarm_percent,
            "Aurora writer CPU is high: check slow queries and the ACU ceiling.",
        )
        alarm(
            "db-acu",
            cluster.metric("ACUUtilization", period=FIVE_MINUTES),
            90,
            "Aurora runs near its maximum ACUs: raise aurora_max_acu or shed load.",
        )
        alarm(
            "db-connections",
            cluster.metric_database_connections(period=FIVE_MINUTES),
            cfg.db_connections_alarm,
            "Too many database connections: a worker or web scale-out without pooling?",
        )
        alarm(
            "db-replica-lag",
            cluster.metric("AuroraReplicaLagMaximum", period=Duration.minutes(1)),
            2000,
            "The Aurora reader lags the writer by more than 2 s.",
            periods=5,
        )
        alarm(
            "db-free-memory-low",
            cluster.metric_freeable_memory(period=FIVE_MINUTES),
            256 * 1024 * 1024,
            "Aurora freeable memory under 256 MiB.",
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
        )

        dims = {
            "ReplicationInstanceIdentifier": analytics.instance.replication_instance_identifier or f"{cfg.prefix}-dms",
            "ReplicationTaskIdentifier": analytics.task_resource_id,
        }
        for metric_name, threshold in (
            ("CDCLatencySource", cfg.dms_source_lag_alarm_seconds),
            ("CDCLatencyTarget", cfg.dms_target_lag_alarm_seconds),
        ):
            alarm(
                f"dms-{metric_name.lower()}",
                cw.Metric(
                    namespace="AWS/DMS",
                    metric_name=metric_name,
                    dimensions_map=dims,
                    statistic="Maximum",
                    period=FIVE_MINUTES,
                ),
                threshold,
                f"DMS {metric_name} over {threshold}s: analytics data is stale"
                " and the replication slot is holding WAL.",
            )
        # The slot holds WAL while DMS is behind or stopped; Aurora's disk is not the limit,
        # but the bill and a restart's catch-up time are.
        alarm(
            "db-replication-slot-lag",
            cw.Metric(
                namespace="AWS/RDS", metric_name="OldestLogicalReplicationSlotLag", statistic="Maximum",
                dimensions_map={"DBClusterIdentifier": cluster.cluster_identifier, "Role": "WRITER"},
                period=FIVE_MINUTES,
            ),
            5 * 1024**3,
            "The DMS replication slot holds more than 5 GiB of WAL: is the DMS task running?",
        )
