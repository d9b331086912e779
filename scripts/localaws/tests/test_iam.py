"""The stack's IAM enforcement: each call authorized against the resources AWS names for it, and
CloudWatch's actions as `cloudwatch:`; a live check that a scoped policy allows its resource only, and that a condition on a resource tag reaches tagged resources only."""

import json
import urllib.request

import boto3
import botocore
import botocore.config
import pytest
from botocore.exceptions import ClientError

from localaws.iam.conditions import ABSENT, ResourceTags
from localaws.iam.resources import implied, resources

R, A = "us-east-1", "123456789012"


def test_ecs_calls_are_authorized_against_their_services_tasks_and_revisions():
    arn = f"arn:aws:ecs:{R}:{A}"
    assert resources("ecs", "DescribeServices", {"cluster": "demo", "services": ["web"]}, R, A) == [f"{arn}:service/demo/web"]
    assert resources("ecs", "UpdateService", {"cluster": f"{arn}:cluster/demo", "service": "web"}, R, A) == [f"{arn}:service/demo/web"]
    assert resources("ecs", "DescribeTasks", {"cluster": "demo", "tasks": ["abc", f"{arn}:task/demo/def"]}, R, A) == [
        f"{arn}:task/demo/abc",
        f"{arn}:task/demo/def",
    ]
    assert resources("ecs", "RunTask", {"cluster": "demo", "taskDefinition": "web:3"}, R, A) == [f"{arn}:task-definition/web:3"]
    assert resources("ecs", "TagResource", {"resourceArn": f"{arn}:service/demo/web"}, R, A) == [f"{arn}:service/demo/web"]
    assert resources("ecs", "RegisterTaskDefinition", {"family": "web"}, R, A) == ["*"]
    assert resources("ecs", "ListTasks", {"cluster": "demo"}, R, A) == ["*"]
    deployment = f"{arn}:service-deployment/demo/web/abc"
    assert resources("ecs", "ListServiceDeployments", {"cluster": "demo", "service": "web"}, R, A) == [f"{arn}:service/demo/web"]
    assert resources("ecs", "DescribeServiceDeployments", {"serviceDeploymentArns": [deployment]}, R, A) == [deployment]
    for answer in ("ContinueServiceDeployment", "StopServiceDeployment"):
        assert resources("ecs", answer, {"serviceDeploymentArn": deployment, "hookId": "h"}, R, A) == [deployment]


def test_other_services_name_their_listener_alarms_log_streams_and_repositories():
    assert resources("elasticloadbalancing", "ModifyListener", {"ListenerArn": "arn:l"}, R, A) == ["arn:l"]
    assert resources("elasticloadbalancing", "DescribeTargetHealth", {"TargetGroupArn": "arn:t"}, R, A) == ["*"]
    alarms = {"AlarmNames.member.1": "a", "AlarmNames.member.2": "b"}
    assert resources("monitoring", "DescribeAlarms", alarms, R, A) == [
        f"arn:aws:cloudwatch:{R}:{A}:alarm:a",
        f"arn:aws:cloudwatch:{R}:{A}:alarm:b",
    ]
    assert resources("monitoring", "GetMetricData", {}, R, A) == ["*"]
    logs = {"logGroupName": "/ecs/web", "logStreamName": "ecs/web/1"}
    assert resources("logs", "GetLogEvents", logs, R, A) == [f"arn:aws:logs:{R}:{A}:log-group:/ecs/web:log-stream:ecs/web/1"]
    assert resources("ecr", "DescribeRepositories", {"repositoryNames": ["app"]}, R, A) == [f"arn:aws:ecr:{R}:{A}:repository/app"]
    assert resources("ecr", "GetAuthorizationToken", {}, R, A) == ["*"]


