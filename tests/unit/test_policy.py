"""The policy file: what a valid document becomes, and how every class of problem is reported."""

import re
from pathlib import Path
from typing import Any

import pytest
from rollguard.errors import PolicyInvalid
from rollguard.policy import (
    Policy,
    PolicyFile,
    PolicyFileInvalid,
    PolicyProblem,
    load_policy_file,
    parse_policy_document,
)

from tests.unit.builders import POLICIES, SANDBOX_DOCUMENT, as_yaml, document, policy_dict

FILE = "policies/team.yaml"


def problems_in(doc_or_text: Any, file: str = FILE) -> list[PolicyProblem]:
    text = doc_or_text if isinstance(doc_or_text, str) else as_yaml(doc_or_text)
    with pytest.raises(PolicyFileInvalid) as caught:
        parse_policy_document(text, file)
    assert caught.value.problems, "a PolicyFileInvalid always carries at least one problem"
    assert all(p.file == file for p in caught.value.problems)
    return caught.value.problems


def only_problem(doc_or_text: Any) -> PolicyProblem:
    problems = problems_in(doc_or_text)
    assert len(problems) == 1, problems
    return problems[0]


def payments_policy(**overrides: Any) -> dict[str, Any]:
    base = {
        "name": "payments-errors",
        "trigger": {"alarms": ["payments-api-5xx"], "require_change_within": "1h"},
        "target": {"codedeploy": {"application": "payments", "deployment_group": "payments-ecs-prod"}},
        "ladder": [{"action": "rollback", "scope": "full", "verify": {"window": "10m"}}],
    }
    return {**base, **overrides}


# ---------------------------------------------------------------- a valid document


@pytest.fixture
def sandbox_file(tmp_path: Path) -> PolicyFile:
    path = tmp_path / "sandbox.yaml"
    path.write_text(as_yaml(SANDBOX_DOCUMENT), encoding="utf-8")
    return load_policy_file(path)


@pytest.mark.parametrize("name", ["rollguard.yaml", "sandbox.yaml"])
def test_the_shipped_example_policies_load(name: str) -> None:
    doc = load_policy_file(POLICIES / name)
    assert doc.version == 1
    assert doc.policies


def test_a_valid_document_loads_with_its_policy_fields(sandbox_file: PolicyFile) -> None:
    (policy,) = sandbox_file.policies
    assert policy.name == "checkout-5xx"
    assert policy.trigger.alarms == ["checkout-5xx-rate"]
    assert policy.target.codedeploy.application == "checkout"
    assert policy.target.codedeploy.deployment_group == "checkout-prod"
    assert [(s.action, s.scope) for s in policy.ladder] == [("rollback", "canary"), ("rollback", "full")]
    assert policy.verify.min_requests == 50
    assert policy.verify.max_error_rate == 0.05
    assert policy.verify.slice is not None
    assert policy.verify.slice.version_dimension == "ExecutedVersion"
    assert policy.escalate.runbook == "https://wiki.example.com/runbooks/checkout"


def test_durations_become_seconds(sandbox_file: PolicyFile) -> None:
    policy = sandbox_file.policies[0]
    assert policy.trigger.require_change_within == 1800
    assert [s.verify.window for s in policy.ladder] == [300, 300]
    assert sandbox_file.defaults.lock_ttl == 7200


def test_unset_durations_take_their_defaults_in_seconds(sandbox_file: PolicyFile) -> None:
    assert sandbox_file.defaults.mode == "enforce"
    assert sandbox_file.policies[0].verify.slice is not None
    assert sandbox_file.policies[0].verify.slice.period == 60


@pytest.mark.parametrize("value", [120, 0, -60])
def test_a_bare_number_for_a_duration_is_refused_naming_the_field(value: int) -> None:
    """YAML reads `window: 120` as an int; taken as seconds it would be a silent guess at the author's unit."""
    policy = policy_dict()
    policy["ladder"][0]["verify"]["window"] = value
    problem = only_problem(document(policy))
    assert problem.path == "policies[0].ladder[0].verify.window"
    assert problem.reason == f"window {value} has no unit: use 90s, 5m, 1h"


