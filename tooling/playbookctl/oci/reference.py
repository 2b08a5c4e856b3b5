"""References and digests: `registry/repository[:tag][@sha256:...]`, as Docker parses them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from playbookctl.errors import RegistryError

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_REPO_RE = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


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
    rest, digest = ref, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise RegistryError(f"invalid reference {ref!r}: digest must be sha256:<64 hex>")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise RegistryError(f"invalid reference {ref!r}: bad tag {tag!r}")
    host, sep, repo = rest.partition("/")
    if not sep or not (("." in host) or (":" in host) or host == "localhost"):
        raise RegistryError(
            f"invalid reference {ref!r}: expected <registry>/<repository>[:tag][@digest]"
        )
    if not _REPO_RE.match(repo):
        raise RegistryError(f"invalid reference {ref!r}: bad repository name {repo!r}")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(host, repo, tag, digest)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
