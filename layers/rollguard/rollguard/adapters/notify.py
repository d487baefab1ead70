"""SNS notifications to the escalation topic."""

from typing import Any

from botocore.exceptions import ClientError

from rollguard.adapters.aws_errors import translate


class Notifier:
    def __init__(self, client: Any, topic_arn: str):
        self._sns = client
        self._topic = topic_arn

    def publish(self, subject: str, message: str, attributes: dict[str, str]) -> str:
        try:
            response = self._sns.publish(
                TopicArn=self._topic,
                Subject=subject[:100],
                Message=message,
                MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
            )
        except ClientError as exc:
            raise translate(exc, f"publishing to {self._topic}") from exc
        return str(response["MessageId"])
