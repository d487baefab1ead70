"""What the remediation steps (assess, act, verify) are given: the adapters, and the audit trail they write."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rollguard.adapters.cloudwatch import CloudWatch
from rollguard.adapters.codedeploy import CodeDeploy
from rollguard.audit import AuditEvent, AuditLog
from rollguard.control import Control
from rollguard.errors import RollguardError
from rollguard.incident import ExecutionState
from rollguard.journal import Journal
from rollguard.store import IncidentStore

if TYPE_CHECKING:
    from rollguard.adapters.appconfig import AppConfig
    from rollguard.adapters.ecs import EcsServices
    from rollguard.adapters.elb import LoadBalancers
    from rollguard.adapters.zonal_shift import ZonalShifts


@dataclass
class Deps:
    codedeploy: CodeDeploy
    cloudwatch: CloudWatch
    audit: AuditLog
    store: IncidentStore
    appconfig: "AppConfig | None" = None
    journal: Journal | None = None
    appconfig_strategy: str = "Rollguard-Immediate"
    region: str = "us-east-1"
    control: Control | None = None
    elb: "LoadBalancers | None" = None
    zonal_shift: "ZonalShifts | None" = None
    ecs: "EcsServices | None" = None


def need[T](adapter: T | None, what: str) -> T:
    """The adapter a step needs, or a clear error when this stack was not wired with it."""
    if adapter is None:
        raise RollguardError(f"this step needs {what}, which is not configured")
    return adapter


def record(
    deps: Deps,
    state: ExecutionState,
    kind: str,
    summary: str,
    result: str = "ok",
    reason: str = "",
    event_key: str = "",
    **parameters: object,
) -> None:
    deps.audit.append(
        AuditEvent(
            incident_id=state.incident_id,
            target_key=state.target_key,
            kind=kind,
            summary=summary,
            result=result,
            reason=reason,
            parameters=parameters,
            event_key=event_key,
            **state.where(),
        )
    )