def test_a_policy_read_back_from_an_execution_input_takes_whole_seconds(make_policy: Any) -> None:
    """The execution input carries the policy as JSON, durations in seconds: only a policy file must write units."""
    policy = make_policy()
    again = Policy.model_validate(policy.model_dump(mode="json"))
    assert again == policy and again.ladder[0].verify.window == 300


@pytest.mark.parametrize(
    ("place", "field", "too_long", "longest"),
    [
        (lambda p: p["trigger"], "require_change_within", "8d", "7d"),
        (lambda p: p["ladder"][0]["verify"], "window", "6h1m", "6h"),
        (lambda p: p["verify"]["slice"], "period", "2h", "1h"),
        (lambda p: p["verify"], "appconfig_poll_interval", "61m", "1h"),
        (lambda p: p.setdefault("brakes", {}), "cooldown", "8d", "7d"),
    ],
)
def test_a_duration_longer_than_its_field_allows_is_refused(
    place: Any, field: str, too_long: str, longest: str
) -> None:
    policy = policy_dict()
    place(policy)[field] = too_long
    problem = only_problem(document(policy))
    assert problem.path.endswith(field)
    assert problem.reason == f"{field} {too_long} is longer than {longest}, the most it may be"


@pytest.mark.parametrize(("place", "field", "longest"), [("defaults", "lock_ttl", "24h")])
def test_the_lock_ttl_is_at_most_a_day(place: str, field: str, longest: str) -> None:
    doc = document()
    doc[place] = {field: "25h"}
    problem = only_problem(doc)
    assert (problem.path, problem.reason) == (
        f"{place}.{field}",
        f"{field} 25h is longer than {longest}, the most it may be",
    )


def test_a_lock_ttl_shorter_than_a_step_between_renewals_is_refused() -> None:
    doc = document()
    doc["defaults"] = {"lock_ttl": "5m"}
    problem = only_problem(doc)
    assert problem.path == "defaults.lock_ttl"
    assert problem.reason.startswith("lock_ttl 300s is shorter than 15m, the longest a live incident goes")


def test_an_approval_timeout_is_at_most_twelve_hours() -> None:
    policy = policy_dict()
    policy["ladder"][1]["approval"] = {"required": True, "timeout": "13h"}
    problem = only_problem(document(policy))
    assert problem.path == "policies[0].ladder[1].approval.timeout"
    assert "longer than 12h" in problem.reason


def test_each_duration_at_its_bound_is_accepted() -> None:
    policy = policy_dict()
    policy["trigger"]["require_change_within"] = "7d"
    policy["ladder"][1]["verify"]["window"] = "6h"
    policy["ladder"][1]["approval"] = {"required": True, "timeout": "12h"}
    policy["brakes"] = {"cooldown": "7d"}
    doc = document(policy)
    doc["defaults"] = {"lock_ttl": "24h"}
    assert parse_policy_document(as_yaml(doc), FILE).defaults.lock_ttl == 86400


def test_target_key_names_the_application_and_deployment_group(sandbox_file: PolicyFile) -> None:
    assert sandbox_file.policies[0].target.key == "codedeploy:checkout/checkout-prod"


def test_a_policy_matches_its_literal_alarm_name_exactly(sandbox_file: PolicyFile) -> None:
    policy = sandbox_file.policies[0]
    assert policy.matches("checkout-5xx-rate")
    assert not policy.matches("checkout-5xx-rate-2")
    assert not policy.matches("checkout-5xx")
    assert not policy.matches("Checkout-5xx-Rate")


def test_a_policy_matches_alarm_names_by_glob() -> None:
    doc = load_policy_file(POLICIES / "rollguard.yaml")
    checkout = doc.policies[0]
    assert checkout.matches("checkout-p99-latency")
    assert checkout.matches("checkout-p99-")
    assert not checkout.matches("checkout-p50-latency")


