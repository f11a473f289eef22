#!/usr/bin/env python3
"""Checks the AWS double against botocore: botocore signs each request (SigV4, which the double
verifies) and parses each reply with the real service model, so a reply shape the SDKs would not
read fails here. Prints one JSON object; exit 0 when every call went through.

usage: botocore_check.py URL KEY_ID SECRET
"""
import json
import sys

import botocore.session
from botocore.exceptions import ClientError

url, key, secret = sys.argv[1:4]
session = botocore.session.get_session()
common = dict(region_name="eu-west-1", endpoint_url=url, aws_access_key_id=key,
              aws_secret_access_key=secret)
ec2 = session.create_client("ec2", **common)
out = {}

# DescribeInstances by filters (several filters; values ORed), every page (MaxResults 5).
pages = ec2.get_paginator("describe_instances").paginate(
    Filters=[{"Name": "tag:Service", "Values": ["web", "www"]},
             {"Name": "instance-state-name", "Values": ["running"]}],
    PaginationConfig={"PageSize": 5})
ids, page_count, addresses = [], 0, {}
for page in pages:
    page_count += 1
    for reservation in page["Reservations"]:
        for inst in reservation["Instances"]:
            ids.append(inst["InstanceId"])
            addresses[inst["InstanceId"]] = {
                "private": inst.get("PrivateIpAddress"),
                "public": inst.get("PublicIpAddress"),
                "state": inst["State"]["Name"],
                "zone": inst["Placement"]["AvailabilityZone"],
                "tags": {t["Key"]: t["Value"] for t in inst.get("Tags", [])},
            }
out["filtered_ids"] = sorted(ids)
out["pages"] = page_count
out["addresses"] = addresses

# An unknown filter is refused like EC2 does.
try:
    ec2.describe_instances(Filters=[{"Name": "colour", "Values": ["blue"]}])
    out["unknown_filter"] = "accepted"
except ClientError as e:
    out["unknown_filter"] = e.response["Error"]["Code"]

# MaxResults with instance ids is refused like EC2 does.
try:
    ec2.describe_instances(InstanceIds=[ids[0]], MaxResults=5)
    out["ids_with_max_results"] = "accepted"
except ClientError as e:
    out["ids_with_max_results"] = e.response["Error"]["Code"]

# The Auto Scaling side the double already had, read the same way.
asg = session.create_client("autoscaling", **common)
groups = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
out["groups"] = sorted(g["AutoScalingGroupName"] for g in groups)

print(json.dumps(out, sort_keys=True))
