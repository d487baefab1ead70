"""Triggers a policy defines (``trigger.define``) as CloudWatch alarms: ``rollguard triggers emit FILE``.

Each definition becomes one alarm whose properties are PutMetricAlarm's parameters — AWS::CloudWatch::Alarm's
properties carry the same names and shapes ("AWS::CloudWatch::Alarm", CloudFormation Template Reference), so the one
dictionary is both the resource the service's template declares and the request CloudFormation makes (the sandbox
makes exactly that request: drills.Stage). The alarm is named as the policy claims it (Policy.defined_alarm_name),
so the intake routes its state changes to that policy, and tagged with the policy that owns it.

- error_rate: ``100 * errors / requests`` (an alarm on metric math: "Using math expressions with CloudWatch
  metrics", using-metric-math.html; PutMetricAlarm ``Metrics``: one query with ReturnData true is watched).
- latency: a percentile (ExtendedStatistic pNN) above a static threshold, EvaluateLowSampleCountPercentile as asked
  ("Percentile-based alarms and low data samples").
- baseline: the metric (or the error rate) against ``ANOMALY_DETECTION_BAND(id, band_width)`` as ThresholdMetricId
  ("Create a CloudWatch alarm based on anomaly detection", Create_Anomaly_Detection_Alarm.html: on a single metric
  or on the output of a metric math expression). CloudWatch trains the band's model itself; a week-over-week ratio
  would need the metric's value a week earlier, which no metric math function returns, while the band's model
  learns the hourly, daily and weekly pattern: so the band, which CloudWatch evaluates natively.
- unhealthy_targets: ``100 * unhealthy / (healthy + unhealthy)`` of a target group's HealthyHostCount and
  UnHealthyHostCount (AWS/ApplicationELB, dimensions TargetGroup and LoadBalancer: "CloudWatch metrics for your
  Application Load Balancer").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollguard.policy import MetricRef, Policy, PolicyFile

COMPARISON = {
    "above": "GreaterThanUpperThreshold",
    "below": "LessThanLowerThreshold",
    "outside": "LessThanLowerOrGreaterThanUpperThreshold",
}


def _stat(query_id: str, metric: MetricRef, period: int, returned: bool) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": metric.namespace,
                "MetricName": metric.metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(metric.dimensions.items())],
            },
            "Period": period,
            "Stat": metric.stat,
        },
        "ReturnData": returned,
    }


def _ratio(numerator: MetricRef, denominator: MetricRef, period: int, label: str) -> list[dict[str, Any]]:
    """errors, requests (not returned) and the watched rate: 100 * errors / requests."""
    return [
        _stat("errors", numerator, period, False),
        _stat("requests", denominator, period, False),
        {"Id": "rate", "Expression": "100 * errors / requests", "Label": label, "ReturnData": True},
    ]


def alarm_properties(policy: Policy, index: int) -> dict[str, Any]:
    """PutMetricAlarm's parameters (= AWS::CloudWatch::Alarm's properties) for ``policy.trigger.define[index]``."""
    from rollguard.policy import MetricRef

    definition = policy.trigger.define[index]
    name = policy.defined_alarm_name(index)
    period = definition.period
    props: dict[str, Any] = {
        "AlarmName": name,
        "AlarmDescription": definition.description
        or f"Rollguard policy {policy.name}: {definition.kind.replace('_', ' ')} trigger (rollguard triggers emit)",
        "EvaluationPeriods": definition.evaluation_periods,
        "DatapointsToAlarm": definition.datapoints or definition.evaluation_periods,
        "TreatMissingData": definition.treat_missing_data,
        "Tags": [{"Key": "rollguard:policy", "Value": policy.name}],
    }
    if definition.kind == "error_rate":
        props |= {
            "Metrics": _ratio(definition.errors, definition.requests, period, "error rate (%)"),
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": definition.above_percent,
        }
    elif definition.kind == "latency":
        metric = definition.metric
        props |= {
            "Namespace": metric.namespace,
            "MetricName": metric.metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(metric.dimensions.items())],
            "ExtendedStatistic": metric.stat,
            "Period": period,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": definition.above,
            "EvaluateLowSampleCountPercentile": definition.low_samples,
        }
    elif definition.kind == "baseline":
        if definition.metric is not None:
            watched = [_stat("m", definition.metric, period, True)]
        else:
            assert definition.errors is not None and definition.requests is not None
            watched = _ratio(definition.errors, definition.requests, period, "error rate (%)")
        band = {
            "Id": "band",
            "Expression": f"ANOMALY_DETECTION_BAND({watched[-1]['Id']}, {definition.band_width:g})",
            "Label": "expected",
            "ReturnData": True,
        }
        props |= {
            "Metrics": [*watched, band],
            "ThresholdMetricId": "band",
            "ComparisonOperator": COMPARISON[definition.direction],
        }
    else:
        dims = {"LoadBalancer": definition.load_balancer, "TargetGroup": definition.target_group}
        healthy = MetricRef(namespace="AWS/ApplicationELB", metric="HealthyHostCount", dimensions=dims, stat="Average")
        unhealthy = healthy.model_copy(update={"metric": "UnHealthyHostCount"})
        props |= {
            "Metrics": [
                _stat("unhealthy", unhealthy, period, False),
                _stat("healthy", healthy, period, False),
                {
                    "Id": "share",
                    "Expression": "100 * unhealthy / (healthy + unhealthy)",
                    "Label": "unhealthy targets (%)",
                    "ReturnData": True,
                },
            ],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": definition.above_percent,
        }
    return props


def defined_alarms(doc: PolicyFile, only: str | None = None) -> list[tuple[Policy, dict[str, Any]]]:
    """Every alarm the file's policies define (or one policy's), with its policy."""
    return [
        (policy, alarm_properties(policy, k))
        for policy in doc.policies
        if only is None or policy.name == only
        for k in range(len(policy.trigger.define))
    ]


def logical_id(alarm_name: str) -> str:
    """A CloudFormation logical ID (alphanumeric) from the alarm's name: rollguard-a-b → RollguardAB."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", alarm_name) if part)[:255]