def test_policy_file_match_returns_the_policy_claiming_the_alarm() -> None:
    doc = load_policy_file(POLICIES / "rollguard.yaml")
    matched_checkout = doc.match("checkout-p99-latency")
    matched_payments = doc.match("payments-api-5xx")
    assert matched_checkout is not None and matched_checkout.name == "checkout-5xx"
    assert matched_payments is not None and matched_payments.name == "payments-errors"


def test_policy_file_match_returns_none_for_an_unclaimed_alarm() -> None:
    doc = load_policy_file(POLICIES / "rollguard.yaml")
    assert doc.match("inventory-5xx") is None


def test_a_literal_alarm_name_containing_brackets_matches_itself(make_policy: Any) -> None:
    # CloudWatch alarm names may contain '[' and ']'; a policy listing such a name literally must claim it.
    policy = make_policy(trigger={"alarms": ["checkout [prod] 5xx"], "require_change_within": "30m"})
    assert policy.matches("checkout [prod] 5xx")


def test_policies_with_distinct_alarms_and_names_load_together() -> None:
    doc = parse_policy_document(as_yaml(document(policy_dict(), payments_policy())), FILE)
    assert [p.name for p in doc.policies] == ["checkout-5xx", "payments-errors"]


def test_a_full_only_ladder_needs_no_slice_metrics() -> None:
    doc = parse_policy_document(as_yaml(document(payments_policy())), FILE)
    assert doc.policies[0].verify.slice is None


# ---------------------------------------------------------------- problems, one class at a time


def test_an_unknown_action_is_reported_at_its_ladder_step_with_the_known_actions() -> None:
    policy = policy_dict()
    policy["ladder"][0]["action"] = "restart"
    problem = only_problem(document(policy))
    assert problem.path == "policies[0].ladder[0]"
    assert "unknown action 'restart'" in problem.reason
    assert "known: rollback" in problem.reason


def test_a_ladder_step_without_an_action_is_reported_at_its_step() -> None:
    policy = policy_dict()
    del policy["ladder"][1]["action"]
    problem = only_problem(document(policy))
    assert problem.path == "policies[0].ladder[1]"
    assert "action" in problem.reason


def test_a_bad_duration_is_reported_at_its_field_with_the_accepted_form() -> None:
    policy = policy_dict(trigger={"alarms": ["checkout-5xx-rate"], "require_change_within": "soon"})
    problem = only_problem(document(policy))
    assert problem.path == "policies[0].trigger.require_change_within"
    assert "invalid duration 'soon'" in problem.reason
    assert "e.g. '90s', '5m', '1h30m'" in problem.reason
    assert not problem.reason.startswith("Value error")


@pytest.mark.parametrize("window", ["0m", "0h0s"])
def test_a_zero_window_is_reported_inside_the_ladder_step(window: Any) -> None:
    policy = policy_dict()
    policy["ladder"][1]["verify"]["window"] = window
    problem = only_problem(document(policy))
    assert problem.path == "policies[0].ladder[1].verify.window"
    assert "longer than zero" in problem.reason


def test_a_missing_target_is_reported() -> None:
    policy = policy_dict()
    del policy["target"]
    problem = only_problem(document(policy))
    assert (problem.path, problem.reason) == ("policies[0].target", "Field required")


def test_a_missing_deployment_group_is_reported() -> None:
    policy = policy_dict(target={"codedeploy": {"application": "checkout"}})
    problem = only_problem(document(policy))
    assert (problem.path, problem.reason) == ("policies[0].target.codedeploy.deployment_group", "Field required")


def test_a_duplicate_policy_name_is_reported_on_the_second_policy() -> None:
    problem = only_problem(document(policy_dict(), payments_policy(name="checkout-5xx")))
    assert problem.path == "policies[1].name"
    assert problem.reason == "duplicate policy name 'checkout-5xx' (also policies[0])"


def test_an_alarm_listed_literally_by_two_policies_is_reported() -> None:
    second = payments_policy(trigger={"alarms": ["payments-api-5xx", "checkout-5xx-rate"]})
    problem = only_problem(document(policy_dict(), second))
    assert problem.path == "policies[1].trigger.alarms[1]"
    assert "alarm 'checkout-5xx-rate' is also claimed by policy 'checkout-5xx'" in problem.reason
    assert "one alarm, one policy" in problem.reason


