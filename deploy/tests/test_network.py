from __future__ import annotations

from conftest import resources


def _ingress(cfn: dict) -> list[dict]:
    rules = [
        {**r["Properties"], "_group": r["Properties"]["GroupId"]}
        for r in resources(cfn, "AWS::EC2::SecurityGroupIngress").values()
    ]
    for logical, sg in resources(cfn, "AWS::EC2::SecurityGroup").items():
        for rule in sg["Properties"].get("SecurityGroupIngress", []):
            rules.append({**rule, "_group": {"Fn::GetAtt": [logical, "GroupId"]}})
    return rules


def _sg(cfn: dict, suffix: str) -> str:
    (logical,) = [
        k
        for k, v in resources(cfn, "AWS::EC2::SecurityGroup").items()
        if v["Properties"].get("GroupName", "").endswith(f"-{suffix}")
    ]
    return logical


def test_public_subnets_hold_no_instances_with_public_addresses(cfn):
    subnets = resources(cfn, "AWS::EC2::Subnet").values()
    assert subnets
    assert all(s["Properties"].get("MapPublicIpOnLaunch") is False for s in subnets)


def test_three_subnet_tiers_in_three_zones(cfn):
    names = [
        t["Value"]
        for s in resources(cfn, "AWS::EC2::Subnet").values()
        for t in s["Properties"]["Tags"]
        if t["Key"] == "aws-cdk:subnet-name"
    ]
    assert sorted(set(names)) == ["app", "data", "public"]
    assert len(names) == 9


def test_vpc_has_flow_logs(cfn):
    assert resources(cfn, "AWS::EC2::FlowLog")


def test_only_the_load_balancer_is_open_to_the_internet(cfn):
    open_rules = [r for r in _ingress(cfn) if r.get("CidrIp") == "0.0.0.0/0" or r.get("CidrIpv6") == "::/0"]
    alb = _sg(cfn, "alb")
    assert open_rules and all(r["_group"] == {"Fn::GetAtt": [alb, "GroupId"]} for r in open_rules)
    assert {(r["FromPort"], r["ToPort"]) for r in open_rules} == {(443, 443)}


def test_database_accepts_postgres_only_from_app_release_task_and_dms(cfn):
    db = {"Fn::GetAtt": [_sg(cfn, "database"), "GroupId"]}
    rules = [r for r in _ingress(cfn) if r["_group"] == db]
    sources = {r["SourceSecurityGroupId"]["Fn::GetAtt"][0] for r in rules}
    assert sources == {_sg(cfn, "web"), _sg(cfn, "worker"), _sg(cfn, "release"), _sg(cfn, "dms")}
    assert all((r["FromPort"], r["ToPort"]) == (5432, 5432) for r in rules)


def test_redis_accepts_only_the_app(cfn):
    redis = {"Fn::GetAtt": [_sg(cfn, "redis"), "GroupId"]}
    rules = [r for r in _ingress(cfn) if r["_group"] == redis]
    assert {r["SourceSecurityGroupId"]["Fn::GetAtt"][0] for r in rules} == {_sg(cfn, "web"), _sg(cfn, "worker")}
    assert all((r["FromPort"], r["ToPort"]) == (6379, 6379) for r in rules)


def test_web_instances_accept_only_the_load_balancer(cfn):
    web = {"Fn::GetAtt": [_sg(cfn, "web"), "GroupId"]}
    rules = [r for r in _ingress(cfn) if r["_group"] == web]
    assert [r["SourceSecurityGroupId"]["Fn::GetAtt"][0] for r in rules] == [_sg(cfn, "alb")]


def test_no_security_group_allows_all_outbound(cfn):
    for sg in resources(cfn, "AWS::EC2::SecurityGroup").values():
        for rule in sg["Properties"].get("SecurityGroupEgress", []):
            assert rule.get("IpProtocol") != "-1" or rule.get("CidrIp") == "255.255.255.255/32"
    for rule in resources(cfn, "AWS::EC2::SecurityGroupEgress").values():
        assert rule["Properties"]["IpProtocol"] == "tcp"
