"""Triggers a policy defines (trigger.define): the policy model, the alarms generated for each kind (PutMetricAlarm's
parameters, AWS::CloudWatch::Alarm's properties), how the evaluator judges them, and `rollguard triggers emit`."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.validate import ParamValidator
from rollguard.policy import Policy, PolicyFile, PolicyFileInvalid, load_policy_file, parse_policy_document
from rollguard_cli.alarm_eval import ALARM, OK, AlarmDefinition, evaluate, observe
from rollguard_cli.main import main
from rollguard_cli.triggers import alarm_properties, defined_alarms, template_fragment

from tests.unit.builders import POLICIES, as_yaml, document, policy_dict

LAMBDA = {"namespace": "AWS/Lambda", "dimensions": {"FunctionName": "checkout"}}
ERRORS = {**LAMBDA, "metric": "Errors"}
REQUESTS = {**LAMBDA, "metric": "Invocations"}
KINDS: dict[str, dict[str, Any]] = {
    "error_rate": {"kind": "error_rate", "errors": ERRORS, "requests": REQUESTS, "above_percent": 5, "for": "3m"},
    "latency": {"kind": "latency", "metric": {**LAMBDA, "metric": "Duration", "stat": "p99"}, "above": 800},
    "baseline": {"kind": "baseline", "errors": ERRORS, "requests": REQUESTS, "band_width": 3, "datapoints": 2},
    "unhealthy_targets": {
        "kind": "unhealthy_targets",
        "load_balancer": "app/checkout/0123456789abcdef",
        "target_group": "targetgroup/checkout-green/0123456789abcdef",
        "above_percent": 20,
    },
}


def defining(*definitions: dict[str, Any], name: str = "checkout-5xx", **trigger: Any) -> dict[str, Any]:
    # through JSON: no object shared between definitions, which YAML would write as an alias (and the loader refuses)
    return policy_dict(name=name, trigger=json.loads(json.dumps({"define": list(definitions), **trigger})))


def parsed(*policies: dict[str, Any]) -> PolicyFile:
    return parse_policy_document(as_yaml(document(*policies)), "team.yaml")


def problems(*policies: dict[str, Any]) -> list[str]:
    with pytest.raises(PolicyFileInvalid) as caught:
        parsed(*policies)
    return [f"{p.path}: {p.reason}" for p in caught.value.problems]


# ---------------------------------------------------------------- the policy model


def test_every_kind_defines_an_alarm_the_policy_claims_by_its_generated_name() -> None:
    doc = parsed(defining(*KINDS.values()))
    policy = doc.policies[0]
    names = [policy.defined_alarm_name(k) for k in range(len(KINDS))]
    assert names == [
        "rollguard-checkout-5xx-error-rate",
        "rollguard-checkout-5xx-latency",
        "rollguard-checkout-5xx-baseline",
        "rollguard-checkout-5xx-unhealthy-targets",
    ]
    for name in names:  # the intake's routing: PolicyFile.match
        matched = doc.match(name)
        assert matched is not None and matched.name == "checkout-5xx"
    assert doc.match("rollguard-checkout-5xx-error-rate-2") is None


def test_a_second_definition_of_a_kind_is_numbered_and_a_name_of_its_own_is_kept() -> None:
    policy = parsed(defining(KINDS["latency"], KINDS["latency"], {**KINDS["latency"], "name": "checkout-p99"}))
    assert [n for _, n in policy.policies[0].claims] == [
        "rollguard-checkout-5xx-latency",
        "rollguard-checkout-5xx-latency-2",
        "checkout-p99",
    ]


def test_trigger_alarms_still_work_next_to_defined_ones() -> None:
    doc = parsed(defining(KINDS["error_rate"], alarms=["checkout-5xx-rate"]))
    assert doc.match("checkout-5xx-rate") is not None
    assert doc.match("rollguard-checkout-5xx-error-rate") is not None


def test_a_defined_trigger_survives_the_execution_inputs_json_round_trip() -> None:
    policy = parsed(defining(*KINDS.values())).policies[0]
    again = Policy.model_validate(policy.model_dump(mode="json"))  # no FROM_FILE context: durations in seconds
    assert again == policy
    assert policy.model_dump(mode="json")["trigger"]["define"][0]["for"] == 180


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ({"kind": "burn_rate"}, "define[0]: unknown trigger kind 'burn_rate' (known: error_rate, latency, baseline"),
        ({**KINDS["error_rate"], "requests": None}, "define[0].requests: Input should be a valid dictionary"),
        ({k: v for k, v in KINDS["error_rate"].items() if k != "errors"}, "define[0].errors: Field required"),
        ({**KINDS["error_rate"], "above_percent": 150}, "define[0].above_percent: Input should be less than or equal"),
        ({**KINDS["latency"], "metric": {**LAMBDA, "metric": "Duration", "stat": "Average"}}, "is not a percentile"),
        ({**KINDS["latency"], "period": "45s"}, "define[0].period: period 45s is not 10s, 20s, 30s or a multiple"),
        ({**KINDS["latency"], "for": "90s"}, "define[0]: for 90s is not a whole number of periods (60s)"),
        ({**KINDS["latency"], "for": 5}, "define[0].for: for 5 has no unit"),
        ({**KINDS["latency"], "datapoints": 6}, "define[0]: datapoints 6 is more than the 5 periods in for 300s"),
        ({**KINDS["baseline"], "metric": {**LAMBDA, "metric": "Duration"}}, "watches either metric, or the error"),
        ({**KINDS["baseline"], "errors": None}, "watches either metric, or the error rate of errors and requests"),
        ({**KINDS["baseline"], "band_width": 0}, "define[0].band_width: Input should be greater than 0"),
        ({**KINDS["unhealthy_targets"], "target_group": "green"}, "define[0].target_group: String should match"),
        ({**KINDS["error_rate"], "errors": {**ERRORS, "stat": "p999"}}, "define[0].errors.stat: String should match"),
    ],
)
def test_a_bad_definition_fails_with_its_field_path_and_reason(definition: dict[str, Any], expected: str) -> None:
    found = problems(defining(definition))
    assert any(expected in f"{p}" for p in found), found
    assert all(p.startswith("policies[0].trigger") for p in found), found


def test_a_trigger_needs_alarms_or_definitions() -> None:
    assert problems(defining()) == [
        "policies[0].trigger: a trigger needs alarms (existing alarms by name) or define (alarms Rollguard defines)"
    ]


def test_a_defined_alarm_another_policy_claims_is_one_alarm_two_policies() -> None:
    other = policy_dict(
        name="other",
        trigger={"alarms": ["rollguard-checkout-5xx-*"]},
        target={"codedeploy": {"application": "checkout", "deployment_group": "other"}},
    )
    found = problems(defining(KINDS["latency"]), other)
    assert found == [
        "policies[1].trigger.alarms[0]: alarm 'rollguard-checkout-5xx-*' is also claimed by policy 'checkout-5xx' "
        "(both claim 'rollguard-checkout-5xx-latency'): one alarm, one policy"
    ]


def test_the_same_name_defined_twice_in_a_policy_is_refused() -> None:
    found = problems(defining({**KINDS["latency"], "name": "x"}, alarms=["x"]))
    assert found == ["policies[0]: trigger.define[0]: alarm name 'x' is claimed twice by this policy"]


# ---------------------------------------------------------------- the alarms generated


def properties(kind: str) -> dict[str, Any]:
    return alarm_properties(parsed(defining(KINDS[kind])).policies[0], 0)


def test_every_generated_alarm_is_a_valid_put_metric_alarm_request() -> None:
    shape = boto3.client("cloudwatch", region_name="us-east-1").meta.service_model.operation_model("PutMetricAlarm")
    for kind in KINDS:
        report = ParamValidator().validate(properties(kind), shape.input_shape)
        assert not report.has_errors(), (kind, report.generate_report())


def test_error_rate_is_metric_math_over_errors_and_requests() -> None:
    props = properties("error_rate")
    assert [(q["Id"], q["ReturnData"], q.get("Expression")) for q in props["Metrics"]] == [
        ("errors", False, None),
        ("requests", False, None),
        ("rate", True, "100 * errors / requests"),
    ]
    assert props["Metrics"][0]["MetricStat"] == {
        "Metric": {
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": [{"Name": "FunctionName", "Value": "checkout"}],
        },
        "Period": 60,
        "Stat": "Sum",
    }
    assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 5.0)
    assert (props["EvaluationPeriods"], props["DatapointsToAlarm"]) == (3, 3)
    assert props["Tags"] == [{"Key": "rollguard:policy", "Value": "checkout-5xx"}]


def test_latency_is_a_percentile_over_a_static_threshold() -> None:
    props = properties("latency")
    assert {k: props[k] for k in ("MetricName", "ExtendedStatistic", "Period", "Threshold", "ComparisonOperator")} == {
        "MetricName": "Duration",
        "ExtendedStatistic": "p99",
        "Period": 60,
        "Threshold": 800.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    assert props["EvaluateLowSampleCountPercentile"] == "evaluate"
    assert "Metrics" not in props and "Statistic" not in props


@pytest.mark.parametrize(
    ("direction", "operator"),
    [
        ("above", "GreaterThanUpperThreshold"),
        ("below", "LessThanLowerThreshold"),
        ("outside", "LessThanLowerOrGreaterThanUpperThreshold"),
    ],
)
def test_baseline_is_the_anomaly_detection_band_of_the_watched_series(direction: str, operator: str) -> None:
    props = alarm_properties(parsed(defining({**KINDS["baseline"], "direction": direction})).policies[0], 0)
    assert props["ThresholdMetricId"] == "band"
    assert props["Metrics"][-1] == {
        "Id": "band",
        "Expression": "ANOMALY_DETECTION_BAND(rate, 3)",
        "Label": "expected",
        "ReturnData": True,
    }
    assert props["ComparisonOperator"] == operator
    assert "Threshold" not in props


def test_baseline_of_one_metric_bands_that_metric() -> None:
    definition = {"kind": "baseline", "metric": {**LAMBDA, "metric": "Duration", "stat": "p95"}}
    props = alarm_properties(parsed(defining(definition)).policies[0], 0)
    assert [q["Id"] for q in props["Metrics"]] == ["m", "band"]
    assert props["Metrics"][1]["Expression"] == "ANOMALY_DETECTION_BAND(m, 2)"


def test_unhealthy_targets_is_the_unhealthy_share_of_the_target_group() -> None:
    props = properties("unhealthy_targets")
    assert props["Metrics"][2]["Expression"] == "100 * unhealthy / (healthy + unhealthy)"
    assert {q["MetricStat"]["Metric"]["MetricName"] for q in props["Metrics"][:2]} == {
        "HealthyHostCount",
        "UnHealthyHostCount",
    }
    assert props["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "LoadBalancer", "Value": "app/checkout/0123456789abcdef"},
        {"Name": "TargetGroup", "Value": "targetgroup/checkout-green/0123456789abcdef"},
    ]


# ---------------------------------------------------------------- how the evaluator judges them

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def samples(per_minute: dict[str, list[float]]) -> Any:
    """raw(query) for observe: one sample per minute from T0 of each metric name's list."""
    return lambda query: [(T0 + timedelta(minutes=i), v) for i, v in enumerate(per_minute[query.metric_name])]