def test_what_setup_creates_is_authorized_by_name_and_its_tags_as_a_tagging():
    elb = f"arn:aws:elasticloadbalancing:{R}:{A}"
    create = {"Name": "web-canary", "Tags.member.1.Key": "k", "Tags.member.1.Value": "v"}
    assert resources("elasticloadbalancing", "CreateTargetGroup", create, R, A) == [f"{elb}:targetgroup/web-canary/*"]
    assert implied("elasticloadbalancing", "CreateTargetGroup", create, R, A, None) == [("elasticloadbalancing:AddTags", f"{elb}:targetgroup/web-canary/*")]
    assert implied("elasticloadbalancing", "CreateTargetGroup", {"Name": "web-canary"}, R, A, None) == []
    assert resources("elasticloadbalancing", "DeleteTargetGroup", {"TargetGroupArn": "arn:t"}, R, A) == ["arn:t"]
    service = f"arn:aws:ecs:{R}:{A}:service/demo/web-canary"
    params = {"cluster": "demo", "serviceName": "web-canary", "tags": [{"key": "k", "value": "v"}]}
    assert resources("ecs", "CreateService", params, R, A) == [service]
    assert implied("ecs", "CreateService", params, R, A, None) == [("ecs:TagResource", service)]
    assert resources("ecs", "DeleteService", {"cluster": "demo", "service": "web-canary"}, R, A) == [service]
    role = f"arn:aws:iam::{A}:role/ecsInfrastructureRoleForLoadBalancers"
    update = {"cluster": "demo", "service": "web", "loadBalancers": [{"targetGroupArn": "t", "advancedConfiguration": {"roleArn": role}}]}
    assert implied("ecs", "UpdateService", update, R, A, None) == [("iam:PassRole", role)]
    assert implied("ecs", "UpdateService", {"cluster": "demo", "service": "web", "desiredCount": 2}, R, A, None) == []
    assert resources("elasticloadbalancing", "CreateRule", {"ListenerArn": "arn:l"}, R, A) == ["arn:l"]
    assert resources("events", "ListTargetsByRule", {"Rule": "nightly"}, R, A) == [f"arn:aws:events:{R}:{A}:rule/nightly"]
    alarm = f"arn:aws:cloudwatch:{R}:{A}:alarm:web-canary-5xx"
    assert resources("monitoring", "PutMetricAlarm", {"AlarmName": "web-canary-5xx"}, R, A) == [alarm]
    assert resources("monitoring", "DeleteAlarms", {"AlarmNames.member.1": "web-canary-5xx"}, R, A) == [alarm]


def test_registering_a_revision_passes_its_roles_and_tags_the_new_revision():
    params = {
        "family": "web",
        "taskRoleArn": f"arn:aws:iam::{A}:role/app",
        "executionRoleArn": f"arn:aws:iam::{A}:role/exec",
        "tags": [{"key": "team", "value": "platform"}],
    }
    assert implied("ecs", "RegisterTaskDefinition", params, R, A, lambda family: 3) == [
        ("iam:PassRole", f"arn:aws:iam::{A}:role/app"),
        ("iam:PassRole", f"arn:aws:iam::{A}:role/exec"),
        ("ecs:TagResource", f"arn:aws:ecs:{R}:{A}:task-definition/web:3"),
    ]
    assert implied("ecs", "RegisterTaskDefinition", {"family": "web"}, R, A, lambda family: 1) == []
    assert implied("ecs", "UpdateService", params, R, A, lambda family: 1) == []


@pytest.fixture
def enforced(stack):
    """IAM enforcement on for the test's calls, off again after (moto's own switch)."""

    def switch(count):
        # text/plain: a form body would be read as a form and leave moto no number.
        headers = {"Content-Type": "text/plain"}
        req = urllib.request.Request(stack.endpoint + "/moto-api/reset-auth", data=count.encode(), method="POST", headers=headers)
        urllib.request.urlopen(req).read()

    yield switch
    switch("inf")


