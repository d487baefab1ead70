"""revision_label: what a CodeDeploy revision is called in per-version metrics."""

import json
from typing import Any

import pytest
import yaml
from rollguard.adapters.codedeploy import revision_label

LAMBDA_SPEC: dict[str, Any] = {
    "version": 0.0,
    "Resources": [
        {
            "checkout": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Name": "checkout", "Alias": "live", "CurrentVersion": "6", "TargetVersion": "7"},
            }
        }
    ],
}
ECS_SPEC: dict[str, Any] = {
    "version": 0.0,
    "Resources": [
        {
            "TargetService": {
                "Type": "AWS::ECS::Service",
                "Properties": {
                    "TaskDefinition": "arn:aws:ecs:eu-west-1:123456789012:task-definition/payments:42",
                    "LoadBalancerInfo": {"ContainerName": "payments", "ContainerPort": 8080},
                },
            }
        }
    ],
}


def appspec(content: str, sha256: str = "9f2c0e") -> dict[str, Any]:
    return {"revisionType": "AppSpecContent", "appSpecContent": {"content": content, "sha256": sha256}}


@pytest.mark.parametrize(
    "content",
    [
        json.dumps(LAMBDA_SPEC),
        json.dumps(LAMBDA_SPEC, indent=2),
        json.dumps(LAMBDA_SPEC, separators=(",", ":")),
        yaml.safe_dump(LAMBDA_SPEC),
    ],
    ids=["json", "json-indented", "json-compact", "yaml"],
)
def test_a_lambda_appspec_is_labelled_by_its_target_version(content: str) -> None:
    assert revision_label(appspec(content)) == "7"


def test_a_numeric_lambda_target_version_is_labelled_as_text() -> None:
    content = "version: 0.0\nResources:\n  - fn:\n      Type: AWS::Lambda::Function\n      Properties:\n"
    content += "        Name: checkout\n        Alias: live\n        CurrentVersion: 6\n        TargetVersion: 7\n"
    assert revision_label(appspec(content)) == "7"


def test_a_tab_indented_json_lambda_appspec_is_labelled_by_its_target_version() -> None:
    # Valid JSON (Go's json.MarshalIndent with "\t" writes this); tabs are not valid YAML indentation.
    assert revision_label(appspec(json.dumps(LAMBDA_SPEC, indent="\t"))) == "7"


@pytest.mark.parametrize("dump", [json.dumps, yaml.safe_dump], ids=["json", "yaml"])
def test_an_ecs_appspec_is_labelled_by_its_task_definition_revision(dump: Any) -> None:
    assert revision_label(appspec(dump(ECS_SPEC))) == "payments:42"


def test_a_string_revision_reads_its_appspec_from_the_string_field() -> None:
    revision = {"revisionType": "String", "string": {"content": json.dumps(LAMBDA_SPEC), "sha256": "abc"}}
    assert revision_label(revision) == "7"


@pytest.mark.parametrize("content", ["{not: [valid", "just text", "Resources: 5", ""])
def test_an_appspec_without_a_version_falls_back_to_its_sha256(content: str) -> None:
    assert revision_label(appspec(content, sha256="9f2c0e")) == "9f2c0e"


def test_an_appspec_without_a_version_or_sha256_is_labelled_appspec() -> None:
    assert revision_label({"revisionType": "AppSpecContent", "appSpecContent": {"content": "x: 1"}}) == "appspec"


@pytest.mark.parametrize(
    ("location", "label"),
    [
        (
            {"bucket": "b", "key": "app/checkout.zip", "bundleType": "zip", "version": "v3", "eTag": "e1"},
            "app/checkout.zip@v3",
        ),
        ({"bucket": "b", "key": "app/checkout.zip", "bundleType": "zip", "eTag": "e1"}, "app/checkout.zip@e1"),
        ({"bucket": "b", "key": "app/checkout.zip", "bundleType": "zip"}, "app/checkout.zip@latest"),
    ],
    ids=["version", "etag", "neither"],
)
def test_an_s3_revision_is_labelled_key_at_version_or_etag(location: dict[str, str], label: str) -> None:
    assert revision_label({"revisionType": "S3", "s3Location": location}) == label


def test_a_github_revision_is_labelled_by_its_short_commit_id() -> None:
    revision = {
        "revisionType": "GitHub",
        "gitHubLocation": {"repository": "acme/checkout", "commitId": "0123456789abcdef0123456789abcdef01234567"},
    }
    assert revision_label(revision) == "0123456789ab"


def test_an_unknown_revision_type_gets_a_stable_bounded_label() -> None:
    revision = {"revisionType": "Mystery", "detail": "x" * 200}
    label = revision_label(revision)
    assert len(label) == 60
    assert label == revision_label(dict(reversed(list(revision.items()))))


def test_retarget_points_a_lambda_appspec_current_version_at_what_is_live_now() -> None:
    import json

    from rollguard.adapters.codedeploy import retarget

    spec = {
        "version": 0.0,
        "Resources": [
            {
                "fn": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {"Name": "checkout", "Alias": "live", "CurrentVersion": "5", "TargetVersion": "6"},
                }
            }
        ],
    }
    good = {"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(spec), "sha256": "x"}}

    moved = retarget(good, "7")

    props = json.loads(moved["appSpecContent"]["content"])["Resources"][0]["fn"]["Properties"]
    assert (props["CurrentVersion"], props["TargetVersion"]) == ("7", "6")
    assert "sha256" not in moved["appSpecContent"], "the old digest would not match the new content"


def test_retarget_rewrites_a_string_revision_and_keeps_its_type() -> None:
    """A String revision carries the AppSpec inline too; CodeDeploy checks its CurrentVersion against the alias."""
    import json

    from rollguard.adapters.codedeploy import retarget

    props = {"Name": "checkout", "Alias": "live", "CurrentVersion": "5", "TargetVersion": "6"}
    spec = {"version": 0.0, "Resources": [{"fn": {"Type": "AWS::Lambda::Function", "Properties": props}}]}
    good = {"revisionType": "String", "string": {"content": json.dumps(spec), "sha256": "x"}}

    moved = retarget(good, "7")

    assert moved["revisionType"] == "String" and "sha256" not in moved["string"]
    rewritten = json.loads(moved["string"]["content"])["Resources"][0]["fn"]["Properties"]
    assert (rewritten["CurrentVersion"], rewritten["TargetVersion"]) == ("7", "6")


def test_retarget_leaves_other_revision_types_alone() -> None:
    from rollguard.adapters.codedeploy import retarget

    s3 = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k", "bundleType": "zip"}}
    assert retarget(s3, "7") is s3
