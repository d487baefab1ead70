"""The one DynamoDB codec: plain Python data ⇄ DynamoDB attribute maps ({"S": ...}, {"N": ...}, ...).

Every table Rollguard writes (incidents, audit events, locks and the pause switch, the change journal) and every
reader of them (the functions, the CLI, the drills) goes through ``to_item`` and ``from_item``, so a value comes
back as it went in: numbers as ``int`` or ``float`` (never ``Decimal``), lists and maps as lists and dicts.
"""

import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB attribute map of ``data``: floats as Decimal (boto3 refuses floats), anything else JSON cannot
    encode as its ``str``, empty strings kept, None values left out (an absent attribute, not a NULL)."""
    plain = json.loads(json.dumps(data, default=str), parse_float=Decimal)
    return {k: _serializer.serialize(v) for k, v in plain.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """Plain data of a DynamoDB attribute map: whole numbers as int, others as float, sets as lists."""

    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | set):
            return [plain(v) for v in value]
        return value

    return {k: plain(_deserializer.deserialize(v)) for k, v in item.items()}
