"""template.yaml as CloudFormation will see it: translated by SAM (as ``sam validate`` and
``sam deploy`` do), and the EventBridge rules it makes, with the stack's names filled in."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import ROOT

#: What a dev stack in account 123456789012 calls things (the sample events' bucket).
STACK = {"Stage": "dev", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}


def translate() -> dict[str, Any]:
    """template.yaml as SAM translates it into CloudFormation, the functions' code where
    ``sam package`` would have put it."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((ROOT / "template.yaml").read_text())
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for uri in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(uri), str):
                properties[uri] = f"s3://artifacts/{properties[uri]}"
    translator = Translator({}, Parser(), boto_session=boto3.Session(region_name="us-east-1"))
    output: dict[str, Any] = translator.translate(template, {})
    return output


def resolved(value: Any) -> Any:
    """``Fn::Sub`` over the stack's parameters; other intrinsics are left as they are."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: STACK[m.group(1)], value["Fn::Sub"])
    if isinstance(value, dict):
        return {key: resolved(sub) for key, sub in value.items()}
    if isinstance(value, list):
        return [resolved(item) for item in value]
    return value


def event_rules(translated: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(target function, event pattern) of every EventBridge rule with a pattern."""
    rules = []
    for resource in translated["Resources"].values():
        properties = resource["Properties"]
        if resource["Type"] != "AWS::Events::Rule" or "EventPattern" not in properties:
            continue
        for target in properties["Targets"]:
            function = target["Arn"]["Fn::GetAtt"][0]
            rules.append((function, resolved(properties["EventPattern"])))
    return rules
