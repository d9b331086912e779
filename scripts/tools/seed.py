#!/usr/bin/env python3
"""Creates, in the local stack's emulator, the AWS setup a user would have made with Terraform before
using ecs-deploy-action: an ECS cluster, a service and its task definition, and for canaries a second
(idle) service, two target groups and an ALB listener whose forward action splits traffic between them;
or (--alb) a plain service behind one target group and a listener, which `ecs-deploy-action setup`
turns into that.

Used by the demo (scripts/demo) and the integration tests. Prints the resources as JSON on stdout.
Talks to AWS_ENDPOINT_URL with boto3 (it comes with moto): a real client, no shortcuts into moto. The
services run the demo app's real image (DEMO_IMAGE, pushed to the local registry by
scripts/demo-image), and the seed waits, like `aws ecs wait services-stable`, until its tasks are
running and healthy.
"""

import argparse
import json
import os
import sys
import time

import boto3


def _target_group(elb, name, vpc, delay):
    tg = elb.create_target_group(
        Name=name,
        Protocol="HTTP",
        Port=8080,
        VpcId=vpc,
        TargetType="ip",
        HealthCheckPath="/health",
        # What a team tuning for deploy speed sets: a check every 5 s, healthy after 2.
        HealthCheckIntervalSeconds=5,
        HealthCheckTimeoutSeconds=4,
        HealthyThresholdCount=2,
        UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}]
    )
    return tg


