#!/usr/bin/env python3
"""Creates an IAM role on the stack's emulator that GitHub's OIDC provider may assume, with exactly
the given policy (a file), and prints its ARN as JSON: the identity the IAM tests deploy as, through
the same AssumeRoleWithWebIdentity a workflow makes (test infrastructure only)."""

import argparse
import json
import os
import sys

import boto3

GITHUB = "token.actions.githubusercontent.com"


def trust(account: str, repository: str) -> dict:
    """The trust policy GitHub's documentation gives for a repository's workflows."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{account}:oidc-provider/{GITHUB}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{GITHUB}:aud": "sts.amazonaws.com"},
                    "StringLike": {f"{GITHUB}:sub": f"repo:{repository}:*"},
                },
            }
        ],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("name")
    p.add_argument("policy_file", help="the identity policy document (JSON)")
    p.add_argument("--repository", default="org/app", help="owner/repo whose workflows may assume it")
    args = p.parse_args()
    kw = {"endpoint_url": os.environ["AWS_ENDPOINT_URL"], "region_name": os.environ.get("AWS_REGION", "us-east-1")}
    with open(args.policy_file) as f:
        document = f.read()
    json.loads(document)  # a broken document fails here, not as a puzzling AccessDenied later
    account = boto3.client("sts", **kw).get_caller_identity()["Account"]
    iam = boto3.client("iam", **kw)
    role = iam.create_role(RoleName=args.name, AssumeRolePolicyDocument=json.dumps(trust(account, args.repository)))
    iam.put_role_policy(RoleName=args.name, PolicyName="deploy", PolicyDocument=document)
    json.dump({"arn": role["Role"]["Arn"]}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
