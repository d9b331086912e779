#!/usr/bin/env python3
"""Creates, in the local stack's emulator, the AWS setup a user would have made with Terraform before
using ecs-deploy-action: an ECS cluster, a service and its task definition, and for canaries a second
(idle) service, two target groups and an ALB listener whose forward action splits traffic between them.

Used by the demo (scripts/demo) and the integration tests. Prints the resources as JSON on stdout.
Talks to AWS_ENDPOINT_URL with boto3 (it comes with moto): a real client, no shortcuts into moto.
"""

import argparse
import json
import os
import sys

import boto3


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cluster", default="demo")
    p.add_argument("--service", default="web")
    p.add_argument("--containers", default="web", help="comma-separated container names")
    p.add_argument("--image", default="public.ecr.aws/nginx/nginx:1.27", help="image of the current revision")
    p.add_argument("--desired", type=int, default=2)
    p.add_argument("--canary", action="store_true", help="also the canary service, target groups and ALB")
    p.add_argument("--canary-desired", type=int, default=0)
    p.add_argument("--weights", default="100,0", help="stable,canary forward weights")
    p.add_argument("--rule", action="store_true", help="put the weighted forward action on a listener rule")
    p.add_argument("--alarms", default="", help="comma-separated CloudWatch alarm names to create (state OK)")
    args = p.parse_args()

    region = os.environ.get("AWS_REGION", "us-east-1")
    kw = {"region_name": region, "endpoint_url": os.environ["AWS_ENDPOINT_URL"]}
    ecs = boto3.client("ecs", **kw)
    out = {"cluster": args.cluster, "service": args.service}

    ecs.create_cluster(clusterName=args.cluster)
    containers = [
        {
            "name": name,
            "image": args.image,
            "essential": i == 0,
            "memory": 256,
            "portMappings": [{"containerPort": 8080 + i, "protocol": "tcp"}],
            "environment": [{"name": "APP_ENV", "value": "demo"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/" + args.service}},
        }
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

    service_kw = {}
    if args.canary:
        ec2 = boto3.client("ec2", **kw)
        elb = boto3.client("elbv2", **kw)
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
        vpc = ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
        lb = elb.create_load_balancer(Name=args.service + "-alb", Subnets=subnets, Type="application")
        lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
        tgs = {}
        for role in ("stable", "canary"):
            tg = elb.create_target_group(
                Name=f"{args.service}-{role}",
                Protocol="HTTP",
                Port=8080,
                VpcId=vpc,
                TargetType="ip",
                HealthCheckPath="/health",
            )["TargetGroups"][0]
            tgs[role] = tg["TargetGroupArn"]
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
        groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
        network = {
            "awsvpcConfiguration": {
                "subnets": subnets,
                "securityGroups": [g["GroupId"] for g in groups][:1],
                "assignPublicIp": "DISABLED",
            }
        }
        service_kw = {"networkConfiguration": network}
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
    for _ in range(100):
        services = ecs.describe_services(cluster=args.cluster, services=names)["services"]
        if all(len(s["deployments"]) == 1 and s["deployments"][0].get("rolloutState") == "COMPLETED" for s in services):
            break
    else:
        raise SystemExit("seed: the services did not become stable (is scripts/moto_launcher.py serving?)")

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
