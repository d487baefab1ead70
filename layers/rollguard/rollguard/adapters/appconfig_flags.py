"""AppConfig: the current FeatureFlags document of a profile, from the hosted configuration store.

The data plane (GetLatestConfiguration) strips flag definitions and the attributes of disabled
flags, so hygiene has to read the hosted versions themselves: the highest version number is the
profile's current document (it may not be deployed yet; a deployment can only ship a version
that exists).
"""

from dataclasses import dataclass
from typing import Any

from rollguard.adapters.aws_errors import AWS_FAILURES, translate
from rollguard.errors import TargetNotFound
from rollguard.flags import FeatureFlagsDocument, FlagDocumentInvalid, load_document

_NOT_FOUND = frozenset({"ResourceNotFoundException"})
FEATURE_FLAGS = "AWS.AppConfig.FeatureFlags"


@dataclass(frozen=True)
class FlagProfile:
    application: str  # as asked for (name or id)
    profile: str
    application_id: str
    profile_id: str
    version: int
    document: FeatureFlagsDocument

    @property
    def label(self) -> str:
        return f"{self.application}/{self.profile} v{self.version}"


class AppConfigFlags:
    def __init__(self, client: Any):
        self._ac = client

    def _items(self, operation: str, doing: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of a paginated List* call (applications, profiles and versions are few)."""
        try:
            return [
                dict(item)
                for page in self._ac.get_paginator(operation).paginate(**kwargs)
                for item in page.get("Items", [])
            ]
        except AWS_FAILURES as exc:
            raise translate(exc, doing, _NOT_FOUND) from exc

    def application_id(self, application: str) -> str:
        """The id of the application named (or identified by) ``application``."""
        for item in self._items("list_applications", "listing AppConfig applications"):
            if application in (item["Id"], item.get("Name")):
                return str(item["Id"])
        raise TargetNotFound(f"no AppConfig application named or identified by {application!r}")

    def profile(self, application_id: str, profile: str) -> dict[str, Any]:
        """The configuration profile named (or identified by) ``profile``; it must hold hosted feature flags."""
        items = self._items(
            "list_configuration_profiles",
            f"listing configuration profiles of application {application_id}",
            ApplicationId=application_id,
        )
        found = next((item for item in items if profile in (item["Id"], item.get("Name"))), None)
        if found is None:
            raise TargetNotFound(f"no configuration profile named or identified by {profile!r} in {application_id}")
        if found.get("Type") != FEATURE_FLAGS:
            raise FlagDocumentInvalid(f"profile {profile!r} has type {found.get('Type')!r}, not {FEATURE_FLAGS}")
        if found.get("LocationUri") != "hosted":
            raise FlagDocumentInvalid(f"profile {profile!r} is stored at {found.get('LocationUri')!r}, not 'hosted'")
        return found

    def latest_version(self, application_id: str, profile_id: str) -> int:
        items = self._items(
            "list_hosted_configuration_versions",
            f"listing hosted versions of {application_id}/{profile_id}",
            ApplicationId=application_id,
            ConfigurationProfileId=profile_id,
        )
        if not items:
            raise TargetNotFound(f"profile {application_id}/{profile_id} has no hosted configuration version yet")
        # The API does not promise an order: take the highest number.
        return max(int(item["VersionNumber"]) for item in items)

    def content(self, application_id: str, profile_id: str, version: int) -> bytes:
        try:
            response = self._ac.get_hosted_configuration_version(
                ApplicationId=application_id, ConfigurationProfileId=profile_id, VersionNumber=version
            )
        except AWS_FAILURES as exc:
            raise translate(
                exc, f"reading hosted version {version} of {application_id}/{profile_id}", _NOT_FOUND
            ) from exc
        body = response["Content"]
        return bytes(body.read() if hasattr(body, "read") else body)

    def latest(self, application: str, profile: str) -> FlagProfile:
        """The profile's newest hosted FeatureFlags document, by names or ids."""
        application_id = self.application_id(application)
        profile_id = str(self.profile(application_id, profile)["Id"])
        version = self.latest_version(application_id, profile_id)
        document = load_document(
            self.content(application_id, profile_id, version), f"{application}/{profile} v{version}"
        )
        return FlagProfile(application, profile, application_id, profile_id, version, document)
