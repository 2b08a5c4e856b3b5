"""The stand-in base's packages from Debian's archive itself (playbookctl_dev/debian_archive.py):
verified as apt verifies them, cached so that a warm session reads InRelease only, and made with
no host apt at all (GitHub's Ubuntu runners have neither arm64 lists nor kubernetes-client).

The integrity refusals are shown on an archive of the tests' own (tests/support/debmirror.py),
signed by a throwaway key; the real path on Debian's (every session builds the stand-in from it,
and one test here into a fresh cache with no apt on PATH)."""

from __future__ import annotations

import hashlib
import lzma
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from playbookctl.platforms import Platform
from playbookctl_dev.base_image import PACKAGES, StandInError, stand_in_layers
from playbookctl_dev.debian_archive import DEBIAN_KEYRING, MIRROR_ENV
from tests.support.debmirror import Mirror, Signer, serve, signer, stand_in_files
from tests.support.paths import STAND_IN_CACHE

pytestmark = pytest.mark.integration

BOTH = [Platform.parse("linux/amd64"), Platform.parse("linux/arm64")]


@pytest.fixture(scope="module")
def archive_key() -> Iterator[Signer]:
    with signer("test-archive") as s:
        yield s


@pytest.fixture(scope="module")
def other_key() -> Iterator[Signer]:
    with signer("someone-else") as s:
        yield s


@pytest.fixture
def mirror(
    tmp_path: Path, archive_key: Signer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Mirror]:
    """The tests' archive with the stand-in's three packages for amd64 and arm64, published
    and served; PLAYBOOKCTL_STAND_IN_MIRROR points at it."""
    m = Mirror(tmp_path / "mirror", archive_key)
    for arch in ("amd64", "arm64"):
        for package, files in stand_in_files(arch).items():
            m.add(package, arch, files)
    m.publish()
    with serve(m):
        monkeypatch.setenv(MIRROR_ENV, m.url)
        yield m


def _build(mirror: Mirror, cache: Path) -> dict[str, str]:
    layers = stand_in_layers(BOTH, cache, keyring=mirror.signer.keyring)
    return {p: layer.digest for p, layer in layers.items()}


def _refused(mirror: Mirror, cache: Path) -> str:
    """The one-line refusal, with nothing left in the cache but its lock."""
    with pytest.raises(StandInError) as caught:
        _build(mirror, cache)
    message = str(caught.value)
    assert "\n" not in message
    assert {p.name for p in cache.iterdir()} <= {".lock"}
    return message