def test_a_policy_scoped_to_one_service_allows_that_service_only(stack, enforced):
    stack.seed("--desired", "1")
    stack.seed("--service", "other", "--desired", "1")
    iam = boto3.client("iam", endpoint_url=stack.endpoint, region_name=R, aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_user(UserName="scoped")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["ecs:DescribeServices"], "Resource": f"arn:aws:ecs:{R}:{A}:service/demo/web"},
            {"Effect": "Allow", "Action": ["cloudwatch:DescribeAlarms"], "Resource": "*"},
        ],
    }
    iam.put_user_policy(UserName="scoped", PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="scoped")["AccessKey"]
    kw = {"endpoint_url": stack.endpoint, "region_name": R, "aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    ecs, cw = boto3.client("ecs", **kw), boto3.client("cloudwatch", **kw)
    enforced("0")
    assert ecs.describe_services(cluster="demo", services=["web"])["services"][0]["serviceName"] == "web"
    with pytest.raises(ClientError, match=f"not authorized to perform: ecs:DescribeServices on resource: arn:aws:ecs:{R}:{A}:service/demo/other") as refused:
        ecs.describe_services(cluster="demo", services=["other"])
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException", "ECS answers in JSON, as on AWS"
    with pytest.raises(ClientError, match="not authorized to perform: cloudwatch:GetMetricData") as refused:
        cw.get_metric_data(MetricDataQueries=[], StartTime=0, EndTime=1)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError, match="not authorized to perform: ecs:UpdateService"):
        ecs.update_service(cluster="demo", service="web", desiredCount=2)
    assert cw.describe_alarms()["MetricAlarms"] == [], "CloudWatch's actions are cloudwatch:, not monitoring:"


def test_a_role_assumed_with_a_web_identity_token_has_exactly_its_policy(stack, enforced):
    """The OIDC path of a workflow: an unsigned AssumeRoleWithWebIdentity (as on AWS), then every
    call made with the session is authorized against the role's policy."""
    stack.seed("--desired", "1")
    iam = boto3.client("iam", endpoint_url=stack.endpoint, region_name=R, aws_access_key_id="testing", aws_secret_access_key="testing")
    role = iam.create_role(RoleName="deploy", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["ecs:DescribeServices"], "Resource": "*"}]}
    iam.put_role_policy(RoleName="deploy", PolicyName="p", PolicyDocument=json.dumps(policy))
    enforced("0")
    # No credentials of its own: botocore sends this call unsigned, as the action's SDK does.
    sts = boto3.client("sts", endpoint_url=stack.endpoint, region_name=R, config=botocore.config.Config(signature_version=botocore.UNSIGNED))
    creds = sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="run-1", WebIdentityToken="a.b.c")["Credentials"]
    kw = {
        "endpoint_url": stack.endpoint,
        "region_name": R,
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }
    ecs = boto3.client("ecs", **kw)
    assert ecs.describe_services(cluster="demo", services=["web"])["services"][0]["serviceName"] == "web"
    with pytest.raises(ClientError, match="assumed-role/deploy/run-1 is not authorized to perform: ecs:UpdateService"):
        ecs.update_service(cluster="demo", service="web", desiredCount=2)


