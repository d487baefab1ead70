"""Print template.yaml after the SAM transform, as CloudFormation JSON: what CloudFormation would deploy.

Run with the tools environment's Python (aws-sam-cli brings samtranslator; the project's .venv does not have it):

    .venv-tools/bin/python tests/template/sam_transform.py template.yaml > transformed.json

Local code locations become placeholder S3 URIs first, as `sam validate` does: the scan is about the resources
and their properties, not about the packaged code.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

_LOCAL_LOCATIONS = ("CodeUri", "ContentUri", "DefinitionUri")


class _NoManagedPolicies:
    """The template names no managed policy by name, so SAM never needs to look one up in IAM."""

    def load(self) -> dict[str, str]:
        return {}


def main(path: str) -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # SAM fills AWS::Region from it; any region will do
    template: dict[str, Any] = yaml_parse(Path(path).read_text(encoding="utf-8"))
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for key in _LOCAL_LOCATIONS:
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                properties[key] = f"s3://rollguard-example-artifacts/{properties[key].strip('/')}"
    json.dump(transform(template, {}, _NoManagedPolicies()), sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main(sys.argv[1])