def test_a_glob_in_the_first_policy_claiming_a_literal_in_the_second_is_reported() -> None:
    first = policy_dict(trigger={"alarms": ["checkout-*"]})
    second = payments_policy(trigger={"alarms": ["checkout-5xx-rate"]})
    problem = only_problem(document(first, second))
    assert problem.path == "policies[1].trigger.alarms[0]"
    assert "'checkout-5xx-rate' is also claimed by policy 'checkout-5xx'" in problem.reason


def test_a_glob_in_the_second_policy_claiming_a_literal_in_the_first_is_reported() -> None:
    second = payments_policy(trigger={"alarms": ["checkout-5xx-*"]})
    problem = only_problem(document(policy_dict(), second))
    assert problem.path == "policies[1].trigger.alarms[0]"
    assert "'checkout-5xx-*' is also claimed by policy 'checkout-5xx'" in problem.reason


@pytest.mark.parametrize(
    ("place", "path"),
    [
        (lambda doc: doc, "surprise"),
        (lambda doc: doc["defaults"], "defaults.surprise"),
        (lambda doc: doc["policies"][0], "policies[0].surprise"),
        (lambda doc: doc["policies"][0]["trigger"], "policies[0].trigger.surprise"),
        (lambda doc: doc["policies"][0]["target"], "policies[0].target.surprise"),
        (lambda doc: doc["policies"][0]["target"]["codedeploy"], "policies[0].target.codedeploy.surprise"),
        (lambda doc: doc["policies"][0]["ladder"][1], "policies[0].ladder[1].surprise"),
        (lambda doc: doc["policies"][0]["ladder"][0]["verify"], "policies[0].ladder[0].verify.surprise"),
        (lambda doc: doc["policies"][0]["verify"], "policies[0].verify.surprise"),
        (lambda doc: doc["policies"][0]["verify"]["slice"], "policies[0].verify.slice.surprise"),
        (lambda doc: doc["policies"][0]["escalate"], "policies[0].escalate.surprise"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_an_unknown_key_is_reported_at_its_depth(place: Any, path: str) -> None:
    doc = document()
    place(doc)["surprise"] = True
    problem = only_problem(doc)
    assert (problem.path, problem.reason) == (path, "unknown key")


def test_a_canary_step_without_slice_metrics_is_reported_on_the_policy() -> None:
    policy = policy_dict()
    del policy["verify"]["slice"]
    problem = only_problem(document(policy))
    assert problem.path == "policies[0]"
    assert problem.reason.startswith("a canary step is judged on its slice of traffic: set verify.slice")


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"version": 2}, "version"),
        ({"policies": []}, "policies"),
    ],
)
def test_a_wrong_version_or_an_empty_policy_list_is_reported(change: dict[str, Any], path: str) -> None:
    assert only_problem(document(**change)).path == path


def test_a_policy_name_that_cannot_name_an_execution_is_reported() -> None:
    assert only_problem(document(policy_dict(name="checkout 5xx"))).path == "policies[0].name"


def test_an_error_rate_outside_zero_to_one_is_reported() -> None:
    policy = policy_dict()
    policy["verify"]["max_error_rate"] = 5
    assert only_problem(document(policy)).path == "policies[0].verify.max_error_rate"


def test_invalid_yaml_is_reported_with_line_and_column() -> None:
    problem = only_problem("version: 1\npolicies:\n\t- name: checkout\n")
    assert problem.path == "line 3, column 1"
    assert problem.reason.startswith("not valid YAML: ")
    assert "'\\t'" in problem.reason


def test_unterminated_yaml_is_reported_with_line_and_column() -> None:
    problem = only_problem("version: 1\npolicies: [{name: checkout\n")
    assert problem.path == "line 3, column 1"
    assert problem.reason.startswith("not valid YAML: ")