def test_a_registration_needs_pass_role_on_its_roles_and_tag_resource_for_its_tags(stack, enforced):
    """What moto never checks: AWS authorizes iam:PassRole on a new revision's roles and, when it is
    tagged, ecs:TagResource on the revision being created."""
    iam = boto3.client("iam", endpoint_url=stack.endpoint, region_name=R, aws_access_key_id="testing", aws_secret_access_key="testing")
    register = {"Effect": "Allow", "Action": ["ecs:RegisterTaskDefinition"], "Resource": "*"}
    pass_role = {"Effect": "Allow", "Action": ["iam:PassRole"], "Resource": f"arn:aws:iam::{A}:role/exec"}
    tag = {"Effect": "Allow", "Action": ["ecs:TagResource"], "Resource": f"arn:aws:ecs:{R}:{A}:task-definition/web:*"}
    keys = {}
    for name, statements in [("register", [register]), ("pass", [register, pass_role]), ("all", [register, pass_role, tag])]:
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
        keys[name] = iam.create_access_key(UserName=name)["AccessKey"]

    def register_as(name, **extra):
        k = keys[name]
        ecs = boto3.client("ecs", endpoint_url=stack.endpoint, region_name=R, aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"])
        containers = [{"name": "web", "image": stack.image, "memory": 64}]
        return ecs.register_task_definition(family="web", containerDefinitions=containers, executionRoleArn=f"arn:aws:iam::{A}:role/exec", **extra)

    enforced("0")
    with pytest.raises(ClientError, match=f"not authorized to perform: iam:PassRole on resource: arn:aws:iam::{A}:role/exec"):
        register_as("register")
    assert register_as("pass")["taskDefinition"]["revision"] == 1, "untagged: no ecs:TagResource needed"
    with pytest.raises(ClientError, match=f"not authorized to perform: ecs:TagResource on resource: arn:aws:ecs:{R}:{A}:task-definition/web:2"):
        register_as("pass", tags=[{"key": "team", "value": "platform"}])
    assert register_as("all", tags=[{"key": "team", "value": "platform"}])["taskDefinition"]["revision"] == 2


def test_a_form_body_is_kept_as_signed_and_still_readable():
    import io

    from localaws.iam import resources as r

    body = b"Action=PutMetricAlarm&AlarmDescription=5xx%20of%20web%27s%20canary"
    environ = {"CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    r.keep_raw_body(environ)
    assert r._raw_body == body, "the signature is checked against the bytes sent, %20 and all"
    assert environ["wsgi.input"].read() == body, "moto still reads the whole body"
    r.keep_raw_body({"CONTENT_TYPE": "application/x-amz-json-1.1", "wsgi.input": io.BytesIO(b"{}")})
    assert r._raw_body == b"", "JSON bodies reach moto whole already"


def test_a_missing_tag_is_a_value_no_policy_names():
    values = ResourceTags({"aws:ResourceTag/team": "a", "sts:ExternalId": "x"})
    assert "aws:ResourceTag/team" in values and values["aws:ResourceTag/team"] == "a"
    assert "aws:ResourceTag/other" in values and values["aws:ResourceTag/other"] == ABSENT
    assert "ecs:cluster" not in values, "other keys stay moto's"
    assert bool(ResourceTags()), "no tag at all is still a set of values to check"


def test_a_delete_conditioned_on_a_tag_reaches_only_tagged_resources(stack, enforced):
    stack.seed("--alb", "--desired", "0")
    ecs_admin = boto3.client("ecs", endpoint_url=stack.endpoint, region_name=R, aws_access_key_id="testing", aws_secret_access_key="testing")
    for name, tags in (("web-pr-1", [{"key": "owner", "value": "web"}]), ("web-pr-2", [])):
        ecs_admin.create_service(cluster="demo", serviceName=name, taskDefinition="web:1", desiredCount=0, **({"tags": tags} if tags else {}))
    iam = boto3.client("iam", endpoint_url=stack.endpoint, region_name=R, aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_user(UserName="previews")
    statement = {
        "Effect": "Allow",
        "Action": ["ecs:DeleteService"],
        "Resource": f"arn:aws:ecs:{R}:{A}:service/demo/web-pr-*",
        "Condition": {"StringEquals": {"aws:ResourceTag/owner": "web"}},
    }
    iam.put_user_policy(UserName="previews", PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    key = iam.create_access_key(UserName="previews")["AccessKey"]
    ecs = boto3.client("ecs", endpoint_url=stack.endpoint, region_name=R, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    enforced("0")
    with pytest.raises(ClientError, match=f"not authorized to perform: ecs:DeleteService on resource: arn:aws:ecs:{R}:{A}:service/demo/web-pr-2"):
        ecs.delete_service(cluster="demo", service="web-pr-2", force=True)
    assert ecs.delete_service(cluster="demo", service="web-pr-1", force=True)["service"]["serviceName"] == "web-pr-1"


def test_tag_keys_a_call_sets_are_checked_against_for_all_values():
    from localaws.iam.conditions import _for_all_values_string_equals as for_all, request_tag_keys

    assert request_tag_keys("ecs", "TagResource", {"tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]}) == ["a", "b"]
    assert request_tag_keys("ecs", "UntagResource", {"tagKeys": ["a"]}) == ["a"]
    assert request_tag_keys("ecs", "UpdateService", {"service": "web"}) is None
    assert request_tag_keys("elasticloadbalancing", "AddTags", {"Tags.member.1.Key": "k", "Tags.member.1.Value": "v"}) == ["k"]
    assert for_all(["a", "b"], ["a"]) and not for_all(["a"], ["a", "c"])


def test_a_tagging_limited_to_some_keys_refuses_others(stack, enforced):
    stack.seed("--desired", "0")
    iam = boto3.client("iam", endpoint_url=stack.endpoint, region_name=R, aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_user(UserName="tagger")
    statement = {
        "Effect": "Allow",
        "Action": ["ecs:TagResource"],
        "Resource": f"arn:aws:ecs:{R}:{A}:service/demo/web",
        "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["lease"]}},
    }
    iam.put_user_policy(UserName="tagger", PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    key = iam.create_access_key(UserName="tagger")["AccessKey"]
    ecs = boto3.client("ecs", endpoint_url=stack.endpoint, region_name=R, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    arn = f"arn:aws:ecs:{R}:{A}:service/demo/web"
    enforced("0")
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "lease", "value": "x"}])
    with pytest.raises(ClientError, match="not authorized to perform: ecs:TagResource"):
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "lease", "value": "x"}, {"key": "other", "value": "y"}])


def test_a_tagging_allowed_only_on_create_is_refused_on_its_own(stack, enforced):
    """`ecs:CreateAction`: a statement for the tags a create sets does not allow a TagResource later."""
    stack.seed("--desired", "0")
    iam = boto3.client("iam", endpoint_url=stack.endpoint, region_name=R, aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_user(UserName="creator")
    statements = [
        {"Effect": "Allow", "Action": ["ecs:CreateService"], "Resource": f"arn:aws:ecs:{R}:{A}:service/demo/*"},
        {
            "Effect": "Allow",
            "Action": ["ecs:TagResource"],
            "Resource": f"arn:aws:ecs:{R}:{A}:service/demo/*",
            "Condition": {"StringEquals": {"ecs:CreateAction": "CreateService"}},
        },
    ]
    iam.put_user_policy(UserName="creator", PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName="creator")["AccessKey"]
    ecs = boto3.client("ecs", endpoint_url=stack.endpoint, region_name=R, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    enforced("0")
    made = ecs.create_service(cluster="demo", serviceName="made", taskDefinition="web:1", desiredCount=0, tags=[{"key": "k", "value": "v"}])
    with pytest.raises(ClientError, match="not authorized to perform: ecs:TagResource"):
        ecs.tag_resource(resourceArn=made["service"]["serviceArn"], tags=[{"key": "later", "value": "v"}])


def test_a_rules_targets_are_put_on_the_rule_and_pass_their_role():
    params = {"Rule": "nightly", "Targets": [{"Id": "1", "Arn": "arn:c", "RoleArn": f"arn:aws:iam::{A}:role/events"}]}
    assert resources("events", "PutTargets", params, R, A) == [f"arn:aws:events:{R}:{A}:rule/nightly"]
    assert implied("events", "PutTargets", params, R, A, lambda family: 1) == [("iam:PassRole", f"arn:aws:iam::{A}:role/events")]
