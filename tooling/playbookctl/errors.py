"""The one error hierarchy. The CLI turns a FatalError into a one-line message and exit 1."""

from __future__ import annotations

from collections.abc import Sequence


def cap_text(text: str, limit: int) -> str:
    """text, or its head and tail with the number of characters cut between them: output from an
    engine or a registry goes into errors and JSON results, which must stay small."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} [... {len(text) - 2 * half} characters cut ...] {text[-half:]}"


class FatalError(Exception):
    """A problem the user can act on; printed as one line, exit code 1."""


class UsageError(FatalError):
    """The command line itself is wrong; exit code 2."""


class ConfigError(FatalError):
    """pyproject.toml or an environment variable holds an invalid setting."""


class RegistryError(FatalError):
    """The OCI registry refused, failed or could not be reached."""


class RegistryUnavailableError(RegistryError):
    """The registry could not be asked at all: no answer after the retries (down, unreachable),
    or its token service refused the run's credentials. It says nothing about the reference the
    request was for, so a caller checking many of them asks no more of that registry."""


class BuildError(FatalError):
    """The Docker engine could not build or push an image."""


class GitError(FatalError):
    """A git operation failed."""


class ImmutableVersionError(FatalError):
    """A published version's content differs from the source: the version must be bumped."""


class RefusalsError(ImmutableVersionError):
    """Several refusals at once (a release's plan refusing playbooks): printed one a line, each
    as an error of its own, as plan prints them (one joined line ran to ~70 KB for 200)."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)