def _native(args, elb, subnets, vpc, container, out) -> dict:
    """ECS's own strategy: blue and green target groups, a production listener (port 80) and a test
    listener (port 8080), each with a rule forwarding blue 100 / green 0; the service's load balancer
    entry names them in advancedConfiguration."""
    lb_arn = elb.create_load_balancer(Name=args.service + "-alb", Subnets=subnets, Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    blue = _target_group(elb, f"{args.service}-blue", vpc, args.deregistration_delay)
    green = _target_group(elb, f"{args.service}-green", vpc, args.deregistration_delay)
    forward = [{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": blue, "Weight": 100}, {"TargetGroupArn": green, "Weight": 0}]}}]
    fixed = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]
    rules = {}
    for name, port in (("production", 80), ("test", 8080)):
        listener = elb.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=port, DefaultActions=fixed)["Listeners"][0]
        rule = elb.create_rule(
            ListenerArn=listener["ListenerArn"], Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/*"]}], Actions=forward
        )["Rules"][0]
        rules[name] = rule["RuleArn"]
        out[f"{name}_listener_arn"] = listener["ListenerArn"]
    role = "arn:aws:iam::123456789012:role/ecsInfrastructureRoleForLoadBalancers"
    out.update(
        load_balancer_arn=lb_arn,
        listener_arn=out["production_listener_arn"],
        blue_target_group_arn=blue,
        green_target_group_arn=green,
        production_rule_arn=rules["production"],
        test_rule_arn=rules["test"],
        infrastructure_role_arn=role,
    )
    strategy = {"blue-green": "BLUE_GREEN", "linear": "LINEAR", "canary": "CANARY"}[args.native]
    config = {"strategy": strategy, "bakeTimeInMinutes": args.bake, "maximumPercent": 200, "minimumHealthyPercent": 100}
    if strategy == "LINEAR":
        config["linearConfiguration"] = {"stepPercent": args.step_percent, "stepBakeTimeInMinutes": args.step_bake}
    if strategy == "CANARY":
        config["canaryConfiguration"] = {"canaryPercent": args.canary_percent, "canaryBakeTimeInMinutes": args.canary_bake}
    if args.native_alarms and args.alarms:
        config["alarms"] = {"alarmNames": args.alarms.split(","), "enable": True, "rollback": True}
    advanced = {"alternateTargetGroupArn": green, "productionListenerRule": rules["production"], "testListenerRule": rules["test"], "roleArn": role}
    return {
        "deploymentConfiguration": config,
        "loadBalancers": [{"targetGroupArn": blue, "containerName": container, "containerPort": 8080, "advancedConfiguration": advanced}],
    }


def _plain_alb(args, elb, subnets, vpc, container, out) -> list:
    """A service as most teams have one before a canary: one target group, forwarded to by the
    listener's default action (or by a listener rule with --rule) in its simple form."""
    lb_arn = elb.create_load_balancer(Name=args.service + "-alb", Subnets=subnets, Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    tg = _target_group(elb, args.service, vpc, args.deregistration_delay)
    forward = [{"Type": "forward", "TargetGroupArn": tg}]
    fixed = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]
    listener = elb.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80, DefaultActions=fixed if args.rule else forward)["Listeners"][0]
    out.update(load_balancer_arn=lb_arn, listener_arn=listener["ListenerArn"], target_group_arn=tg)
    if args.rule:
        rule = elb.create_rule(
            ListenerArn=listener["ListenerArn"], Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/*"]}], Actions=forward
        )["Rules"][0]
        out["listener_rule_arn"] = rule["RuleArn"]
    return [{"targetGroupArn": tg, "containerName": container, "containerPort": 8080}]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cluster", default="demo")
    p.add_argument("--service", default="web")
    p.add_argument("--containers", default="web", help="comma-separated container names")
    p.add_argument("--image", default=os.environ.get("DEMO_IMAGE"), help="image of the current revision (default: $DEMO_IMAGE)")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the current revision's first container")
    p.add_argument("--deregistration-delay", type=int, default=30, help="target groups' delay, in AWS seconds")
    p.add_argument("--circuit-breaker", default="rollback", choices=["off", "on", "rollback"])
    p.add_argument("--desired", type=int, default=2)
    p.add_argument("--no-logs", action="store_true", help="containers without a log configuration (no awslogs)")
    p.add_argument("--canary", action="store_true", help="also the canary service, target groups and ALB")
    p.add_argument("--canary-desired", type=int, default=0)
    p.add_argument("--alb", action="store_true", help="a plain service behind an ALB: one target group, a listener (or with --rule a listener rule) forwarding to it; what `ecs-deploy-action setup` starts from")
    p.add_argument("--weights", default="100,0", help="stable,canary forward weights")
    p.add_argument("--rule", action="store_true", help="put the weighted forward action on a listener rule")
    p.add_argument("--alarms", default="", help="comma-separated CloudWatch alarm names to create (state OK)")
    p.add_argument("--native", choices=["blue-green", "linear", "canary"], help="set the service up for ECS's own strategy: blue and green target groups, a production and a test listener rule")
    p.add_argument("--bake", type=int, default=1, help="native: bakeTimeInMinutes")
    p.add_argument("--step-percent", type=float, default=50.0, help="native linear: stepPercent")
    p.add_argument("--step-bake", type=int, default=1, help="native linear: stepBakeTimeInMinutes")
    p.add_argument("--canary-percent", type=float, default=10.0, help="native canary: canaryPercent")
    p.add_argument("--canary-bake", type=int, default=1, help="native canary: canaryBakeTimeInMinutes")
    p.add_argument("--native-alarms", action="store_true", help="native: the created alarms roll the deployment back (deploymentConfiguration.alarms)")
    p.add_argument("--controller", choices=["ECS", "CODE_DEPLOY", "EXTERNAL"], default="ECS", help="the service's deployment controller")
    args = p.parse_args()
    if not args.image:
        raise SystemExit("seed: no image: set DEMO_IMAGE (scripts/demo-image pushes the demo app and prints it) or pass --image")

    region = os.environ.get("AWS_REGION", "us-east-1")
    kw = {"region_name": region, "endpoint_url": os.environ["AWS_ENDPOINT_URL"]}
    ecs = boto3.client("ecs", **kw)
    out = {"cluster": args.cluster, "service": args.service}

    ecs.create_cluster(clusterName=args.cluster)
    logs = boto3.client("logs", **kw)
    try:
        logs.create_log_group(logGroupName="/ecs/" + args.service)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass  # as Terraform would leave it: the group is there
    containers = [
        {
            "name": name,
            "image": args.image,
            "essential": i == 0,
            "memory": 256,
            "portMappings": [{"containerPort": 8080 + i, "protocol": "tcp"}],
            "environment": [{"name": "APP_ENV", "value": "demo"}, {"name": "PORT", "value": str(8080 + i)}]
            + ([{"name": k, "value": v} for k, v in (e.split("=", 1) for e in args.env)] if i == 0 else []),
        }
        | (
            {}
            if args.no_logs
            else {
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": "/ecs/" + args.service, "awslogs-region": region, "awslogs-stream-prefix": "ecs"},
                }
            }
        )
        for i, name in enumerate(args.containers.split(","))
    ]
    td = ecs.register_task_definition(
        family=args.service,
        containerDefinitions=containers,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        executionRoleArn="arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        tags=[{"key": "team", "value": "platform"}],
    )["taskDefinition"]
    out["task_definition_arn"] = td["taskDefinitionArn"]

    breaker = {"enable": args.circuit_breaker != "off", "rollback": args.circuit_breaker == "rollback"}
    service_kw = {"deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100, "deploymentCircuitBreaker": breaker}}
    # An awsvpc service has its network configuration, as ECS requires (RunTask copies it).
    ec2 = boto3.client("ec2", **kw)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    vpc = ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    service_kw["networkConfiguration"] = {
        "awsvpcConfiguration": {
            "subnets": subnets,
            "securityGroups": [g["GroupId"] for g in groups][:1],
            "assignPublicIp": "DISABLED",
        }
    }
    if args.controller != "ECS":
        service_kw["deploymentController"] = {"type": args.controller}
    if args.native:
        service_kw.update(_native(args, boto3.client("elbv2", **kw), subnets, vpc, containers[0]["name"], out))
    if args.alb:
        service_kw["loadBalancers"] = _plain_alb(args, boto3.client("elbv2", **kw), subnets, vpc, containers[0]["name"], out)
    if args.canary:
        elb = boto3.client("elbv2", **kw)
        lb = elb.create_load_balancer(Name=args.service + "-alb", Subnets=subnets, Type="application")
        lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
        tgs = {}
        for role in ("stable", "canary"):
            tgs[role] = _target_group(elb, f"{args.service}-{role}", vpc, args.deregistration_delay)
        stable_w, canary_w = (int(w) for w in args.weights.split(","))
        forward = [
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": tgs["stable"], "Weight": stable_w},
                        {"TargetGroupArn": tgs["canary"], "Weight": canary_w},
                    ]
                },
            }
        ]
        fixed = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]
        listener = elb.create_listener(
            LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80, DefaultActions=fixed if args.rule else forward
        )["Listeners"][0]
        out.update(
            load_balancer_arn=lb_arn,
            listener_arn=listener["ListenerArn"],
            stable_target_group_arn=tgs["stable"],
            canary_target_group_arn=tgs["canary"],
            canary_service=args.service + "-canary",
        )
        if args.rule:
            rule = elb.create_rule(
                ListenerArn=listener["ListenerArn"],
                Priority=10,
                Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
                Actions=forward,
            )["Rules"][0]
            out["listener_rule_arn"] = rule["RuleArn"]
        ecs.create_service(
            cluster=args.cluster,
            serviceName=out["canary_service"],
            taskDefinition=td["taskDefinitionArn"],
            desiredCount=args.canary_desired,
            launchType="FARGATE",
            loadBalancers=[{"targetGroupArn": tgs["canary"], "containerName": containers[0]["name"], "containerPort": 8080}],
            **service_kw,
        )
        service_kw["loadBalancers"] = [
            {"targetGroupArn": tgs["stable"], "containerName": containers[0]["name"], "containerPort": 8080}
        ]
    ecs.create_service(
        cluster=args.cluster,
        serviceName=args.service,
        taskDefinition=td["taskDefinitionArn"],
        desiredCount=args.desired,
        launchType="FARGATE",
        **service_kw,
    )

    # Like `aws ecs wait services-stable`: a user's services are steady before they deploy.
    names = [args.service] + ([out["canary_service"]] if args.canary else [])
    if args.controller != "ECS":
        names = []  # ECS does not roll out a service it does not control
    deadline = time.monotonic() + 90
    while True:
        services = ecs.describe_services(cluster=args.cluster, services=names)["services"]
        if all(len(s["deployments"]) == 1 and s["deployments"][0].get("rolloutState") == "COMPLETED" for s in services):
            break
        if time.monotonic() > deadline:
            events = [e["message"] for s in services for e in s.get("events", [])[:5]]
            raise SystemExit("seed: the services did not become stable within 90 s; last events:\n  " + "\n  ".join(events))
        time.sleep(0.1)

    if args.alarms:
        cw = boto3.client("cloudwatch", **kw)
        for name in args.alarms.split(","):
            cw.put_metric_alarm(
                AlarmName=name,
                MetricName="HTTPCode_Target_5XX_Count",
                Namespace="AWS/ApplicationELB",
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1.0,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
            cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="seeded")
        out["alarms"] = args.alarms.split(",")

    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
