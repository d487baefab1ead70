"""``rollguard sandbox serve``: a drill's world kept running as a local AWS endpoint, for people to act in.

The sandbox of a scenario (a built-in one, or a policy of your own as ``drill --policy`` builds it) is stood up with
its service, alarm and the Rollguard "stack" — a CloudFormation stack carrying template.yaml's outputs for the
sandbox's tables, topics and state machine — and then left running: its clock ticks ``speed`` times faster than
real time, its alarms are evaluated as time passes, and every request to the endpoint (sandbox/endpoint.py) is made
through the sandbox's own client. Nothing answers for people: the scenario's scripted response (approve, deny, let
the approval time out) is whoever runs ``rollguard approve … --endpoint-url`` in another terminal.

``rollguard sandbox inject`` makes the scenario's bad change (its setup: revision 7 deployed and failing, a flag
turned on, a push of bad configuration) when you are ready to watch it; serve prints each audit event and each page
as it happens. Loopback only; SIGINT or SIGTERM stops it cleanly (the server, the clock, then the sandbox).
"""

import argparse
import json
import logging
import signal
import socket
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from time import monotonic
from typing import Any
from urllib import request as urlrequest
from urllib.error import URLError

from botocore import xform_name
from rollguard.console import state_machine_url
from werkzeug.serving import BaseWSGIServer, make_server

from rollguard_cli.boundary import OperatorError
from rollguard_cli.drills import Scenario, Stage, StreamedTimeline, scenario_sandbox, stage_for, stream_timeline
from rollguard_cli.sandbox.endpoint import Endpoint
from rollguard_cli.sandbox.runner import ACCOUNT, REGION, TABLES, Sandbox, load_template
from rollguard_cli.sandbox.world import ServiceSpec

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 4599
TICK_S = 0.5  # how often (real seconds) the world is brought up to the accelerated clock
SANDBOX_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox", "AWS_REGION": REGION}


@dataclass
class Served:
    """What serve stands up: a scenario's sandbox and its stage, the stack's name and the clock's speed."""

    scenario: Scenario
    sandbox: Sandbox
    stage: Stage
    stack: str
    speed: float
    lock: threading.RLock = field(default_factory=threading.RLock)  # one request or tick at a time
    injected: bool = False
    ticked: float = field(default_factory=monotonic)  # when the clock was last moved on
    clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    def call(self, service: str, operation: str, params: dict[str, Any], region: str) -> dict[str, Any]:
        """An endpoint request, made as the operator through the sandbox's client (its hooks, faults and clock)."""
        with self.lock:
            client = self.clients.get((service, region))
            if client is None:
                client = self.clients[(service, region)] = self.sandbox.client(service, region)
            return dict(getattr(client, xform_name(operation))(**params))

    def control(self, route: str, method: str) -> tuple[int, dict[str, Any]]:
        """The sandbox's own routes (like moto's ``/moto-api/``): ``status`` and ``inject``."""
        if route == "status":
            return 200, self.status()
        if route == "inject" and method == "POST":
            with self.lock:
                if self.injected:
                    return 409, {"error": f"scenario {self.scenario.name}'s change was already injected"}
                self.injected = True
                self.scenario.setup(self.stage)
            return 200, {"injected": self.scenario.name, "change": self.scenario.description} | self.status()
        return 404, {"error": f"no sandbox route {method} /rollguard-sandbox/{route}"}

    def status(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "stack": self.stack,
            "clock": self.sandbox.clock.now().isoformat(),
            "speed": self.speed,
            "injected": self.injected,
        }

    def tick(self) -> None:
        """Move the clock on by ``speed - 1`` times the real time since the last tick (the clock's own real time is
        the other 1x): however long a tick takes, and on top of what a Wait state jumped."""
        with self.lock:
            now = monotonic()
            self.sandbox.advance((now - self.ticked) * (self.speed - 1))
            self.ticked = now


def deploy_stack(sb: Sandbox, stack: str) -> dict[str, str]:
    """The stack "deployed" into the sandbox: template.yaml's outputs, each the name or ARN of the resource the
    sandbox provisioned for it (outputs with no sandbox resource, the dashboard's, are left out)."""
    values = {
        "IncidentsTableName": TABLES["IncidentsTable"],
        "AuditTableName": TABLES["AuditTable"],
        "LocksTableName": TABLES["LocksTable"],
        "ChangesTableName": TABLES["ChangesTable"],
        "RemediationStateMachineArn": sb.state_machine_arn,
        "EscalationTopicArn": sb.topic_arn,
        "StakeholderTopicArn": sb.stakeholder_topic_arn,
        "RemediationFunctionName": "rollguard-remediation",
        "AppConfigStrategyId": "Rollguard-Immediate",
        "StepFunctionsConsoleUrl": state_machine_url(REGION, sb.state_machine_arn),
    } | {f"{logical}Url": url for logical, url in sb.queue_urls.items()}
    described = load_template()["Outputs"]
    outputs = {
        name: {"Description": described[name]["Description"], "Value": value}
        for name, value in values.items()
        if name in described
    }
    # CloudFormation needs one resource; the sandbox's resources are already provisioned outside the stack.
    body = {"Resources": {"Deployed": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}, "Outputs": outputs}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tried to parse AWS::CloudFormation::WaitConditionHandle")
        sb.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(body))
    return {name: output["Value"] for name, output in outputs.items()}


