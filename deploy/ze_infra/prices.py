"""Every unit price the cost model (cost.py) uses, in one place, with the date it was taken.

On-demand list prices in USD for sa-east-1 (São Paulo), taken from the AWS public price
pages on the date beside each group. They are approximations for a budget: re-check them
in the AWS Pricing Calculator before committing to a number, and update the date with the
value. No free tier, no savings plans, no reserved capacity.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    as_of: str


HOURS_PER_MONTH = 730

PRICES: dict[str, Price] = {
    # EC2 (Linux, on demand) and the gp3 root volumes Elastic Beanstalk gives them.
    "ec2.t4g.micro": Price(0.0134, "instance-hour", "2025-06"),
    "ec2.t4g.small": Price(0.0268, "instance-hour", "2025-06"),
    "ec2.t4g.medium": Price(0.0536, "instance-hour", "2025-06"),
    "ec2.c7g.large": Price(0.1157, "instance-hour", "2025-06"),
    "ebs.gp3": Price(0.152, "GB-month", "2025-06"),
    # Application Load Balancer.
    "alb.hour": Price(0.0340, "hour", "2025-06"),
    "alb.lcu": Price(0.0110, "LCU-hour", "2025-06"),
    # Aurora PostgreSQL Serverless v2, Aurora Standard storage configuration.
    "aurora.acu": Price(0.20, "ACU-hour", "2025-06"),
    "aurora.storage": Price(0.19, "GB-month", "2025-06"),
    "aurora.io": Price(0.32, "million I/O requests", "2025-06"),
    # ElastiCache for Redis OSS, per node.
    "elasticache.cache.t4g.micro": Price(0.026, "node-hour", "2025-06"),
    "elasticache.cache.t4g.medium": Price(0.104, "node-hour", "2025-06"),
    "elasticache.cache.m7g.large": Price(0.236, "node-hour", "2025-06"),
    # DMS replication instances (single-AZ; Multi-AZ is twice) and their storage.
    "dms.dms.t3.medium": Price(0.123, "instance-hour", "2025-06"),
    "dms.dms.r6i.large": Price(0.378, "instance-hour", "2025-06"),
    "dms.storage": Price(0.19, "GB-month", "2025-06"),
    # Redshift Serverless: compute billed per RPU-second while active (60 s minimum per
    # activity), managed storage per GB-month.
    "redshift.rpu": Price(0.563, "RPU-hour", "2025-06"),
    "redshift.storage": Price(0.0408, "GB-month", "2025-06"),
    # Messaging: SQS requests (each 64 KB of a payload is one request), SNS publishes and
    # their deliveries to an HTTP/S subscriber.
    "sqs.requests": Price(0.40, "million requests", "2025-06"),
    "sns.publish": Price(0.50, "million publishes", "2025-06"),
    "sns.https": Price(0.60, "million HTTP/S deliveries", "2025-06"),
    # AWS WAF: the web ACL, each rule or managed rule group in it, the requests it inspects.
    "waf.acl": Price(5.00, "web ACL-month", "2025-06"),
    "waf.rule": Price(1.00, "rule-month", "2025-06"),
    "waf.requests": Price(0.60, "million requests", "2025-06"),
    # Secrets Manager and KMS (customer managed keys; requests beyond the free tier).
    "secretsmanager.secret": Price(0.40, "secret-month", "2025-06"),
    "kms.key": Price(1.00, "key-month", "2025-06"),
    "kms.requests": Price(3.00, "million requests", "2025-06"),
    # Network.
    "nat.hour": Price(0.093, "gateway-hour", "2025-06"),
    "nat.gb": Price(0.093, "GB processed", "2025-06"),
    "transfer.out.gb": Price(0.15, "GB to the internet (first 10 TB)", "2025-06"),
    # CloudWatch Logs ingestion (JSON logs and EMF metric lines), vended logs (WAF, VPC flow
    # logs) delivered to CloudWatch Logs, and custom metrics.
    "logs.ingest.gb": Price(0.90, "GB ingested", "2025-06"),
    "logs.vended.gb": Price(0.90, "GB of vended logs ingested (first 10 TB)", "2025-06"),
    "cloudwatch.metric": Price(0.30, "metric-month", "2025-06"),
}


def price(key: str) -> float:
    return PRICES[key].usd