def test_the_error_rate_alarm_computes_the_ratio_per_period() -> None:
    alarm = AlarmDefinition.from_describe(properties("error_rate"))
    raw = samples({"Errors": [10, 10, 10, 10], "Invocations": [100, 100, 100, 0]})
    window = observe(alarm, raw, T0 + timedelta(minutes=4))
    assert [p.value if p else None for p in window] == [10.0, 10.0, None]  # no requests: no datapoint
    assert evaluate(alarm, window, OK).state == OK  # 2 of 3 breach (one is missing); the rule is 3 of 3
    assert evaluate(alarm, observe(alarm, raw, T0 + timedelta(minutes=3)), OK).state == ALARM


def test_the_baseline_alarm_fires_on_a_rise_far_outside_the_band_its_history_trained() -> None:
    alarm = AlarmDefinition.from_describe(properties("baseline"))
    quiet = 120  # two hours at 1% with a little noise, then 20%
    errors = [10.0 + (i % 3) for i in range(quiet)] + [200.0] * 3
    raw = samples({"Errors": errors, "Invocations": [1000.0] * len(errors)})
    before = observe(alarm, raw, T0 + timedelta(minutes=quiet))
    assert all(p is not None and p.upper is not None and p.upper < 1.5 for p in before)
    assert evaluate(alarm, before, OK).state == OK
    after = observe(alarm, raw, T0 + timedelta(minutes=quiet + 3))
    assert evaluate(alarm, after, OK).state == ALARM


