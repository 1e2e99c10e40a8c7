"""VPC and the security groups: only the paths the design needs are open."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from .common import retention
from .config import StageConfig


class Network(Construct):
    """Public subnets hold only the load balancer and the NAT gateways; the app
    instances and DMS sit in private subnets with egress (AWS APIs, package installs);
    Aurora, Redis and Redshift sit in isolated subnets with no route out."""

    def __init__(self, scope: Construct, id: str, *, cfg: StageConfig, key: kms.IKey) -> None:
        super().__init__(scope, id)
        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=retention(cfg.log_retention_days),
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY if cfg.name == "dev" else RemovalPolicy.RETAIN,
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cfg.vpc_cidr),
            availability_zones=list(cfg.availability_zones),
            nat_gateways=cfg.nat_gateways,
            restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20),
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        # Public subnets must not hand out public addresses: only the ALB and NAT live there.
        for subnet in self.vpc.public_subnets:
            subnet.node.default_child.map_public_ip_on_launch = False  # type: ignore[union-attr]

        vpc = self.vpc

        def sg(name: str, description: str) -> ec2.SecurityGroup:
            return ec2.SecurityGroup(
                self,
                name,
                vpc=vpc,
                description=description,
                allow_all_outbound=False,
                security_group_name=f"{cfg.prefix}-{name.lower()}",
            )

        self.alb_sg = sg("Alb", "Internet-facing ALB: HTTPS in, HTTP to the web instances")
        self.web_sg = sg("Web", "Web instances: HTTP from the ALB only")
        self.worker_sg = sg("Worker", "Celery workers and beat: no inbound")
        self.db_sg = sg("Database", "Aurora: PostgreSQL from the app and DMS")
        self.redis_sg = sg("Redis", "ElastiCache: Redis from the app")
        self.release_sg = sg("Release", "Release task (CodeBuild): to Aurora and HTTPS")
        self.dms_sg = sg("Dms", "DMS replication instance: to Aurora and Redshift")
        self.redshift_sg = sg("Redshift", "Redshift Serverless: from DMS")

        self.alb_sg.add_ingress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS and WSS from couriers, consumers, backoffice"
        )
        self.alb_sg.add_egress_rule(self.web_sg, ec2.Port.tcp(80), "to nginx on the web instances")
        self.web_sg.add_ingress_rule(self.alb_sg, ec2.Port.tcp(80), "from the ALB")

        for app_sg in (self.web_sg, self.worker_sg):
            app_sg.add_egress_rule(self.db_sg, ec2.Port.tcp(5432), "to Aurora")
            app_sg.add_egress_rule(self.redis_sg, ec2.Port.tcp(6379), "to Redis")
            # SQS, SNS, Secrets Manager, CloudWatch, the EB service and package mirrors
            # are HTTPS endpoints outside the VPC, reached through the NAT gateway.
            app_sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs over HTTPS")
            self.db_sg.add_ingress_rule(app_sg, ec2.Port.tcp(5432), "from the app")
            self.redis_sg.add_ingress_rule(app_sg, ec2.Port.tcp(6379), "from the app")

        # The release task migrates the database; it installs the bundle's locked
        # requirements and checked downloads over HTTPS.
        self.release_sg.add_egress_rule(self.db_sg, ec2.Port.tcp(5432), "to Aurora")
        self.release_sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs and package installs")
        self.db_sg.add_ingress_rule(self.release_sg, ec2.Port.tcp(5432), "from the release task")

        self.dms_sg.add_egress_rule(self.db_sg, ec2.Port.tcp(5432), "to Aurora (source)")
        self.dms_sg.add_egress_rule(self.redshift_sg, ec2.Port.tcp(5439), "to Redshift (target)")
        self.dms_sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "Secrets Manager and S3 over HTTPS")
        self.db_sg.add_ingress_rule(self.dms_sg, ec2.Port.tcp(5432), "from DMS")
        self.redshift_sg.add_ingress_rule(self.dms_sg, ec2.Port.tcp(5439), "from DMS")
        # Redshift reads the DMS staging files from S3 through the gateway endpoint.
        self.redshift_sg.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "S3 (COPY from the DMS staging bucket)"
        )
