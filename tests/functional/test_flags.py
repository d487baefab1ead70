"""Flag hygiene on moto's AppConfig: the adapter, `rollguard flags` against a profile, and the weekly
report function publishing to SNS (read back through an SQS subscription).

moto 5.2.5 implements applications, configuration profiles and hosted versions, but not
ListApplications nor ListHostedConfigurationVersions (it raises NotImplementedError). `AppConfigOnMoto`
answers those two from moto's own backend, in botocore's response shape, until the sandbox's moto
extensions cover them; every other call is moto's.
"""

import contextlib
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from moto import mock_aws
from rollguard import clock, runtime
from rollguard.adapters.appconfig_flags import AppConfigFlags
from rollguard.errors import PermissionDenied, TargetNotFound, TransientAwsError
from rollguard.flag_report import FlagProfilesInvalid
from rollguard.flags import FlagDocumentInvalid
from rollguard_cli.main import main
from rollguard_cli.sandbox.runner import load_handler

from tests.conftest import context, load_event
from tests.template.iam import allowed_actions, load_template

pytestmark = pytest.mark.slow  # the handlers on the sandbox (moto)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "policies" / "flags" / "checkout-flags.json"
REGION = "us-east-1"
ACCOUNT = "123456789012"
# The time of events/flag_report/scheduled.json: the report is judged as of then.
SCHEDULED = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
_VERSIONS_PATH = re.compile(r"/applications/([^/]+)/configurationprofiles/([^/]+)/hostedconfigurationversions")


