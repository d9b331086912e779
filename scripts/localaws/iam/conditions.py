"""`aws:ResourceTag/<key>` in IAM policy conditions, for the stack's emulator (test infrastructure,
never shipped).

moto evaluates `StringEquals` only on the condition keys it knows (`sts:ExternalId`) and lets a
condition on any other key pass. AWS evaluates `aws:ResourceTag/<key>` against the tags of the
resource a call is authorized on, and a resource without that tag fails `StringEquals`. Here, before
each authorization, the resource's tags are read from moto's backends (ECS services, ELB target
groups and listener rules) and handed to moto's check of the caller's policy statements as
`aws:ResourceTag/<key>` values; a tag the resource does not have is there with a value no policy
names, so it fails as on AWS, and an Allow whose condition fails does not apply (moto took it for a
deny). The tag keys a call sets are `aws:TagKeys`, checked by `ForAllValues:StringEquals` (which
moto does not know either); `ecs:CreateAction` is the create a tagging belongs to, absent for a
tagging of its own.
"""

PREFIX = "aws:ResourceTag/"
ABSENT = "\0absent"

# The tags of the resource being authorized (the stack serves one request at a time).
_current = {}


class ResourceTags(dict):
    """Condition values: the resource's tags under `aws:ResourceTag/<key>`; every other such key is
    present with a value no policy names (a missing tag fails `StringEquals`)."""

    def __contains__(self, key):
        return str(key).startswith(PREFIX) or dict.__contains__(self, key)

    def __getitem__(self, key):
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        if str(key).startswith(PREFIX):
            return ABSENT
        raise KeyError(key)

    def __bool__(self):
        return True


def tags_of(arn, region, account):
    """The tags of `arn` as {key: value}; {} for a resource moto does not have (yet) or keeps none of."""
    try:
        if ":ecs:" in arn and ":service/" in arn:
            from moto.ecs.models import ecs_backends

            return {t["key"]: t["value"] for t in ecs_backends[account][region].list_tags_for_resource(arn)}
        if ":elasticloadbalancing:" in arn and ("targetgroup/" in arn or "listener-rule/" in arn) and not arn.endswith("*"):
            from moto.elbv2.models import elbv2_backends

            return dict(elbv2_backends[account][region].describe_tags([arn]).get(arn, {}))
    except Exception:  # noqa: BLE001 - a resource that is not there has no tags
        return {}
    return {}


def request_tag_keys(service, action, params):
    """The tag keys a call sets or removes (`aws:TagKeys`), or None for a call without tags."""
    if service == "ecs" and action == "UntagResource":
        return list(params.get("tagKeys") or [])
    if service == "ecs" and params.get("tags"):
        return [t.get("key") for t in params["tags"]]
    if service == "elasticloadbalancing":
        keys = [v for k, v in sorted(params.items()) if k.startswith("Tags.member.") and k.endswith(".Key")]
        return keys or ([v for k, v in sorted(params.items()) if k.startswith("TagKeys.member.")] or None)
    return None


def authorizing(arn, region, account, tag_keys=None, create_action=None):
    """The resource the next authorization is for, the tag keys the call sets, and the create that
    tags it (`ecs:CreateAction`: only a tagging made by a create has one)."""
    global _current
    _current = {PREFIX + k: v for k, v in tags_of(arn, region, account).items()}
    _current["ecs:CreateAction"] = create_action or ABSENT
    if tag_keys is not None:
        _current["aws:TagKeys"] = list(tag_keys)


def _for_all_values_string_equals(expected, actual):
    """Every value of the request's (a list) is one of the policy's."""
    allowed = expected if isinstance(expected, list) else [expected]
    return all(a in allowed for a in (actual if isinstance(actual, list) else [actual]))


def install():
    """Hands moto's check of an identity policy's statements the resource's tags (idempotent). moto
    gives those statements no condition values at all, and takes an Allow whose condition does not
    hold for an explicit deny; on AWS such a statement merely does not apply."""
    from moto.iam import access_control

    from moto.iam import policy_conditions

    statement = access_control.IAMPolicyStatement
    if getattr(statement, "_stack_resource_tags", False):
        return
    # moto knows StringEquals only; a deploy's policy restricts the tags it may set with this one.
    policy_conditions.CONDITION_OPERATIONS["ForAllValues:StringEquals"] = _for_all_values_string_equals
    original = statement.is_action_permitted

    def is_action_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):
        if principal is not None or incoming_condition_values is not None:
            return original(self, action, resource, principal, incoming_condition_values)
        result = original(self, action, resource, None, ResourceTags(_current))
        if result == access_control.PermissionResult.DENIED and self._statement.get("Effect") == "Allow":
            return access_control.PermissionResult.NEUTRAL
        return result

    statement.is_action_permitted = is_action_permitted
    statement._stack_resource_tags = True
