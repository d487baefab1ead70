"""SNS notifications to the escalation topic."""

import json
from typing import Any

from rollguard.adapters.aws_errors import AWS_FAILURES, translate


class Notifier:
    def __init__(self, client: Any, topic_arn: str):
        self._sns = client
        self._topic = topic_arn

    def publish(
        self, subject: str, message: str, attributes: dict[str, str], chat: dict[str, Any] | None = None
    ) -> str:
        """``message`` is plain text. With ``chat`` (an AWS Chatbot custom notification), email subscribers get the
        text and every other protocol (chat integrations, queues) gets the JSON."""
        structure = {}
        if chat is not None:
            message = json.dumps({"default": json.dumps(chat), "email": message})
            structure = {"MessageStructure": "json"}
        try:
            response = self._sns.publish(
                TopicArn=self._topic,
                Subject=subject[:100],
                Message=message,
                **structure,
                MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
            )
        except AWS_FAILURES as exc:
            raise translate(exc, f"publishing to {self._topic}") from exc
        return str(response["MessageId"])
