"""playbook.py: source files and the source hash (streamed, bounded), special files, sizes."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path

import pytest

from playbookctl import cli
from playbookctl.config import DEFAULT_PLATFORMS
from playbookctl.errors import FatalError
from playbookctl.playbook import hash_platforms, size_problem, source_files, source_hash
from tests.support.lintrepo import good_playbook, make_repo

TWO_GB = 2 * 1024**3


def _zeros_digest(size: int) -> str:
    h = hashlib.sha256()
    chunk = bytes(1024 * 1024)
    for _ in range(size // len(chunk)):
        h.update(chunk)
    return h.hexdigest()


def test_a_2_gb_file_is_hashed_in_bounded_memory(tmp_path: Path) -> None:
    d = tmp_path / "pb"
    d.mkdir()
    (d / "workflow.yaml").write_text("kind: x\n")
    with (d / "big.bin").open("wb") as fh:  # sparse: 2 GB to read, nothing on disk
        fh.truncate(TWO_GB)
    tracemalloc.start()
    try:
        got = source_hash(d)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, peak
    outer = hashlib.sha256()
    outer.update(f"big.bin\0-\0{_zeros_digest(TWO_GB)}\n".encode())
    small = hashlib.sha256(b"kind: x\n").hexdigest()
    outer.update(f"workflow.yaml\0-\0{small}\n".encode())
    hash_platforms(outer, DEFAULT_PLATFORMS)  # the platform list is part of the source hash
    assert got == "sha256:" + outer.hexdigest()


def test_a_symbolic_link_to_a_directory_is_listed_and_refused(tmp_path: Path) -> None:
    d = tmp_path / "pb"
    (d / "lib").mkdir(parents=True)
    (d / "lib" / "a.sh").write_text("echo a\n")
    before = source_hash(d)
    (d / "alias").symlink_to("lib")
    assert [p.relative_to(d).as_posix() for p in source_files(d)] == ["alias", "lib/a.sh"]
    with pytest.raises(FatalError, match="a symbolic link to a directory"):
        source_hash(d)
    (d / "alias").unlink()
    assert source_hash(d) == before


@pytest.mark.parametrize(
    ("sizes", "limit", "largest"),
    [
        ({"a": 10, "b": 20}, 30, None),  # at the limit: fine
        ({"a": 10, "b": 21}, 30, "b"),
        ({"a": 100}, 99, "a"),
        ({}, 1, None),
    ],
)
def test_size_problem(
    tmp_path: Path, sizes: dict[str, int], limit: int, largest: str | None
) -> None:
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
    found = size_problem(tmp_path, source_files(tmp_path), limit)
    if largest is None:
        assert found is None
    else:
        assert found is not None
        assert found[0] == tmp_path / largest
        assert (
            f"total {sum(sizes.values())} bytes, more than max-playbook-bytes ({limit})"
            in (found[1])
        )


def test_a_playbook_over_max_playbook_bytes_is_a_lint_error_and_not_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(good_playbook())})
    monkeypatch.chdir(root)
    (root / "playbooks" / "restart-deployment" / "data.bin").write_bytes(b"\0" * 200_000)
    monkeypatch.setenv("PLAYBOOKCTL_MAX_PLAYBOOK_BYTES", "100000")
    code = cli.main(["lint", "--no-external", "--format", "json", "playbooks/restart-deployment"])
    out, _err = capsys.readouterr()
    assert code == 1
    found = [f for f in json.loads(out) if f["rule"] == "playbook.size"]
    assert [f["file"] for f in found] == ["playbooks/restart-deployment/data.bin"]
    assert "more than max-playbook-bytes (100000)" in found[0]["message"]
    code = cli.main(["publish", "--dry-run", "--registry", "127.0.0.1:1", "--commit", "a" * 40])
    out, _err = capsys.readouterr()
    assert code == 1
    assert "playbook.size" in out
    assert "skipped" in out
    monkeypatch.setenv("PLAYBOOKCTL_MAX_PLAYBOOK_BYTES", "300000")
    code = cli.main(["lint", "--no-external", "playbooks/restart-deployment"])
    capsys.readouterr()
    assert code == 0


def test_the_default_max_playbook_bytes_is_64_mib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The documented default, by behaviour: a playbook of exactly 64 MiB lints clean, one byte
    more is playbook.size. The files are sparse (size is what counts, no 64 MiB is written), each
    at most max-file-bytes (1 MiB) so that only the total is over."""
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(good_playbook())})
    monkeypatch.chdir(root)
    directory = root / "playbooks" / "restart-deployment"
    mib, limit = 1 << 20, 64 << 20
    left = limit - sum(p.stat().st_size for p in source_files(directory))
    n = 0
    while left > 0:
        with (directory / f"data-{n:02d}.bin").open("wb") as fh:
            fh.truncate(min(mib, left))
        left -= min(mib, left)
        n += 1
    args = ["lint", "--no-external", "--format", "json", "playbooks/restart-deployment"]
    code = cli.main(args)
    out, _err = capsys.readouterr()
    assert [f for f in json.loads(out) if f["rule"] == "playbook.size"] == []
    assert code == 0, out
    with (directory / "one-more.bin").open("wb") as fh:
        fh.truncate(1)
    code = cli.main(args)
    out, _err = capsys.readouterr()
    assert code == 1
    (found,) = [f for f in json.loads(out) if f["rule"] == "playbook.size"]
    assert f"total {limit + 1} bytes, more than max-playbook-bytes ({limit})" in found["message"]
