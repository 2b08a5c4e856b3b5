"""The one package that talks to OCI registries (the distribution protocol over HTTP).

Nothing else in playbookctl talks to a registry: build, bundle, publish and verify call
RegistryClient. Its modules follow the protocol's seams, as go-containerregistry's `transport`
and `remote` packages do:
- reference.py: references and digests (the distribution spec's grammar);
- transport.py: urllib3 pools with deadlines over whole answers, proxies, bounded reads, the
  retry policy (Retries) of registry and token requests; tls.py: TLS trusted as docker trusts it;
- auth.py: credentials (environment, Docker config, helpers), challenges and bearer tokens;
- blobs.py: blob checks, reads and the upload protocol, cross-repository mounts;
- manifests.py: media types, image indexes, manifests by tag or digest;
- client.py: RegistryClient, the facade, and its request loop (auth, redirects; retried by
  transport.Retries).
Import from here: `from playbookctl.oci import RegistryClient, parse_reference, ...`.

Why no oras-py: its `Registry` class is a 1,000-line catch-all whose gaps matter here.
- Its retry decorator sleeps 2+3**n seconds (3, 5, 11, 29, 83 s), retries only 500s and
  exceptions (not 429/502/503, no Retry-After) and sets no request timeout, so an unreachable or
  hanging registry takes minutes instead of failing within 30 s.
- Its token auth keeps one bearer token for all scopes (a mount needs pull on another repository),
  ignores `identitytoken` in the Docker config and `DOCKER_CONFIG` itself (it reads only
  ~/.docker/config.json), and logs token-endpoint response bodies at debug level.
- Its reference parser does not treat `localhost/repo` as a registry host.
- It offers no cross-repository mount and no blob-exists cache.
What was left of it here (four media-type strings, base64 of `user:password`, and its
`WWW-Authenticate` parser) is not worth a dependency, and the parser was wrong: it reads only
quoted values, so `Bearer realm="...",service=registry` (RFC 7235 allows a bare token) lost the
service. `auth.parse_challenge` reads both forms and backslash escapes.

Concurrency: one client is shared by publish's worker threads. urllib3's pool managers are
thread-safe; each pool is sized for the configured jobs. Our own
mutable state (token cache, known-blob cache, request counter) is guarded by locks.
"""

from __future__ import annotations

from playbookctl.oci.auth import (
    ENV_PASSWORD,
    ENV_TOKEN,
    ENV_USERNAME,
    _Creds,
    load_credentials,
    parse_challenge,
)
from playbookctl.oci.blobs import MAX_BLOB_BYTES
from playbookctl.oci.client import RegistryClient
from playbookctl.oci.errors import (
    DigestMismatchError,
    ManifestNotFoundError,
    ManifestRefusedError,
    ResponseTooLargeError,
)
from playbookctl.oci.manifests import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    image_index,
    preferred_index_type,
)
from playbookctl.oci.reference import Reference, parse_reference, sha256_digest
from playbookctl.oci.tls import ENV_CERTS_DIR, TrustStore, describe_tls_failure
from playbookctl.oci.transport import is_loopback, loopback_answers, warn_insecure

__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "ENV_CERTS_DIR",
    "ENV_PASSWORD",
    "ENV_TOKEN",
    "ENV_USERNAME",
    "INDEX_MEDIA_TYPES",
    "MANIFEST_MEDIA_TYPES",
    "MAX_BLOB_BYTES",
    "MAX_MANIFEST_BYTES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Descriptor",
    "DigestMismatchError",
    "ManifestNotFoundError",
    "ManifestRefusedError",
    "Reference",
    "RegistryClient",
    "ResponseTooLargeError",
    "TrustStore",
    "_Creds",
    "describe_tls_failure",
    "image_index",
    "is_loopback",
    "load_credentials",
    "loopback_answers",
    "parse_challenge",
    "parse_reference",
    "preferred_index_type",
    "sha256_digest",
    "warn_insecure",
]
