"""References and digests: `registry/repository[:tag][@sha256:...]`, as Docker parses them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from playbookctl.errors import RegistryError

# The distribution spec's grammar (ASCII only, matched whole: `$` would let a trailing newline in).
_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
_TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
_REPO_RE = re.compile(
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
# "Many clients impose a limit of 255 characters on the length of the concatenation of the
# registry hostname (and optional port), /, and <name> value" (distribution spec); Docker's
# reference parser refuses longer names, and registries answer them with 400s, 404s or 500s.
NAME_TOTAL_LENGTH_MAX = 255
# `https://`, `HTTP://`, `oci://`: a URL's scheme, which no reference has (RFC 3986's grammar).
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def repository_problem(host: str, repo: str) -> str | None:
    """Why `repo` is not a repository name the distribution spec allows on `host`, or None."""
    if not _REPO_RE.fullmatch(repo):
        return (
            f"bad repository name {repo!r}: lower-case letters and digits, separated by '.', "
            "'_', '__', '-' or '/' (distribution spec)"
        )
    if len(host) + 1 + len(repo) > NAME_TOTAL_LENGTH_MAX:
        return (
            f"the repository name is {len(host) + 1 + len(repo)} characters with its registry, "
            f"more than the {NAME_TOTAL_LENGTH_MAX} the distribution spec allows"
        )
    return None


def tag_problem(tag: str) -> str | None:
    """Why `tag` is not a tag the distribution spec allows, or None."""
    if not _TAG_RE.fullmatch(tag):
        return (
            f"bad tag {tag!r}: 1 to 128 of letters, digits, '_', '.', '-', not starting "
            "with '.' or '-' (distribution spec)"
        )
    return None


@dataclass(frozen=True)
class Reference:
    """`registry/repository[:tag][@sha256:...]`, parsed the way Docker does (the first path
    component is a registry host when it holds a `.` or `:` or is `localhost`)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What goes after /manifests/: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(ref: str) -> Reference:
    """Parse a fully qualified reference; raise RegistryError (naming the ref) if it is not one."""
    scheme = _SCHEME_RE.match(ref)
    if scheme:
        # Parsed on, "HTTP:" would be taken for a registry host and the message would be about
        # the repository name; the scheme is the mistake (a reference is never a URL).
        raise RegistryError(
            f"invalid reference {ref!r}: a reference has no URL scheme; drop "
            f"{scheme.group(0)!r} and write {ref[scheme.end() :]!r} "
            "(<registry>/<repository>[:tag][@digest])"
        )
    rest, digest = ref, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.fullmatch(digest):
            raise RegistryError(f"invalid reference {ref!r}: digest must be sha256:<64 hex>")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        problem = tag_problem(tag)
        if problem:
            raise RegistryError(f"invalid reference {ref!r}: {problem}")
    host, sep, repo = rest.partition("/")
    # A first component with '.' or ':', or `localhost` in any case (a repository name is
    # lower-case, so `LOCALHOST/x` can only name a registry), is the registry host.
    if not sep or not (("." in host) or (":" in host) or host.lower() == "localhost"):
        raise RegistryError(
            f"invalid reference {ref!r}: expected <registry>/<repository>[:tag][@digest]"
        )
    problem = repository_problem(host, repo)
    if problem:
        raise RegistryError(f"invalid reference {ref!r}: {problem}")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(host, repo, tag, digest)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