class Printer:
    """What serve says as the world runs: each entry of each incident's timeline as it happens (``stream_timeline``:
    its audit events, and the alias and listener changes after it opened, in the drill's line format) and each page
    sent to the on-call topic."""

    def __init__(self, sb: Sandbox, stream: Any = None) -> None:
        self.sb, self.stream = sb, stream or sys.stdout
        self.timelines: dict[str, StreamedTimeline] = {}
        self.latest: str | None = None  # the incident a traffic change is printed under (it carries no id)
        self.pages_seen = 0

    def entry(self, entry: dict[str, Any]) -> None:
        incident = entry.get("incident_id", self.latest)
        if incident is None:
            return
        if incident not in self.timelines:
            print(f"\nincident {incident} opened", file=self.stream, flush=True)
            self.timelines[incident] = StreamedTimeline(self.stream)
        self.latest = incident
        self.timelines[incident](entry)

    def pages(self) -> None:
        sent = [p for p in self.sb.published if p.get("TopicArn") == self.sb.topic_arn]
        for page in sent[self.pages_seen :]:
            print(f"  page: {page.get('Subject', '')}", file=self.stream, flush=True)
        self.pages_seen = len(sent)


def serve(
    scenario: Scenario,
    service: ServiceSpec | None = None,
    policy_file: Path | None = None,
    port: int = DEFAULT_PORT,
    speed: float = 10.0,
    stack: str = "rollguard",
    inject: bool = False,
    announce: Callable[[str], None] = print,
) -> int:
    """Run until SIGINT or SIGTERM; 0 when stopped cleanly."""
    if speed < 1:
        raise OperatorError(f"--speed {speed:g}: the sandbox's clock cannot run slower than real time (give >= 1)")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request: the timeline is the output
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    served: Served | None = None

    def call(service: str, operation: str, params: dict[str, Any], region: str) -> dict[str, Any]:
        assert served is not None  # the server serves only once the sandbox is up
        return served.call(service, operation, params, region)

    def control(route: str, method: str) -> tuple[int, dict[str, Any]]:
        assert served is not None
        return served.control(route, method)

    try:  # the port first: a busy one is said before the sandbox takes seconds to build (werkzeug would exit 1)
        listening = socket.create_server((LOOPBACK, port))
    except OSError as exc:
        raise OperatorError(f"cannot listen on {LOOPBACK}:{port}: {exc.strerror}; choose another --port") from exc
    bound = listening.getsockname()[1]
    server: BaseWSGIServer = make_server(LOOPBACK, bound, Endpoint(call, control), threaded=True, fd=listening.detach())
    try:
        sandbox, stages = scenario_sandbox(scenario, service, policy_file)
        with sandbox as sb:
            stages.append(stage_for(scenario, sb))
            served = Served(scenario, sb, stages[0], stack, speed)
            deploy_stack(sb, stack)
            printer = Printer(sb)
            stream_timeline(sb, set(), printer.entry)
            url = f"http://{LOOPBACK}:{bound}"
            thread = threading.Thread(target=server.serve_forever, name="sandbox-endpoint", daemon=True)
            thread.start()
            announce(_banner(served, url))
            if inject:
                served.control("inject", "POST")
                announce(f"injected: {scenario.description}")
            try:
                while not stopping.wait(TICK_S):
                    served.tick()
                    printer.pages()
            finally:
                server.shutdown()
                thread.join(timeout=10)
    finally:
        server.server_close()
    announce("sandbox stopped")
    return 0


def keep_sandbox_time(endpoint_url: str) -> None:
    """A command talking to a running ``sandbox serve`` writes its timestamps (an approval, a pause) on the
    sandbox's clock, which runs ahead of this machine's: in AWS, the operator's clock and the service's agree. Each
    reading asks the sandbox. Another local endpoint (no sandbox status route) leaves the clock alone."""
    from rollguard import clock

    try:
        sandbox_now(endpoint_url)
    except OperatorError:
        return
    clock.use(lambda: sandbox_now(endpoint_url))


def sandbox_now(endpoint_url: str) -> datetime:
    try:
        return datetime.fromisoformat(ask(endpoint_url, "status")["clock"])
    except (OperatorError, ValueError, KeyError) as exc:
        raise OperatorError(f"no sandbox clock at {endpoint_url}: {exc}") from exc