def test_the_band_is_not_there_until_enough_history_trained_it() -> None:
    alarm = AlarmDefinition.from_describe(properties("baseline"))
    raw = samples({"Errors": [10.0] * 40 + [200.0] * 3, "Invocations": [1000.0] * 43})
    window = observe(alarm, raw, T0 + timedelta(minutes=43))  # none of it an hour old: nothing trained the band
    assert all(p is not None and p.upper is None for p in window)
    assert evaluate(alarm, window, "INSUFFICIENT_DATA").state == "INSUFFICIENT_DATA"


# ---------------------------------------------------------------- rollguard triggers emit


def test_emit_prints_one_cloudformation_alarm_resource_per_definition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(as_yaml(document(defining(*KINDS.values()))))
    assert main(["triggers", "emit", str(path)]) == 0
    template = yaml.safe_load(capsys.readouterr().out)
    doc = load_policy_file(path)
    assert template == template_fragment(defined_alarms(doc))
    assert list(template["Resources"]) == [
        "RollguardCheckout5xxErrorRate",
        "RollguardCheckout5xxLatency",
        "RollguardCheckout5xxBaseline",
        "RollguardCheckout5xxUnhealthyTargets",
    ]
    assert {r["Type"] for r in template["Resources"].values()} == {"AWS::CloudWatch::Alarm"}


def test_emit_of_the_shipped_baseline_policy_names_the_alarm_its_drill_creates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["triggers", "emit", str(POLICIES / "sandbox-baseline.yaml"), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"AlarmName": "rollguard-checkout-baseline-baseline"' in out


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--name", "nope"], "error: no policy 'nope' in {file} (it has: checkout-5xx)"),
        ([], "error: {file}: no policy defines a trigger (trigger.define)"),
    ],
)
def test_emit_refuses_what_it_cannot_emit_with_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(as_yaml(document(policy_dict(name="checkout-5xx"))))
    assert main(["triggers", "emit", str(path), *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().splitlines() == [error.format(file=path)]


def test_emit_of_an_invalid_policy_file_reports_its_problems_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(as_yaml(document(defining({"kind": "burn_rate"}))))
    assert main(["triggers", "emit", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: policies[0].trigger.define[0]: unknown trigger kind 'burn_rate'")
