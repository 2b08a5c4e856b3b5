"""The registry client's errors: each a RegistryError (exit 1, one line), told apart by callers."""

from __future__ import annotations

from playbookctl.errors import RegistryError


class ManifestNotFoundError(RegistryError):
    """The tag or digest does not exist in the registry."""


class DigestMismatchError(RegistryError):
    """Content fetched by digest does not hash to that digest (corrupted or tampered with), or
    the registry's Docker-Content-Digest names other content than it sent."""


class ResponseTooLargeError(RegistryError):
    """The registry's answer is larger than what the operation accepts (refused, not read)."""


class ManifestRefusedError(RegistryError):
    """The registry refused a manifest for what it is (its media type or schema: HTTP 415, or
    400 MANIFEST_INVALID/UNSUPPORTED), not for a blob it names: another layout may be taken."""