@pytest.mark.parametrize("text", ["- version: 1\n", "just a sentence\n", "", "42\n"])
def test_a_document_that_is_not_a_mapping_is_reported_at_the_root(text: str) -> None:
    problem = only_problem(text)
    assert problem.path == ""
    assert problem.reason == "a policy file is a mapping with 'version' and 'policies'"
    assert str(problem) == f"{FILE}: <root>: {problem.reason}"


def test_a_missing_file_is_reported_as_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(PolicyFileInvalid) as caught:
        load_policy_file(path)
    assert caught.value.problems == [PolicyProblem(str(path), "", "cannot read: No such file or directory")]


def test_a_directory_is_reported_as_unreadable(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileInvalid) as caught:
        load_policy_file(tmp_path)
    assert caught.value.problems == [PolicyProblem(str(tmp_path), "", "cannot read: Is a directory")]


def test_a_file_that_is_not_utf8_is_reported_as_a_policy_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(as_yaml(document()).encode() + "# café\n".encode("latin-1"))
    with pytest.raises(PolicyFileInvalid) as caught:
        load_policy_file(path)
    (problem,) = caught.value.problems
    assert problem.file == str(path)


def test_problems_loaded_from_a_file_name_that_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    policy = policy_dict()
    del policy["target"]
    path.write_text(as_yaml(document(policy)), encoding="utf-8")
    with pytest.raises(PolicyFileInvalid) as caught:
        load_policy_file(path)
    assert [p.file for p in caught.value.problems] == [str(path)]


# ---------------------------------------------------------------- several problems at once


def test_every_schema_problem_in_a_file_is_reported() -> None:
    first = policy_dict()
    first["ladder"][0]["action"] = "restart"
    second = payments_policy()
    del second["target"]
    doc = document(first, second, surprise=1)
    paths = {p.path for p in problems_in(doc)}
    assert paths == {"surprise", "policies[0].ladder[0]", "policies[1].target"}


def test_a_duplicate_name_and_a_shared_alarm_are_both_reported() -> None:
    second = payments_policy(name="checkout-5xx", trigger={"alarms": ["checkout-5xx-rate"]})
    problems = problems_in(document(policy_dict(), second))
    assert [p.path for p in problems] == ["policies[1].name", "policies[1].trigger.alarms[0]"]


def test_the_error_message_lists_every_problem_as_file_path_reason() -> None:
    second = payments_policy(name="checkout-5xx", trigger={"alarms": ["checkout-5xx-rate"]})
    with pytest.raises(PolicyFileInvalid) as caught:
        parse_policy_document(as_yaml(document(policy_dict(), second)), FILE)
    message = str(caught.value)
    assert f"{FILE}: policies[1].name: duplicate policy name" in message
    assert f"{FILE}: policies[1].trigger.alarms[0]: alarm 'checkout-5xx-rate'" in message


def test_policy_file_invalid_is_the_policy_invalid_domain_error() -> None:
    with pytest.raises(PolicyInvalid):
        parse_policy_document("[]", FILE)


def test_a_flag_window_shorter_than_deploy_plus_poll_is_a_warning_not_an_error() -> None:
    from rollguard.policy import policy_warnings

    text = """
version: 1
policies:
  - name: flags
    trigger: {alarms: [a]}
    target: {appconfig: {application: app, environment: prod}}
    verify: {appconfig_poll_interval: 90s}
    ladder:
      - {action: flag_off, flag: {application: app, environment: prod, profile: flags, name: f}, verify: {window: 60s}}
      - {action: revert_recent_change, verify: {window: 5m}}
"""
    doc = parse_policy_document(text, "p.yaml")

    [warning] = policy_warnings(doc, "p.yaml")
    assert warning.path == "policies[0].ladder[0].verify.window"
    assert "60s is shorter" in warning.reason and "poll interval (90s)" in warning.reason


