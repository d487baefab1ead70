"""Domain errors. A class name is the error name the state machine's Retry/Catch sees."""


class RollguardError(Exception):
    """Base class: a named, expected failure with a reason a human can act on."""


class TransientAwsError(RollguardError):
    """Throttling or a transient AWS fault that outlived botocore's retries; the ASL retries it."""


class FunctionMisconfigured(RollguardError):
    """The function's environment lacks a variable it needs (rollguard.settings names which): a deployment problem,
    which no retry fixes."""


class InvalidAlarmEvent(RollguardError):
    """The event is not a well-formed CloudWatch alarm state change."""


class PolicyInvalid(RollguardError):
    """The policy file failed validation."""


class TargetNotFound(RollguardError):
    """The policy's target (application, deployment group, alarm) does not exist."""


class PermissionDenied(RollguardError):
    """AWS refused the call (AccessDenied and friends): Rollguard's IAM needs attention."""


class NothingToRollBack(RollguardError):
    """There is no succeeded revision to go back to."""


class RollbackFailed(RollguardError):
    """CodeDeploy rejected the rollback for a reason other than permissions or throttling."""


class VerificationFailed(RollguardError):
    """The verification data could not be read."""


class AwsCallFailed(RollguardError):
    """AWS refused a call for a reason that is neither throttling, permissions nor a missing resource."""


class AppConfigConflict(RollguardError):
    """AppConfig refused because something changed meanwhile (a newer version, a deployment in progress)."""


class AppConfigWaitTimedOut(RollguardError):
    """An AppConfig deployment did not reach the state Rollguard waits for (live, or rolled back) within the
    invocation's time budget; the message names the deployment, its region and the state it was left in."""


class ConfigRejected(RollguardError):
    """AppConfig rejected the configuration (it does not validate against the profile's schema)."""


class FlagNotFound(RollguardError):
    """The flag named in the policy is not defined in the profile."""


class PartiallyFailed(RollguardError):
    """The action succeeded in some regions and failed in others; the reason lists each region."""


class LockLost(RollguardError):
    """The incident no longer holds its target's lock: it must not act on the target any more."""


class ActionBlocked(RollguardError):
    """A safety brake (pause, freeze window, cooldown, hourly cap, rollback-once) stopped the action."""


class ChangeNotRecorded(RollguardError):
    """The journal could not record a change event. It left a marker (a gap item, or the event in its dead-letter
    queue) and fails, so that Lambda retries the event and dead-letters it after its retries."""


class TrafficConflict(RollguardError):
    """Someone else's traffic change is in the way: another zonal shift on the resource (ARC allows one), or listener
    weights changed since Rollguard set them."""
