"""Settings from the Lambda environment, read once per container (never at import time)."""

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    incidents_table: str = Field(alias="INCIDENTS_TABLE")
    audit_table: str = Field(alias="AUDIT_TABLE")
    locks_table: str = Field(alias="LOCKS_TABLE")
    state_machine_arn: str = Field(default="", alias="STATE_MACHINE_ARN")
    escalation_topic_arn: str = Field(default="", alias="ESCALATION_TOPIC_ARN")
    stakeholder_topic_arn: str = Field(default="", alias="STAKEHOLDER_TOPIC_ARN")
    policy_file: str = Field(default="/opt/rollguard.yaml", alias="POLICY_FILE")
    stack_name: str = Field(default="", alias="STACK_NAME")  # for the approve/deny commands in notifications
    changes_table: str = Field(default="", alias="CHANGES_TABLE")
    # The journal's dead-letter queue: the journal sends there, Assess reads its depth.
    journal_dead_letter_queue_url: str = Field(default="", alias="JOURNAL_DEAD_LETTER_QUEUE_URL")
    appconfig_strategy: str = Field(default="Rollguard-Immediate", alias="APPCONFIG_STRATEGY")
    region: str = Field(default="us-east-1", alias="AWS_REGION")
    flag_profiles: str = Field(default="[]", alias="FLAG_PROFILES")  # JSON: [{"application", "profile"}]


@cache
def get_settings() -> Settings:
    return Settings.model_validate(dict(os.environ))