def test_a_rollback_step_needs_a_codedeploy_target() -> None:
    text = """
version: 1
policies:
  - name: flags
    trigger: {alarms: [a]}
    target: {appconfig: {application: app, environment: prod}}
    ladder: [{action: rollback, scope: full, verify: {window: 5m}}]
"""
    with pytest.raises(PolicyFileInvalid) as caught:
        parse_policy_document(text, "p.yaml")
    assert "a rollback needs target.codedeploy" in str(caught.value)


def test_a_key_repeated_in_one_mapping_is_refused_with_both_lines() -> None:
    """YAML keys are unique; PyYAML would silently keep the last (shadow then enforce would run enforce)."""
    from rollguard.policy import PolicyFileInvalid, parse_policy_document

    text = "version: 1\ndefaults:\n  mode: shadow\n  mode: enforce\npolicies: []\n"
    with pytest.raises(PolicyFileInvalid) as raised:
        parse_policy_document(text, "p.yaml")
    [problem] = raised.value.problems
    assert problem.path == "line 4, column 3"
    assert "duplicate key 'mode' (first at line 3)" in problem.reason


# ---------------------------------------------------------------- hostile files: bounded in size, depth and aliases


def test_a_file_over_a_mebibyte_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("version: 1\n" + "# padding\n" * 2_000_000)
    with pytest.raises(PolicyFileInvalid) as caught:
        load_policy_file(path)
    [problem] = caught.value.problems
    assert problem.reason == "19.1 MiB is more than the 1 MiB a policy file may hold"


def test_a_document_over_a_mebibyte_is_refused() -> None:
    problem = only_problem("version: 1\n" + "#" * (1024 * 1024))
    assert "a policy file may hold" in problem.reason


@pytest.mark.parametrize("depth", [33, 1_000, 100_000])
def test_deep_nesting_is_refused_in_one_line_not_a_recursion_error(depth: int) -> None:
    problem = only_problem("version: 1\npolicies: " + "[" * depth + "]" * depth + "\n")
    assert problem.reason == "nested deeper than 32 levels"
    assert problem.path == "line 2, column 42"


def test_an_alias_is_refused_because_it_repeats_what_it_names() -> None:
    text = "version: 1\nx: &a [lol, lol]\ny: &b [*a, *a, *a]\npolicies: *b\n"
    problem = only_problem(text)
    assert (problem.path, problem.reason) == ("line 3, column 8", "alias *a refused: write the value out in full")


@pytest.mark.parametrize(
    "scalar",
    ["min_requests: " + "9" * 5000, "start: 2026-13-45"],
    ids=["5000-digit-int", "month-13"],
)
def test_a_scalar_python_cannot_build_is_a_policy_problem(scalar: str) -> None:
    problem = only_problem(f"version: 1\n{scalar}\n")
    assert problem.reason.startswith("not valid YAML: ")


# ---------------------------------------------------------------- overlapping globs


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("checkout-*", "*-5xx"),
        ("checkout-p9?", "checkout-p[0-9]9"),
        ("web-[!a]*", "web-?b"),
        ("svc-[ab]-*", "svc-[bc]-rate"),
        ("*", "anything"),
        ("x[z-a]*", "x*"),  # the first matches nothing as a glob, but an alarm named "x[z-a]*" is claimed literally
    ],
)
def test_two_globs_that_can_claim_one_alarm_are_reported_with_an_alarm_both_claim(first: str, second: str) -> None:
    doc = document(policy_dict(trigger={"alarms": [first]}), payments_policy(trigger={"alarms": [second]}))
    problem = only_problem(doc)
    assert problem.path == "policies[1].trigger.alarms[0]"
    assert f"alarm {second!r} is also claimed by policy 'checkout-5xx'" in problem.reason
    claimed = re.search(r"\(both claim '(.*)'\)", problem.reason)
    name = claimed.group(1) if claimed else second
    assert Policy.model_validate(policy_dict(trigger={"alarms": [first]})).matches(name)
    assert Policy.model_validate(payments_policy(trigger={"alarms": [second]})).matches(name)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("checkout-*", "payments-*"),
        ("svc-[ab]-*", "svc-[cd]-*"),
        ("web-[!a]", "web-a"),
        ("*-5xx", "*-p99"),
        ("a?c", "abcd"),
        ("x[z-a]", "xz"),  # an empty range matches nothing
    ],
)
def test_globs_that_cannot_claim_the_same_alarm_load_together(first: str, second: str) -> None:
    doc = document(policy_dict(trigger={"alarms": [first]}), payments_policy(trigger={"alarms": [second]}))
    assert len(parse_policy_document(as_yaml(doc), FILE).policies) == 2