def template_fragment(alarms: list[tuple[Policy, dict[str, Any]]]) -> dict[str, Any]:
    """The ``Resources`` to paste into (or include in) the service's own template."""
    resources: dict[str, Any] = {}
    for _, props in alarms:
        key = logical_id(props["AlarmName"])
        if key in resources:
            key += f"{len(resources)}"
        resources[key] = {"Type": "AWS::CloudWatch::Alarm", "Properties": props}
    return {"Resources": resources}


# ---------------------------------------------------------------- the command


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("triggers", help="the alarms a policy file defines (trigger.define)")
    sub = parser.add_subparsers(dest="triggers_command", required=True, metavar="COMMAND", help="emit")
    emit = sub.add_parser(
        "emit", help="print the defined alarms as AWS::CloudWatch::Alarm resources for the service's own template"
    )
    emit.add_argument("file", metavar="FILE", help="a policy file")
    emit.add_argument("--name", metavar="POLICY", help="only this policy's alarms")
    emit.add_argument("--json", action="store_true", help="JSON instead of YAML")
    emit.set_defaults(func=emit_command)


def emit_command(args: Any) -> int:
    import json

    import yaml
    from rollguard.policy import load_policy_file

    from rollguard_cli.boundary import OperatorError

    path = Path(args.file)
    doc = load_policy_file(path)  # an invalid file is one error line per problem, exit 2 (boundary)
    if args.name is not None and all(p.name != args.name for p in doc.policies):
        raise OperatorError(f"no policy {args.name!r} in {path} (it has: {', '.join(p.name for p in doc.policies)})")
    alarms = defined_alarms(doc, args.name)
    if not alarms:
        raise OperatorError(
            f"{path}: no policy{' ' + args.name if args.name else ''} defines a trigger (trigger.define)"
        )
    fragment = template_fragment(alarms)
    if args.json:
        print(json.dumps(fragment, indent=2))
    else:
        print(f"# Rollguard triggers defined in {path}: add these resources to the service's template.")
        print(yaml.safe_dump(fragment, sort_keys=False, width=120), end="")
    return 0