def ask(endpoint_url: str, route: str, post: bool = False, timeout: float = 5) -> dict[str, Any]:
    """A running ``sandbox serve``'s own route (``/rollguard-sandbox/ROUTE``): its JSON answer, or OperatorError with
    the reason the sandbox gave."""
    url = f"{endpoint_url.rstrip('/')}/rollguard-sandbox/{route}"
    request = urlrequest.Request(url, data=b"{}" if post else None, method="POST" if post else "GET")
    try:
        with urlrequest.urlopen(request, timeout=timeout) as answer:
            return dict(json.loads(answer.read()))
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if hasattr(exc, "read"):  # an HTTPError: the sandbox said why
            reason = json.loads(exc.read() or b"{}").get("error", reason)
        raise OperatorError(f"sandbox at {endpoint_url}: {reason}") from exc


def _banner(served: Served, url: str) -> str:
    env = " ".join(f"{k}={v}" for k, v in {"AWS_ENDPOINT_URL": url, **SANDBOX_CREDENTIALS}.items())
    stack = served.stack
    return "\n".join(
        [
            f"Rollguard sandbox serving at {url} (loopback only), account {ACCOUNT}, region {REGION}",
            f"scenario {served.scenario.name}: {served.scenario.description}",
            f'stack "{stack}" deployed; the clock runs {served.speed:g}x real time. Ctrl-C stops it.',
            "",
            "In another terminal:",
            f"  export {env}",
            "  rollguard sandbox inject              # make the scenario's bad change",
            f"  rollguard status --stack {stack}",
            f"  rollguard timeline INCIDENT --follow --stack {stack}",
            f"  rollguard approve INCIDENT --stack {stack}",
            "(or pass --endpoint-url to each command; aws --endpoint-url and boto3 work against it too)",
        ]
    )


def inject(endpoint_url: str) -> dict[str, Any]:
    """``rollguard sandbox inject``: ask a running ``sandbox serve`` to make its scenario's bad change."""
    return ask(endpoint_url, "inject", post=True, timeout=120)


# ---------------------------------------------------------------- the CLI: rollguard sandbox serve | inject


def add_parser(commands: Any) -> None:
    sandbox = commands.add_parser("sandbox", help="the local sandbox as an AWS endpoint for the other commands")
    verbs = sandbox.add_subparsers(dest="sandbox_command", required=True, metavar="COMMAND", help="what to do")
    run = verbs.add_parser("serve", help="run a scenario's world on a local endpoint until Ctrl-C")
    chosen = run.add_mutually_exclusive_group()
    chosen.add_argument("--scenario", default="approval-granted", help="a built-in drill's world (see drill --list)")
    chosen.add_argument("--policy", metavar="FILE", help="your own policy's world, as drill --policy builds it")
    run.add_argument("--name", metavar="POLICY", help="with --policy: the policy (default: the first)")
    run.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"loopback port (default {DEFAULT_PORT}; 0: any)")
    run.add_argument("--speed", type=float, default=10.0, help="how much faster than real time the clock runs")
    run.add_argument("--stack", default="rollguard", metavar="NAME", help="the name the stack is deployed as")
    run.add_argument("--inject", action="store_true", help="make the scenario's bad change at once")
    run.set_defaults(func=_serve)
    bad = verbs.add_parser("inject", help="make the served scenario's bad change (a deploy, a flag, a push)")
    bad.add_argument("--endpoint-url", metavar="URL", help="the sandbox's endpoint (default: AWS_ENDPOINT_URL)")
    bad.set_defaults(func=_inject)


def _serve(args: argparse.Namespace) -> int:
    from rollguard_cli.drills import SCENARIOS

    if args.policy is None:
        if args.name:
            raise OperatorError("--name picks a policy of your own: give --policy FILE too")
        if args.scenario not in SCENARIOS:
            raise OperatorError(f"unknown scenario {args.scenario!r}; known: {', '.join(SCENARIOS)}")
        return serve(SCENARIOS[args.scenario], port=args.port, speed=args.speed, stack=args.stack, inject=args.inject)
    from rollguard_cli import own_drill

    path = Path(args.policy)
    drill = own_drill.plan(path, args.name)
    print("\n".join(drill.notes) + "\n")
    return serve(
        drill.scenario,
        drill.service,
        path.resolve(),
        port=args.port,
        speed=args.speed,
        stack=args.stack,
        inject=args.inject,
    )


def _inject(args: argparse.Namespace) -> int:
    import os

    url = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    if not url:
        raise OperatorError("no sandbox endpoint: pass --endpoint-url or set AWS_ENDPOINT_URL (sandbox serve says it)")
    answer = inject(url)
    print(f"injected into {answer['scenario']}: {answer['change']} (sandbox clock {answer['clock']})")
    return 0
