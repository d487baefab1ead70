"""The CLI's one boundary: what stops a command becomes one ``error: …`` line on stderr and exit 2, never a traceback.

``main`` runs every command through ``run``, so no command catches these itself:

- ``OperatorError`` (``ReviewError`` among them): something the operator must fix — a wrong id, folder, stack or
  output path; and the domain's ``RollguardError`` (an approval that cannot be given, a profile that cannot be read).
- botocore's errors: no region, no credentials, an endpoint that cannot be reached, AWS refusing a call
  (``ClientError``), each said with what to do about it.
- ``BrokenPipeError``: stdout closed early (``rollguard … --json | head``) — exit quietly, as the Python docs' recipe
  ("Note on SIGPIPE", in the signal module's documentation) does.

The output-path checks of ``--out`` live here too, so ``drill --out`` and ``report --out`` refuse the same things.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

USAGE = 2  # the exit code of every error this boundary reports


class OperatorError(Exception):
    """Something the operator must fix; printed as one ``error:`` line, exit 2."""


def run(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError
    from rollguard.errors import RollguardError

    try:
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