class AppConfigOnMoto:
    """Records every AWS call, fills moto's two missing AppConfig list calls, and injects errors."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.faults: dict[str, str] = {}

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]

    @staticmethod
    def _backend() -> Any:
        from moto.appconfig.models import appconfig_backends

        return appconfig_backends[ACCOUNT][REGION]

    def before_call(self, model: Any, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        self.calls.append(f"{model.service_model.endpoint_prefix}:{model.name}")
        if model.name in self.faults:
            return _answer(400, {"Error": {"Code": self.faults[model.name], "Message": "injected"}})
        if model.name == "ListApplications":
            apps = self._backend().applications.values()
            return _answer(200, {"Items": [{"Id": a.id, "Name": a.name} for a in apps]})
        if model.name == "ListHostedConfigurationVersions":
            match = _VERSIONS_PATH.search(params["url_path"])
            assert match, params["url_path"]
            app = self._backend().applications.get(match.group(1))
            profile = app.config_profiles.get(match.group(2)) if app else None
            if profile is None:
                return _answer(404, {"Error": {"Code": "ResourceNotFoundException", "Message": "not found"}})
            items = [
                {
                    "ApplicationId": v.app_id,
                    "ConfigurationProfileId": v.config_id,
                    "VersionNumber": v.version,
                    "ContentType": v.content_type,
                }
                for v in profile.config_versions.values()
            ]
            return _answer(200, {"Items": items})
        return None

    def create_profile(
        self, application: str, profile: str, *documents: bytes, kind: str = "AWS.AppConfig.FeatureFlags"
    ) -> tuple[str, str]:
        """An application (reused if it exists) with a hosted profile holding ``documents`` as versions 1, 2, …"""
        appconfig = self.client("appconfig")
        existing = {a.name: a.id for a in self._backend().applications.values()}
        app_id = existing.get(application) or appconfig.create_application(Name=application)["Id"]
        profile_id = appconfig.create_configuration_profile(
            ApplicationId=app_id, Name=profile, LocationUri="hosted", Type=kind
        )["Id"]
        for content in documents:
            appconfig.create_hosted_configuration_version(
                ApplicationId=app_id, ConfigurationProfileId=profile_id, Content=content, ContentType="application/json"
            )
        return app_id, profile_id


def _answer(status: int, parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    parsed["ResponseMetadata"] = {"HTTPStatusCode": status}
    return AWSResponse("https://appconfig.invalid", status, HTTPHeaders(), None), parsed


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AppConfigOnMoto]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    previous = boto3.DEFAULT_SESSION
    with mock_aws():
        boto3.setup_default_session(region_name=REGION)
        fake = AppConfigOnMoto()
        boto3.DEFAULT_SESSION.events.register("before-call", fake.before_call)  # type: ignore[union-attr]
        runtime.reset()  # the cached clients belong to another session
        yield fake
    runtime.reset()
    boto3.DEFAULT_SESSION = previous


def older_document() -> bytes:
    """Version 1 of the profile: only new-pricing, before the other flags were added."""
    document = json.loads(EXAMPLE.read_text())
    return json.dumps(
        {
            "version": "1",
            "flags": {"new-pricing": document["flags"]["new-pricing"]},
            "values": {"new-pricing": document["values"]["new-pricing"]},
        }
    ).encode()


@pytest.fixture
def checkout_flags(aws: AppConfigOnMoto) -> tuple[str, str]:
    """checkout/flags: version 1 an older document, version 2 the example profile (with its stale flag)."""
    return aws.create_profile("checkout", "flags", older_document(), EXAMPLE.read_bytes())


@pytest.fixture
def fixed_clock() -> Iterator[datetime]:
    clock.use(lambda: SCHEDULED)
    yield SCHEDULED
    clock.reset()


# ---------------------------------------------------------------------------- the adapter


def test_latest_reads_the_newest_hosted_version_by_names(aws: AppConfigOnMoto, checkout_flags: tuple[str, str]) -> None:
    read = AppConfigFlags(aws.client("appconfig")).latest("checkout", "flags")
    assert (read.application_id, read.profile_id, read.version) == (*checkout_flags, 2)
    assert list(read.document.flags) == ["card-payments", "new-pricing", "recommendations-cache", "holiday-banner"]
    assert read.label == "checkout/flags v2"


def test_latest_accepts_ids_as_well_as_names(aws: AppConfigOnMoto, checkout_flags: tuple[str, str]) -> None:
    app_id, profile_id = checkout_flags
    read = AppConfigFlags(aws.client("appconfig")).latest(app_id, profile_id)
    assert (read.version, len(read.document.flags)) == (2, 4)


def test_the_adapter_makes_exactly_the_calls_its_docstring_promises(
    aws: AppConfigOnMoto, checkout_flags: tuple[str, str]
) -> None:
    aws.calls.clear()
    AppConfigFlags(aws.client("appconfig")).latest("checkout", "flags")
    assert aws.calls == [
        "appconfig:ListApplications",
        "appconfig:ListConfigurationProfiles",
        "appconfig:ListHostedConfigurationVersions",
        "appconfig:GetHostedConfigurationVersion",
    ]


@pytest.mark.parametrize(
    ("application", "profile", "message"),
    [
        ("payments", "flags", "no AppConfig application named or identified by 'payments'"),
        ("checkout", "settings", "no configuration profile named or identified by 'settings' in "),
    ],
)
def test_an_unknown_application_or_profile_is_target_not_found(
    aws: AppConfigOnMoto, checkout_flags: tuple[str, str], application: str, profile: str, message: str
) -> None:
    with pytest.raises(TargetNotFound, match=re.escape(message)):
        AppConfigFlags(aws.client("appconfig")).latest(application, profile)


def test_a_profile_without_hosted_versions_is_target_not_found(aws: AppConfigOnMoto) -> None:
    aws.create_profile("checkout", "flags")
    with pytest.raises(TargetNotFound, match="has no hosted configuration version yet"):
        AppConfigFlags(aws.client("appconfig")).latest("checkout", "flags")


def test_a_freeform_profile_is_refused(aws: AppConfigOnMoto) -> None:
    aws.create_profile("checkout", "settings", b'{"timeout": 3}', kind="AWS.Freeform")
    with pytest.raises(FlagDocumentInvalid, match="has type 'AWS.Freeform', not AWS.AppConfig.FeatureFlags"):
        AppConfigFlags(aws.client("appconfig")).latest("checkout", "settings")


def test_a_hosted_version_that_is_not_a_flags_document_names_its_version(aws: AppConfigOnMoto) -> None:
    aws.create_profile("checkout", "flags", b'{"flags": {}}')
    with pytest.raises(FlagDocumentInvalid, match=r"^checkout/flags v1: version: Field required"):
        AppConfigFlags(aws.client("appconfig")).latest("checkout", "flags")


@pytest.mark.parametrize(
    ("operation", "code", "error"),
    [
        ("GetHostedConfigurationVersion", "AccessDeniedException", PermissionDenied),
        ("ListApplications", "ThrottlingException", TransientAwsError),
        ("ListConfigurationProfiles", "ResourceNotFoundException", TargetNotFound),
    ],
)
def test_aws_errors_become_domain_errors(
    aws: AppConfigOnMoto, checkout_flags: tuple[str, str], operation: str, code: str, error: type[Exception]
) -> None:
    aws.faults[operation] = code
    with pytest.raises(error, match=code):
        AppConfigFlags(aws.client("appconfig")).latest("checkout", "flags")


# ---------------------------------------------------------------------------- the CLI against AppConfig


def rollguard(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


APPCONFIG_SOURCE = ("--application", "checkout", "--profile", "flags", "--region", REGION)


def test_flags_list_shows_the_latest_version_of_the_profile(
    checkout_flags: tuple[str, str], fixed_clock: datetime
) -> None:
    code, out, err = rollguard("flags", "list", *APPCONFIG_SOURCE)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"checkout/flags v2 ({REGION}): 4 flag(s)",
        "NAME                   ENABLED  TYPE         OWNER          EXPIRES     AGE",
        "card-payments          on       kill_switch  team-payments  -           1022d",
        "new-pricing            on       release      team-checkout  2026-12-31  13d",
        "recommendations-cache  off      operational  team-platform  2027-06-01  182d",
        "holiday-banner         on       release      -              2026-01-15  374d",
    ]


def test_flags_stale_json_lists_the_planted_flag_and_fails_for_ci(
    checkout_flags: tuple[str, str], fixed_clock: datetime
) -> None:
    code, out, err = rollguard("flags", "stale", *APPCONFIG_SOURCE, "--json", "--fail-on-stale")
    assert (code, err) == (1, "")
    report = json.loads(out)
    app_id, profile_id = checkout_flags
    assert report["source"] == {
        "application": "checkout",
        "profile": "flags",
        "application_id": app_id,
        "profile_id": profile_id,
        "version": 2,
        "region": REGION,
    }
    assert report["checked_at"] == "2026-11-30T09:00:00.000Z"
    assert (report["flags_checked"], report["stale_flags"], report["max_age_seconds"]) == (4, ["holiday-banner"], None)
    assert [(f["flag"], f["reason"]) for f in report["findings"]] == [
        ("holiday-banner", "expired"),
        ("holiday-banner", "too_old"),
        ("holiday-banner", "ownerless"),
    ]


def test_flags_stale_of_a_missing_profile_exits_2_with_the_reason(checkout_flags: tuple[str, str]) -> None:
    code, out, err = rollguard("flags", "stale", "--application", "checkout", "--profile", "nope", "--region", REGION)
    assert (code, out) == (2, "")
    assert err.startswith("error: no configuration profile named or identified by 'nope' in ")


def test_flags_stale_when_aws_refuses_exits_2(aws: AppConfigOnMoto, checkout_flags: tuple[str, str]) -> None:
    aws.faults["ListApplications"] = "AccessDeniedException"
    code, out, err = rollguard("flags", "stale", *APPCONFIG_SOURCE, "--fail-on-stale")
    assert (code, out) == (2, "")
    assert err == "error: listing AppConfig applications: AccessDeniedException: injected\n"


# ---------------------------------------------------------------------------- the weekly report function


@contextlib.contextmanager
def report_logs() -> Iterator[list[logging.LogRecord]]:
    """The domain's log records (Powertools' logger does not propagate to pytest's caplog)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("rollguard.flag_report")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def report_function(aws: AppConfigOnMoto, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The function's environment as the template gives it: the escalation topic, read through SQS."""
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name="rollguard-escalations")["TopicArn"]
    inbox = sqs.create_queue(QueueName="oncall-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    for key, value in {
        "ESCALATION_TOPIC_ARN": topic,
        "POWERTOOLS_SERVICE_NAME": "rollguard",
        "POWERTOOLS_METRICS_NAMESPACE": "Rollguard",
        "LOG_LEVEL": "INFO",
    }.items():
        monkeypatch.setenv(key, value)
    runtime.reset()
    handler = load_handler("flag_report").lambda_handler

    def invoke(profiles: list[dict[str, str]]) -> dict[str, Any]:
        monkeypatch.setenv("FLAG_PROFILES", json.dumps(profiles))
        runtime.reset()
        aws.calls.clear()
        with contextlib.redirect_stdout(io.StringIO()):  # Powertools' JSON logs and metrics
            return dict(handler(load_event("flag_report/scheduled.json"), context("rollguard-flag-report")))

    def inbox_messages() -> list[dict[str, Any]]:
        received = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        return [json.loads(m["Body"]) for m in received.get("Messages", [])]

    yield {"invoke": invoke, "inbox": inbox_messages, "topic": topic}


def test_the_weekly_report_publishes_one_line_per_finding(
    aws: AppConfigOnMoto, checkout_flags: tuple[str, str], report_function: dict[str, Any]
) -> None:
    result = report_function["invoke"]([{"application": "checkout", "profile": "flags"}])
    counts = (result["stale_flag_count"], result["finding_count"], result["unreadable_count"])
    assert (result["published"], counts) == (True, (1, 3, 0))
    assert result["as_of"] == "2026-11-30T09:00:00Z"

    (message,) = report_function["inbox"]()
    assert message["Subject"] == "[Rollguard] Flag hygiene: 1 stale flag(s) in 1 profile(s)"
    assert message["MessageAttributes"]["kind"] == {"Type": "String", "Value": "flag_hygiene"}
    lines = message["Message"].splitlines()
    assert lines[0] == "Rollguard flag hygiene report as of 2026-11-30: 3 finding(s) on 1 flag(s)."
    assert [line for line in lines if line.startswith("checkout/flags")] == [
        "checkout/flags v2: holiday-banner: expired: expired on 2026-01-15 (319 days ago)",
        "checkout/flags v2: holiday-banner: too_old: created 2025-11-20, 374 days ago: "
        "past the 30-day lifetime of a release flag",
        "checkout/flags v2: holiday-banner: ownerless: no owner attribute: nobody to ask whether it can go",
    ]


def test_the_weekly_report_skips_publishing_when_nothing_is_stale(
    aws: AppConfigOnMoto, report_function: dict[str, Any]
) -> None:
    aws.create_profile("checkout", "flags", older_document())  # new-pricing alone, 14 days old: healthy
    with report_logs() as logs:
        result = report_function["invoke"]([{"application": "checkout", "profile": "flags"}])
    assert (result["published"], result["message_id"], result["finding_count"]) == (False, None, 0)
    assert "sns:Publish" not in aws.calls
    assert report_function["inbox"]() == []
    assert [r.getMessage() for r in logs] == ["nothing stale in 1 profile(s): nothing published"]


def test_an_unreadable_profile_is_reported_next_to_the_others_findings(
    aws: AppConfigOnMoto, checkout_flags: tuple[str, str], report_function: dict[str, Any]
) -> None:
    result = report_function["invoke"](
        [{"application": "payments", "profile": "flags"}, {"application": "checkout", "profile": "flags"}]
    )
    assert (result["published"], result["unreadable_count"], result["stale_flag_count"]) == (True, 1, 1)
    assert result["profiles"][0]["error"].startswith("TargetNotFound: no AppConfig application named")
    (message,) = report_function["inbox"]()
    assert message["Subject"].endswith(", 1 unreadable")
    body = message["Message"]
    assert "payments/flags: cannot read: TargetNotFound: no AppConfig application named or identified by" in body
    assert "checkout/flags v2: holiday-banner: expired: " in body


def test_an_invalid_flag_profiles_setting_fails_the_invocation(report_function: dict[str, Any]) -> None:
    with pytest.raises(FlagProfilesInvalid, match="FLAG_PROFILES must be a JSON list"):
        report_function["invoke"]([{"app": "checkout"}])


def test_the_report_functions_iam_covers_its_calls_and_nothing_more(
    aws: AppConfigOnMoto, checkout_flags: tuple[str, str], report_function: dict[str, Any]
) -> None:
    # No drill runs this function, so tests/template/test_iam_coverage.py leaves it to this test.
    report_function["invoke"]([{"application": "checkout", "profile": "flags"}])
    made = set(aws.calls)
    granted = set(allowed_actions(load_template(), "FlagReportFunction"))
    assert made - granted == set(), "FlagReportFunction calls AWS without permission"
    # sqs:SendMessage: the Lambda service sends a failed invocation to the dead-letter queue with the function's role.
    assert granted - made == {"sqs:SendMessage"}, "FlagReportFunction is granted actions it never uses"
