"""The alarms an on-call person acts on, all to one SNS topic, and one dashboard.

Where silence means trouble (a stopped DMS task, a dead beat, an environment that stops
reporting) missing data breaches. deploy/README.md says what each alarm means and what
to do about it."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dms as dms
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from .analytics import Analytics
from .compute import Compute
from .config import METRICS_NAMESPACE, StageConfig
from .data import Cache, Database
from .messaging import Messaging
from .waf import Waf

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
        cache: Cache,
        compute: Compute,
        analytics: Analytics,
        waf: Waf,
        topic: sns.ITopic,
        key: kms.IKey,
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

        # The function that keeps the scaling policies on EB's groups (compute.py): failing
        # or silent, it leaves a rebuilt environment without scaling. It runs every 5 minutes
        # and Lambda publishes Errors (0 when none) for every run.
        alarm(
            "scaling-reconciler-errors",
            compute.scaling_function.metric_errors(period=Duration.minutes(15), statistic="Sum"),
            0,
            "The scaling reconciler failed or did not run: web and worker scaling may be missing.",
            periods=1,
            missing=cw.TreatMissingData.BREACHING,
        )
        alarm(
            "scaling-reconciler-dlq-not-empty",
            compute.scaling_dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            0,
            "A scaling reconciler run failed after its retries: read its log, then purge the queue.",
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

        alarm(
            "web-latency-p99",
            cw.Metric(
                namespace="AWS/ElasticBeanstalk",
                metric_name="ApplicationLatencyP99",
                dimensions_map={"EnvironmentName": env},
                statistic="Maximum",
                period=Duration.minutes(1),
            ),
            cfg.web_latency_p99_alarm_seconds,
            f"The slowest 1 % of web requests take more than {cfg.web_latency_p99_alarm_seconds}s.",
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
                f"DMS {metric_name} over {threshold}s, or no data (task stopped): analytics data is stale"
                " and the replication slot is holding WAL.",
                # A stopped task publishes nothing: silence is the failure to catch.
                missing=cw.TreatMissingData.BREACHING,
            )
        # The slot holds WAL while DMS is behind or stopped; Aurora's disk is not the limit,
        # but the bill and a restart's catch-up time are.
        alarm(
            "db-replication-slot-lag",
            cw.Metric(
                namespace="AWS/RDS",
                metric_name="OldestLogicalReplicationSlotLag",
                statistic="Maximum",
                dimensions_map={"DBClusterIdentifier": cluster.cluster_identifier, "Role": "WRITER"},
                period=FIVE_MINUTES,
            ),
            5 * 1024**3,
            "The DMS replication slot holds more than 5 GiB of WAL: is the DMS task running?",
        )

        # --- the app's own metrics (EMF, infra/observability/metrics.py) ------------------------
        def app(name: str, statistic: str = "Sum", period: Duration = Duration.minutes(1)) -> cw.Metric:
            return cw.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map={"Stage": cfg.name},
                statistic=statistic,
                period=period,
            )

        # Beat enqueues the heartbeat every minute and a worker runs it: a missing point
        # means beat is dead, holds no lock, or no worker runs maintenance tasks. A dead
        # beat for days stops partition creation and the ingest fails.
        beat_window = 2 * cfg.beat_shortest_schedule_seconds
        alarm(
            "beat-heartbeat-missing",
            app("BeatHeartbeat", period=Duration.seconds(cfg.beat_shortest_schedule_seconds)),
            1,
            f"No beat heartbeat for {beat_window}s: celery beat is down or lost its lock, or workers skip maintenance.",
            periods=2,
            missing=cw.TreatMissingData.BREACHING,
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
        )
        alarm(
            "ping-freshness",
            app("Freshness", statistic="p99"),
            cfg.freshness_alarm_seconds,
            f"p99 of device time -> stored is over {cfg.freshness_alarm_seconds}s: live positions are late.",
            periods=5,
        )

        # --- web: load balancer and environment health ---------------------------------
        # EB owns the ALB and may replace it, so its metrics are selected by the tag EB puts
        # on it (a Metrics Insights query), not by a load balancer name fixed at synth.
        # Needs resource tags enabled for telemetry in the account (deploy/README.md).
        web_tag = f"tag.\"elasticbeanstalk:environment-name\" = '{env}'"

        def lb_query(label: str, query: str) -> cw.MathExpression:
            return cw.MathExpression(expression=query, using_metrics={}, label=label, period=Duration.minutes(1))

        alarm(
            "web-lb-5xx",
            lb_query(
                "ALB 5xx",
                f'SELECT SUM(HTTPCode_ELB_5XX_Count) FROM SCHEMA("AWS/ApplicationELB", LoadBalancer) WHERE {web_tag}',
            ),
            10,
            "The load balancer itself answers 5xx (no healthy target, or targets refuse connections).",
            periods=3,
        )
        alarm(
            "web-unhealthy-hosts",
            lb_query(
                "Unhealthy targets",
                'SELECT MAX(UnHealthyHostCount) FROM SCHEMA("AWS/ApplicationELB", LoadBalancer, TargetGroup)'
                f" WHERE {web_tag}",
            ),
            0,
            "At least one web instance fails the /healthz check.",
            periods=5,
            # The target group always reports this metric: silence means the query sees no
            # load balancer (tags for telemetry off, or the ALB gone), which is trouble too.
            missing=cw.TreatMissingData.BREACHING,
        )
        for role, eb_env in (("web", compute.web), ("worker", compute.worker), ("scheduler", compute.scheduler)):
            name = eb_env.environment_name or f"{cfg.prefix}-{role}"
            # 0 ok, 1 info, 5 unknown, 10 no data, 15 warning, 20 degraded, 25 severe.
            alarm(
                f"{role}-environment-health",
                cw.Metric(
                    namespace="AWS/ElasticBeanstalk",
                    metric_name="EnvironmentHealth",
                    dimensions_map={"EnvironmentName": name},
                    statistic="Maximum",
                    period=Duration.minutes(1),
                ),
                20,
                f"The {role} environment's enhanced health is Degraded or Severe (or it stopped reporting).",
                periods=5,
                missing=cw.TreatMissingData.BREACHING,
                comparison=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            )
            # The fullest root filesystem of the environment's instances (EB enhanced
            # health publishes each one's; compute.py turns that on).
            alarm(
                f"{role}-disk-used",
                lb_query(
                    "Root filesystem used %",
                    'SELECT MAX(RootFilesystemUtil) FROM SCHEMA("AWS/ElasticBeanstalk", EnvironmentName, InstanceId)'
                    f" WHERE EnvironmentName = '{name}'",
                ),
                80,
                f"A {role} instance's root filesystem is more than 80 % full: logs or the metrics file growing?",
                periods=5,
            )

        # The web ACL sees every request the load balancer takes: silence means the ACL is
        # no longer associated with it (or nothing reaches the load balancer at all).
        alarm(
            "waf-requests-missing",
            cw.Metric(
                namespace="AWS/WAFV2", metric_name="AllowedRequests",
                dimensions_map={"WebACL": waf.web_acl.name or f"{cfg.prefix}-web", "Rule": "ALL", "Region": cfg.region},
                statistic="Sum", period=FIVE_MINUTES,
            ),
            1,
            "The web ACL allowed no request for 15 minutes: is it still associated with the web load balancer?",
            missing=cw.TreatMissingData.BREACHING,
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
        )

        # --- Redis ----------------------------------------------------------------------
        # ElastiCache publishes per node only (CacheClusterId <group>-001, -002, ...), and a
        # failover makes another node the primary: each alarm takes the worst of every node.
        nodes = [f"{cfg.prefix}-redis-{i:03d}" for i in range(1, cfg.redis_replicas + 2)]

        def redis(name: str, statistic: str) -> cw.MathExpression:
            ids = [f"{name.lower()}{i}" for i in range(len(nodes))]  # unique within a graph
            return cw.MathExpression(
                expression=f"MAX([{', '.join(ids)}])",
                using_metrics={
                    ids[i]: cw.Metric(
                        namespace="AWS/ElastiCache",
                        metric_name=name,
                        dimensions_map={"CacheClusterId": node},
                        statistic=statistic,
                        period=FIVE_MINUTES,
                    )
                    for i, node in enumerate(nodes)
                },
                label=f"{name} (worst node)",
                period=FIVE_MINUTES,
            )

        alarm(
            "redis-memory",
            redis("DatabaseMemoryUsagePercentage", "Maximum"),
            cfg.redis_memory_alarm_percent,
            f"Redis uses more than {cfg.redis_memory_alarm_percent}% of its memory: evictions are next.",
        )
        alarm(
            "redis-evictions",
            redis("Evictions", "Sum"),
            0,
            "Redis evicted keys: the cache, channel groups or beat's schedule and lock may be lost.",
            periods=1,
        )

        # --- Redshift Serverless ---------------------------------------------------------
        workgroup = analytics.workgroup.workgroup_name
        alarm(
            "redshift-queries-failed",
            cw.Metric(
                namespace="AWS/Redshift-Serverless",
                metric_name="QueriesFailed",
                dimensions_map={"Workgroup": workgroup},
                statistic="Sum",
                period=FIVE_MINUTES,
            ),
            5,
            "Redshift queries fail (DMS apply or analysts): check the workgroup's query history.",
        )

        # --- Warehouse privacy rule and warehouse build ----------------------------------
        # The Data API reports the privacy batch's end as an event (WithEvent), CodeBuild the
        # warehouse build's: a failed run goes to on-call as it is, with its error. A call
        # the scheduler could not make (a permission, the secret) sends no such event: its
        # dropped invocation alarms.
        stack = Stack.of(self)
        failure_rules = {
            f"{cfg.prefix}-warehouse-privacy-failed": (
                "The warehouse privacy rule (deploy/warehouse/privacy.sql) failed: it runs again tomorrow",
                {
                    "source": ["aws.redshift-data"],
                    "detail-type": ["Redshift Data Statement Status Change"],
                    "detail": {"state": ["FAILED", "ABORTED"], "statementName": [analytics.privacy_statement_name]},
                },
            ),
            f"{cfg.prefix}-warehouse-build-failed": (
                "The warehouse build (dbt, deploy/ze_infra/warehouse_build.py) failed, timed out or was stopped",
                {
                    "source": ["aws.codebuild"],
                    "detail-type": ["CodeBuild Build State Change"],
                    "detail": {
                        "build-status": ["FAILED", "TIMED_OUT", "STOPPED"],
                        "project-name": [f"{cfg.prefix}-warehouse-build"],
                    },
                },
            ),
        }
        # CfnRule, not events.Rule + targets.SnsTopic: that target grants EventBridge the
        # topic and its key for any rule of any account.
        for name, (description, pattern) in failure_rules.items():
            events.CfnRule(
                self,
                "".join(part.title() for part in name.removeprefix(cfg.prefix).split("-")),
                name=name,
                description=description,
                event_pattern=pattern,
                targets=[events.CfnRule.TargetProperty(id="alarms", arn=topic.topic_arn)],
            )
        # Only these rules of this account (confused deputy); their ARNs spelled out, as the
        # key must exist before the topic, and the topic before the rules.
        rule_arns = [stack.format_arn(service="events", resource="rule", resource_name=n) for n in failure_rules]
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}, "ArnLike": {"aws:SourceArn": rule_arns}},
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}, "ArnLike": {"aws:SourceArn": rule_arns}},
            )
        )
        alarm(
            "warehouse-privacy-not-run",
            cw.Metric(
                namespace="AWS/Scheduler",
                metric_name="InvocationDroppedCount",
                dimensions_map={"ScheduleGroup": "default"},
                statistic="Sum",
                period=Duration.hours(1),
            ),
            0,
            "The scheduler gave up calling a warehouse schedule (the privacy rule or the build; its role, the"
            " secret or the workgroup): old destinations stay exact, or the marts stale, until it runs.",
            periods=1,
        )

        # --- DMS events -------------------------------------------------------------------
        # Task failures and stops, instance failover and low storage reach on-call at once,
        # not only through the latency alarms' 15 minutes.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("dms.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                # Only DMS acting for this account's event subscriptions (confused deputy).
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        self.dms_events = dms.CfnEventSubscription(
            self,
            "DmsEvents",
            subscription_name=f"{cfg.prefix}-dms",
            sns_topic_arn=topic.topic_arn,
            source_type="replication-task",
            source_ids=[analytics.task.replication_task_identifier or f"{cfg.prefix}-analytics"],
            event_categories=["failure", "state change"],
            enabled=True,
        )
        self.dms_events.node.add_dependency(analytics.task)
        self.dms_instance_events = dms.CfnEventSubscription(
            self,
            "DmsInstanceEvents",
            subscription_name=f"{cfg.prefix}-dms-instance",
            sns_topic_arn=topic.topic_arn,
            source_type="replication-instance",
            source_ids=[analytics.instance.replication_instance_identifier or f"{cfg.prefix}-dms"],
            event_categories=["failure", "failover", "low storage"],
            enabled=True,
        )
        self.dms_instance_events.node.add_dependency(analytics.instance)

        self.dashboard = self._dashboard(cfg=cfg, app=app, messaging=messaging, database=database, redis=redis)

    def _dashboard(self, *, cfg: StageConfig, app, messaging: Messaging, database: Database, redis) -> cw.Dashboard:
        pings = messaging.queues["pings"]
        cluster = database.cluster
        minute = Duration.minutes(1)

        def graph(title: str, metrics: list[cw.IMetric], right: list[cw.IMetric] | None = None) -> cw.GraphWidget:
            return cw.GraphWidget(title=title, left=metrics, right=right or [], width=8, height=6)

        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{cfg.prefix}-overview")
        dashboard.add_widgets(
            graph("Ingest rate (pings/min)", [app("PingsAccepted"), app("PingsRejected")]),
            graph(
                "Pings queue: age of oldest (s) and depth",
                [pings.metric_approximate_age_of_oldest_message(period=minute, statistic="Maximum")],
                [pings.metric_approximate_number_of_messages_visible(period=minute, statistic="Maximum")],
            ),
            graph(
                "Batch latency and queue lag (s, p50 and p99)",
                [app("BatchLatency", "p50"), app("BatchLatency", "p99")],
                [app("QueueLag", "p50"), app("QueueLag", "p99")],
            ),
        )
        dashboard.add_widgets(
            graph("Freshness: device time -> stored (s)", [app("Freshness", "p50"), app("Freshness", "p99")]),
            graph(
                "Notification outcomes",
                [app("NotificationsSent"), app("NotificationsFailed")],
                [app("BeatHeartbeat")],
            ),
            graph(
                "Aurora: CPU %, ACU %, connections",
                [cluster.metric_cpu_utilization(period=minute), cluster.metric("ACUUtilization", period=minute)],
                [cluster.metric_database_connections(period=minute)],
            ),
        )
        dashboard.add_widgets(
            graph(
                "Redis: memory %, CPU %, evictions",
                [redis("DatabaseMemoryUsagePercentage", "Maximum"), redis("EngineCPUUtilization", "Maximum")],
                [redis("Evictions", "Sum")],
            ),
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=16, height=6),
        )
        return dashboard
