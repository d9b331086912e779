#!/usr/bin/env python3
"""Creates an IAM user on the stack's emulator with exactly the given policy (a file) and prints its
access key as JSON: the identity the IAM tests deploy as (test infrastructure only)."""

import argparse
import json
import os
import sys

import boto3


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("name")
    p.add_argument("policy_file", help="the identity policy document (JSON)")
    args = p.parse_args()
    kw = {"endpoint_url": os.environ["AWS_ENDPOINT_URL"], "region_name": os.environ.get("AWS_REGION", "us-east-1")}
    iam = boto3.client("iam", **kw)
    with open(args.policy_file) as f:
        document = f.read()
    json.loads(document)  # a broken document fails here, not as a puzzling AccessDenied later
    iam.create_user(UserName=args.name)
    iam.put_user_policy(UserName=args.name, PolicyName="deploy", PolicyDocument=document)
    key = iam.create_access_key(UserName=args.name)["AccessKey"]
    json.dump({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
