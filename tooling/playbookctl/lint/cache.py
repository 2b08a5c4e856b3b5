"""A persistent cache of the external linters' verdicts, keyed by everything the verdict depends on.

hadolint and shellcheck cost tens of milliseconds of CPU per file, every run; their verdict is a
pure function of the tool's version, its options, the configuration it reads and the file's bytes
(lint/external.py builds the key from exactly those). So a verdict is stored once and reused until
one of them changes, as ruff and pre-commit do.

Settings (environment):
    PLAYBOOKCTL_CACHE_DIR   the cache directory's parent; default $XDG_CACHE_HOME/playbookctl
                            (~/.cache/playbookctl when XDG_CACHE_HOME is unset). Entries live in
                            its `lint-v1/` subdirectory.
    PLAYBOOKCTL_NO_CACHE=1  neither read nor write the cache (as `playbookctl lint --no-cache`).

Safety: an entry is written to a temporary file and renamed into place (readers never see half an
entry; concurrent writers of one key write the same bytes); an entry that does not parse, has the
wrong shape or names another key is a miss; an unwritable cache directory only means no caching.
The cache is bounded: past MAX_ENTRIES entries or MAX_BYTES bytes, the least recently used are
removed. Deleting the directory is always safe.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from pathlib import Path

from playbookctl.config import parse_boolean
from playbookctl.findings import Finding, Severity

FORMAT = "lint-v1"
MAX_ENTRIES = 20_000
MAX_BYTES = 64 * 1024 * 1024
# A file with more findings than this is cheap to re-lint compared to what storing it costs.
MAX_ENTRY_BYTES = 1024 * 1024


def cache_root() -> Path:
    """The directory the cache lives in (its lint-v1/ subdirectory holds the entries)."""
    explicit = os.environ.get("PLAYBOOKCTL_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "playbookctl"


def cache_disabled() -> bool:
    """PLAYBOOKCTL_NO_CACHE read as every boolean variable is (config.parse_boolean); a word
    it refuses has already stopped the run in load_config."""
    raw = os.environ.get("PLAYBOOKCTL_NO_CACHE", "")
    try:
        return bool(raw.strip()) and parse_boolean(raw)
    except ValueError:
        return False


def open_cache(enabled: bool = True) -> ResultCache | None:
    """The cache as the environment configures it, or None when disabled."""
    if not enabled or cache_disabled():
        return None
    return ResultCache(cache_root() / FORMAT)


class ResultCache:
    """Findings per key, positions as the tool reported them (relative to the linted content)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> list[Finding] | None:
        """The stored findings (file left empty), or None on a miss or an unusable entry."""
        path = self._path(key)
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            data = None
        found = _decode(data, key)
        with self._lock:
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
        if found is not None:
            # Marks the entry as recently used, for pruning; a read-only cache still serves.
            with contextlib.suppress(OSError):
                os.utime(path)
        return found

    def put(self, key: str, findings: list[Finding]) -> None:
        """Store findings under key; any failure only means the entry is not stored."""
        payload = json.dumps(
            {
                "format": FORMAT,
                "key": key,
                "findings": [
                    [f.rule, f.severity.value, f.line, f.column, f.message] for f in findings
                ],
            },
            separators=(",", ":"),
        ).encode()
        if len(payload) > MAX_ENTRY_BYTES:
            return
        path = self._path(key)
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, path)
            tmp = None
        except OSError:
            return
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        with self._lock:
            self.writes += 1

    def prune(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> int:
        """Remove the least recently used entries beyond the bounds (to 80% of them, so a run
        after a prune does not prune again); returns how many were removed."""
        entries: list[tuple[float, int, str]] = []
        try:
            subdirs = list(os.scandir(self.directory))
        except OSError:
            return 0
        for sub in subdirs:
            try:
                if not sub.is_dir(follow_symlinks=False):
                    continue
                for entry in os.scandir(sub.path):
                    st = entry.stat(follow_symlinks=False)
                    entries.append((st.st_mtime, st.st_size, entry.path))
            except OSError:
                continue  # another process pruned it meanwhile
        total = sum(size for _, size, _ in entries)
        if len(entries) <= max_entries and total <= max_bytes:
            return 0
        entries.sort()
        removed = 0
        keep_entries, keep_bytes = int(max_entries * 0.8), int(max_bytes * 0.8)
        for _, size, path in entries:
            if len(entries) - removed <= keep_entries and total <= keep_bytes:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
            removed += 1
            total -= size
        return removed


def _decode(data: object, key: str) -> list[Finding] | None:
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
        return None
    items = data.get("findings")
    if not isinstance(items, list):
        return None
    out: list[Finding] = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 5):
            return None
        rule, severity, line, column, message = item
        if not (
            isinstance(rule, str)
            and severity in {s.value for s in Severity}
            and isinstance(line, int)
            and isinstance(column, int)
            and isinstance(message, str)
        ):
            return None
        out.append(Finding(rule, Severity(severity), "", line, column, message))
    return out
