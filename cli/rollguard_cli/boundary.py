"""The CLI's one boundary: what stops a command becomes one ``error: …`` line on stderr and exit 2, never a traceback.

``main`` runs every command through ``run``, so no command catches these itself:

- ``OperatorError`` (``ReviewError`` among them): something the operator must fix — a wrong id, folder, stack or
  output path; and the domain's ``RollguardError`` (an approval that cannot be given, a profile that cannot be read).
- botocore's errors: no region, no credentials, an endpoint that cannot be reached, AWS refusing a call
  (``ClientError``), each said with what to do about it.
- ``BrokenPipeError``: stdout closed early (``rollguard … --json | head``) — exit quietly, as the Python docs' recipe
  ("Note on SIGPIPE", in the signal module's documentation) does.

Where AWS is (``--region``, ``--endpoint-url``) is said the same way by every command that calls it, through
``add_aws_options``. The output-path checks of ``--out`` live here too, so ``drill --out`` and ``report --out``
refuse the same things.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

USAGE = 2  # the exit code of every error this boundary reports


class OperatorError(Exception):
    """Something the operator must fix; printed as one ``error:`` line, exit 2."""


def run(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError
    from rollguard.errors import RollguardError

    try:
        with endpoint(getattr(args, "endpoint_url", None)):
            code = int(command(args))
            sys.stdout.flush()  # inside the try: a closed pipe shows up here, not as an "Exception ignored" at exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except (OperatorError, RollguardError) as exc:
        return fail(str(exc))
    except (BotoCoreError, ClientError) as exc:
        return fail(describe_aws_error(exc))


def fail(message: str) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return USAGE


def _quiet_stdout() -> None:
    """Point stdout at devnull, so that the interpreter's final flush does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # stdout replaced by something without a file descriptor
        pass


_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_REJECTED = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "AuthFailure"}


def describe_aws_error(exc: Exception) -> str:
    """What went wrong talking to AWS, and how to fix it when the fix is the operator's configuration."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ProfileNotFound,
    )

    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION/AWS_DEFAULT_REGION"
    if isinstance(exc, NoCredentialsError):
        return (
            "no AWS credentials found (botocore NoCredentialsError): configure a profile "
            "(aws configure, aws sso login) or set AWS_PROFILE"
        )
    if isinstance(exc, ProfileNotFound):
        return f"AWS profile {exc.kwargs.get('profile')!r} not found (botocore ProfileNotFound): check AWS_PROFILE"
    if isinstance(exc, EndpointConnectionError) and _is_loopback(exc.kwargs.get("endpoint_url", "")):
        return (
            f"nothing answers at {exc.kwargs.get('endpoint_url')} (botocore EndpointConnectionError): "
            "is `rollguard sandbox serve` running on that port?"
        )
    if isinstance(exc, EndpointConnectionError):
        return (
            f"cannot reach AWS at {exc.kwargs.get('endpoint_url')} (botocore EndpointConnectionError): "
            "check the region and the network"
        )
    if isinstance(exc, ClientError):
        error: Any = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", "")
        if code in _EXPIRED:
            return f"AWS credentials expired ({code} on {exc.operation_name}): refresh them, e.g. aws sso login"
        if code in _REJECTED:
            return f"AWS rejected the credentials ({code} on {exc.operation_name}): check AWS_PROFILE and the keys"
        return f"AWS refused {exc.operation_name}: {code}: {message}"
    return f"{exc} (botocore {type(exc).__name__})"


# ---------------------------------------------------------------- where AWS is

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
SANDBOX_SIGNER = {"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox"}


def add_aws_options(parser: argparse._ActionsContainer, region_help: str) -> None:
    parser.add_argument("--region", help=region_help)
    parser.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="send every AWS call here, e.g. a local `rollguard sandbox serve` (as AWS_ENDPOINT_URL does)",
    )


@contextmanager
def endpoint(flag: str | None) -> Iterator[None]:
    """``--endpoint-url``, or the SDKs' own ``AWS_ENDPOINT_URL``: every client the command makes goes there
    ("Service-specific endpoints", AWS SDKs and Tools Reference Guide). A loopback endpoint cannot be AWS: it is
    signed with the sandbox's placeholder keys in its region, so no real credential signs a request to a local
    process and none is needed; a running ``sandbox serve``'s clock is the command's. All undone at the end."""
    from urllib.parse import urlparse

    from rollguard import clock

    url = flag or os.environ.get("AWS_ENDPOINT_URL")
    if not url:
        yield
        return
    parsed = urlparse(url)
    option = "--endpoint-url" if flag else "AWS_ENDPOINT_URL"
    try:
        parsed.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise OperatorError(f"{option} {url!r}: {exc}") from exc
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise OperatorError(f"{option} {url!r}: not a URL; give one such as http://127.0.0.1:4599")
    saved = dict(os.environ)
    os.environ["AWS_ENDPOINT_URL"] = url
    try:
        if parsed.hostname in LOOPBACK_HOSTS:
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
                os.environ.pop(name, None)
            os.environ.update(SANDBOX_SIGNER)
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
            from rollguard_cli.serve import keep_sandbox_time

            keep_sandbox_time(url)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        clock.reset()


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlparse

    return urlparse(url).hostname in LOOPBACK_HOSTS


# ---------------------------------------------------------------- --out paths


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_out_dir(path: Path, option: str = "--out") -> None:
    """``path`` is a directory, or can be made one (its missing parents are created, as ``mkdir -p`` would)."""
    existing = _nearest_existing(path)
    if existing == path and not path.is_dir():
        raise OperatorError(f"{option} {path}: exists and is not a directory")
    if not existing.is_dir():
        raise OperatorError(f"{option} {path}: {existing} is not a directory")


def check_out_file(path: Path, option: str = "--out") -> None:
    """``path`` is a new file: an existing file is not overwritten; missing parent directories are created."""
    if path.is_dir():
        raise OperatorError(f"{option} {path}: is a directory; give a file path")
    if path.exists():
        raise OperatorError(f"{option} {path}: already exists; remove it or choose another path")
    existing = _nearest_existing(path.parent)
    if not existing.is_dir():
        raise OperatorError(f"{option} {path}: {existing} is not a directory")