def test_a_name_claimed_by_three_policies_is_reported_once_per_later_policy_naming_the_first() -> None:
    third = payments_policy(name="third", trigger={"alarms": ["checkout-5xx-rate"]})
    doc = document(policy_dict(), payments_policy(trigger={"alarms": ["checkout-*"]}), third)
    problems = problems_in(doc)
    assert [p.path for p in problems] == ["policies[1].trigger.alarms[0]", "policies[2].trigger.alarms[0]"]
    assert all("claimed by policy 'checkout-5xx'" in p.reason for p in problems)


def test_patterns_within_one_policy_may_overlap() -> None:
    doc = document(policy_dict(trigger={"alarms": ["checkout-*", "checkout-5xx-*", "checkout-5xx-rate"]}))
    assert parse_policy_document(as_yaml(doc), FILE).policies[0].trigger.alarms[0] == "checkout-*"


def test_an_unknown_key_that_is_not_a_plain_name_is_quoted_so_the_report_stays_one_line() -> None:
    doc = document()
    doc["defaults"] = {"line\nbreak": True}
    problem = only_problem(doc)
    assert (problem.path, problem.reason) == ("defaults['line\\nbreak']", "unknown key")


def test_past_the_comparison_budget_the_clashes_found_are_reported_and_so_is_the_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rollguard import globs

    monkeypatch.setattr(globs, "COMPARISON_BUDGET", 500)
    policies = [payments_policy(name=f"p{i}", trigger={"alarms": [f"*-{i}-*"]}) for i in range(60)]
    problems = problems_in(document(*policies))
    assert problems[-1].path == "policies" and "more than 500 pairs" in problems[-1].reason
    assert problems[0].path == "policies[1].trigger.alarms[0]" and "claimed by policy 'p0'" in problems[0].reason


# ---------------------------------------------------------------- ECS services


def test_an_ecs_rolling_service_is_its_own_target_and_rolls_back_in_full() -> None:
    policy = Policy.model_validate(payments_policy(target={"ecs": {"cluster": "prod", "service": "payments"}}))

    assert policy.target.key == "ecs:prod/payments" and policy.target.ecs_rolling is not None


def test_an_ecs_rolling_service_has_no_canary_rollback() -> None:
    canary = [{"action": "rollback", "scope": "canary", "verify": {"window": "5m"}}]
    doc = {
        "version": 1,
        "policies": [payments_policy(target={"ecs": {"cluster": "prod", "service": "p"}}, ladder=canary)],
    }

    problem = only_problem(doc)

    assert problem.path == "policies[0]" and "an ECS rolling service has no canary rollback" in problem.reason


def test_an_ecs_blue_green_canary_needs_no_slice_metrics_it_is_judged_per_target_group() -> None:
    target = {
        "codedeploy": {"application": "payments", "deployment_group": "payments-ecs-prod"},
        "ecs": {"cluster": "prod", "service": "payments"},
    }
    canary = [{"action": "rollback", "scope": "canary", "verify": {"window": "5m"}}]

    policy = Policy.model_validate(payments_policy(target=target, ladder=canary))

    assert policy.target.key == "codedeploy:payments/payments-ecs-prod" and policy.target.ecs_rolling is None


@pytest.mark.parametrize("name", ["prod cluster", "", "a/b"])
def test_an_ecs_name_ecs_would_refuse_is_reported(name: str) -> None:
    doc = {"version": 1, "policies": [payments_policy(target={"ecs": {"cluster": name, "service": "payments"}})]}

    assert only_problem(doc).path == "policies[0].target.ecs.cluster"