def test_a_warm_cache_reads_inrelease_only_and_an_unreachable_mirror_uses_it(
    mirror: Mirror,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = tmp_path / "cache"
    first = _build(mirror, cache)
    assert set(first) == {"linux/amd64", "linux/arm64"}
    assert any(r.endswith("Packages.xz") for r in mirror.requests)

    mirror.requests.clear()
    assert _build(mirror, cache) == first
    assert [r.rsplit("/", 1)[-1] for r in mirror.requests] == ["InRelease"]

    # Out of reach: the cached stand-in, with one warning line naming why.
    dead = mirror.url.replace(mirror.url.split("/")[2], "127.0.0.1:1")
    monkeypatch.setenv(MIRROR_ENV, dead)
    capsys.readouterr()
    assert _build(mirror, cache) == first
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("warning: Debian's archive cannot be read (")
    assert "127.0.0.1:1" in err

    # Nothing cached and out of reach: one error naming the mirror and the failure.
    empty = tmp_path / "empty"
    with pytest.raises(StandInError) as caught:
        _build(mirror, empty)
    message = str(caught.value)
    assert "\n" not in message
    assert f"Debian's archive at {dead}" in message
    assert "Connection refused" in message


def test_a_changed_inrelease_resolves_again(mirror: Mirror, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _build(mirror, cache)
    mirror.add("bash-static", "arm64", {"bin/bash-static": b"a newer bash\n"})
    mirror.publish()
    mirror.requests.clear()
    again = _build(mirror, cache)
    assert again["linux/amd64"] == first["linux/amd64"]
    assert again["linux/arm64"] != first["linux/arm64"]
    assert any(r.endswith("Packages.xz") for r in mirror.requests)
    # One set of layers is kept: the replaced arm64 entry went.
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2


def test_a_tampered_deb_is_refused(mirror: Mirror, tmp_path: Path) -> None:
    deb = next(mirror.root.glob("pool/main/k/kubernetes-client/*_arm64.deb"))
    deb.write_bytes(deb.read_bytes().replace(b"2.0\n", b"2.1\n"))
    message = _refused(mirror, tmp_path / "cache")
    assert message.startswith(f"{mirror.url}/pool/main/k/kubernetes-client/")
    assert "_arm64.deb: SHA256 " in message
    assert "bookworm main/binary-arm64/Packages lists: refused" in message


def test_a_packages_index_other_than_inrelease_lists_is_refused(
    mirror: Mirror, tmp_path: Path
) -> None:
    index = mirror.path("dists/bookworm/main/binary-arm64/Packages.xz")
    index.write_bytes(lzma.compress(lzma.decompress(index.read_bytes()) + b"\n"))
    message = _refused(mirror, tmp_path / "cache")
    assert f"{mirror.url}/dists/bookworm/main/binary-arm64/Packages.xz: SHA256 " in message
    assert message.endswith(" InRelease lists: refused")


@pytest.mark.parametrize("fault", ["unsigned", "another key", "altered after signing"])
def test_an_inrelease_not_signed_by_the_keyring_is_refused(
    mirror: Mirror, tmp_path: Path, other_key: Signer, fault: str
) -> None:
    inrelease = mirror.path("dists/bookworm/InRelease")
    release = mirror.path("dists/bookworm/Release").read_bytes()
    if fault == "unsigned":
        inrelease.write_bytes(release)
    elif fault == "another key":
        inrelease.write_bytes(other_key.sign(release))
    else:
        inrelease.write_bytes(inrelease.read_bytes().replace(b"Origin: Test", b"Origin: Evil"))
    message = _refused(mirror, tmp_path / "cache")
    assert message.startswith(f"{mirror.url}/dists/bookworm/InRelease: signature not verified")
    assert str(mirror.signer.keyring) in message
    expected = {
        "unsigned": "no signature",
        "another key": "NO_PUBKEY",
        "altered after signing": "BADSIG",
    }
    assert expected[fault] in message


def test_a_missing_keyring_is_refused_naming_it(mirror: Mirror, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(StandInError, match=r"nowhere\.gpg is missing \(`make system-deps`"):
        stand_in_layers(BOTH, cache, keyring=tmp_path / "nowhere.gpg")
    assert {p.name for p in cache.iterdir()} <= {".lock"}


def test_a_package_missing_for_one_architecture_names_both(mirror: Mirror, tmp_path: Path) -> None:
    del mirror.debs[("kubernetes-client", "arm64")]
    mirror.publish()
    message = _refused(mirror, tmp_path / "cache")
    assert message == "bookworm main/binary-arm64 has no package kubernetes-client for arm64"


def test_a_deb_whose_data_is_neither_xz_nor_gzip_is_refused_by_name(
    mirror: Mirror, tmp_path: Path
) -> None:
    mirror.add("bash-static", "amd64", {"bin/bash-static": b"bash\n"}, compression="zst")
    mirror.add("bash-static", "arm64", {"bin/bash-static": b"bash\n"}, compression="gz")
    mirror.publish()
    message = _refused(mirror, tmp_path / "cache")
    assert message == (
        "bash-static_amd64.deb: its data.tar.zst is compressed in a way not handled here"
    )


def test_the_stand_in_from_debians_archive_with_no_apt_on_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on a GitHub runner, where apt can give no arm64: a fresh cache, a PATH with gpgv only
    (no apt-get, apt-cache, dpkg or dpkg-deb, no busybox), Debian's real mirror and keyring.
    The layers are the session's (same packages, same bytes)."""
    gpgv = shutil.which("gpgv")
    assert gpgv is not None, "gpgv is missing: make system-deps installs it"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gpgv").symlink_to(gpgv)
    monkeypatch.setenv("PATH", str(bin_dir))
    for tool in ("apt-get", "apt-cache", "dpkg", "dpkg-deb", "busybox"):
        assert shutil.which(tool) is None, tool
    fresh = stand_in_layers(BOTH, tmp_path / "cache")
    session = stand_in_layers(BOTH, STAND_IN_CACHE)
    assert {p: (layer.digest, layer.diff_id) for p, layer in fresh.items()} == {
        p: (layer.digest, layer.diff_id) for p, layer in session.items()
    }
    for platform, layer in fresh.items():
        assert set(layer.packages) == set(PACKAGES), platform
        assert hashlib.sha256(layer.path.read_bytes()).hexdigest() == layer.digest.split(":")[1]
    assert DEBIAN_KEYRING.is_file()
