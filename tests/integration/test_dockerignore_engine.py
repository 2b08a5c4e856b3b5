"""`.dockerignore` against the real `docker build` (issue 18): the context playbookctl chooses
(dockerignore.py, for the engine path and for assembly) is the one the docker CLI sends, and
what the daemon then removes (an excluded Containerfile and .dockerignore) is what assembly
leaves out, or assembly hands the image to the engine.

Each case's tree is built three times on the session's engine, `FROM scratch` + `COPY . /ctx/`:
by the docker CLI itself (`DOCKER_BUILDKIT=0 docker build`: the CLI's own .dockerignore reading,
moby/patternmatcher, and go-archive's walk; then the daemon's removal), by playbookctl's engine
path (build.build_playbook_image, the context build.context_tar sends), and by assembly's view of
the context (assemble.context_entries). The files under /ctx must be the same, name and type;
a case whose patterns Docker versions read differently must be Refused by assembly (and still
agree on the engine path). The cases are the places where the docker SDK's exclude_paths, which
playbookctl used before, differs from Docker.

Then each tree is built once more by BuildKit (`docker build` since Docker 23; the CLI is
tests/support/buildkit.py's choice), whose context transfer (fsutil) sends only what its walk
keeps, so nothing is removed after: what arrives must be assembly's context. BuildKit driven by
a CLI before 23 walks with that CLI's fsutil and reads the cases versions read differently as
Docker 20.10 does (`d`, `!d/keep`, `*`: it sends an empty `d`, where the 20.10 classic path
sends nothing of `d` and 23+ sends d/keep too); against it they must differ.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from playbookctl import assemble, build, dockerignore
from tests.support.buildkit import buildkit_cli

pytestmark = pytest.mark.integration
CONTAINERFILE = "FROM scratch\nCOPY . /ctx/\n"


@dataclass(frozen=True)
class Case:
    name: str
    dockerignore: str
    files: tuple[str, ...]
    version_dependent: bool = False  # assembly must refuse (the engine decides)
    # A docker CLI before 23 (Debian's docker.io: 20.10, what `make system-deps` installs)
    # sends another context: its fileutils read the pattern as a regular expression, or match
    # a child against its parents otherwise. Against such a CLI the case must differ.
    differs_before_23: bool = False


CASES = [
    # The SDK lower-cases pattern and name; Docker does not.
    Case("case-sensitive", "*.MD\nSecret.txt\n", ("readme.md", "NOTES.MD", "secret.txt")),
    # Go classes: `[^x]` negates, `[!x]` is a class of `!` and `x` (the SDK: the reverse).
    Case("classes", "[^a]*.txt\n[!b]*.log\n", ("a1.txt", "b1.txt", "b.log", "!.log", "c.log")),
    # `\` escapes (the SDK keeps the backslash as a character).
    Case("escapes", "\\*.txt\nx\\?\n", ("*.txt", "a.txt", "x?", "xy")),
    # `../x` is not `x` (the SDK drops `..` at the start), a leading `/` is dropped.
    Case("dotdot-and-root", "../drop.txt\n/root.txt\n", ("drop.txt", "root.txt", "keep.txt")),
    # Comments only at the very start of a line; trailing and leading spaces trimmed.
    Case(
        "comments-and-spaces",
        "# a comment\n  #hash.txt\nspaced.txt   \n\t tab.txt\n",
        ("#hash.txt", "spaced.txt", "tab.txt", "# a comment", "kept.txt"),
    ),
    # `**` at any depth; a child re-included under an excluded directory; a directory entered
    # only when a `!` pattern starts with its path and a `/` (`!docs2/x` does not enter docs).
    Case(
        "double-star-and-reinclusion",
        "**/tmp\nbuild\n!build/keep.txt\ndocs\n!docs2/x\n*.md\n!**/README.md\n",
        (
            "a/b/tmp/x",
            "tmp",
            "build/keep.txt",
            "build/drop.txt",
            "docs/x",
            "docs2/x",
            "docs2/y",
            "top.md",
            "README.md",
            "sub/README.md",
        ),
    ),
    # An excluded directory not entered although a pattern under it would re-include a file.
    Case("not-entered", "*\n!keep.sh\n!**/*.md\n", ("keep.sh", "other/note.md", "x.md")),
    # go-archive matches a child against its parent's per-pattern results: `*`, skipped for
    # `d` (already excluded), does not exclude d/keep through its parent (the SDK: it does).
    Case("parent-results", "d\n!d/keep\n*\n", ("d/keep", "d/drop", "top"), differs_before_23=True),
    # a prefix (`x**`), classes with escapes, `..` inside a pattern
    Case("prefix-and-escaped-class", "lo**\n[\\]x]1\na/../b\n", ("log", "lo/x", "]1", "x1", "b")),
    # The daemon removes an excluded Containerfile and .dockerignore (and `!` keeps them).
    Case("daemon-removes-both", "Containerfile\n.dockerignore\n", ("a.txt",)),
    Case("daemon-removes-by-wildcard", "*\n!a.txt\n", ("a.txt", "b.txt")),
    Case("daemon-keeps-reincluded", ".docker*\nContainer*\n!.dockerignore\n", ("a.txt",)),
    # Read differently by Docker 20.10 (regex) and 23+ (literal): the context is 23+'s reading
    # (the CLI here is 23+); what the 20.10 daemon removes is left to the engine.
    Case(
        "regex-characters", "a+b\nc(1)\n.dockerignor(e)\n", ("a+b", "aab", "c(1)", "c1"), True, True
    ),
    Case(
        "suffix", "**ignore\n**le.txt\n", ("file.txt", "d/file.txt", "le.txt", "x.txt"), True, True
    ),
    Case("anchor", "^x\n^y*\n", ("^x", "x", "y1", "^y1"), True, True),
    Case("escaped-regex-characters", "a\\+b\n\\^x\n", ("a+b", "aab", "^x", "x")),
]


def _tree(directory: Path, case: Case) -> Path:
    directory.mkdir(parents=True)
    for rel in case.files:
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{rel}\n")
    (directory / "Containerfile").write_text(CONTAINERFILE)
    (directory / ".dockerignore").write_text(case.dockerignore)
    return directory


def _docker_cli() -> tuple[str, int]:
    """The docker CLI on PATH and its major version."""
    cli = shutil.which("docker")
    if cli is None:
        pytest.skip("needs the docker CLI (the oracle is what `docker build` sends)")
    shown = subprocess.run(
        [cli, "version", "--format", "{{.Client.Version}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout.strip()
    return cli, int(shown.split(".", 1)[0])


def _ctx_entries(saved: Path) -> set[tuple[str, str]]:
    """(path under /ctx, "dir"|"file") from a `docker save` archive of a one-layer image."""
    with tarfile.open(saved) as image:
        manifest = json.load(image.extractfile("manifest.json"))  # type: ignore[arg-type]
        (layer_name,) = manifest[0]["Layers"]
        with tarfile.open(fileobj=image.extractfile(layer_name)) as layer:
            return {
                (m.name.rstrip("/").removeprefix("ctx/"), "dir" if m.isdir() else "file")
                for m in layer
                if m.name.rstrip("/").startswith("ctx/")
            }


def _saved(cli: str, env: dict[str, str], ref: str, out: Path) -> set[tuple[str, str]]:
    subprocess.run([cli, "save", "-o", str(out), ref], env=env, check=True, timeout=120)
    return _ctx_entries(out)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_context_is_what_docker_build_sends(
    case: Case, docker_engine: str, tmp_path: Path
) -> None:
    cli, major = _docker_cli()
    env = {
        **os.environ,
        "DOCKER_HOST": docker_engine,
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        "DOCKER_BUILDKIT": "0",
    }
    oracle_dir = _tree(tmp_path / "oracle", case)
    ours_dir = _tree(tmp_path / "ours", case)
    oracle_ref = f"dockerignore-oracle/{case.name}:1"
    built = subprocess.run(
        [
            cli,
            "build",
            "-q",
            "-f",
            str(oracle_dir / "Containerfile"),
            "-t",
            oracle_ref,
            str(oracle_dir),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    want = _saved(cli, env, oracle_ref, tmp_path / "oracle.tar")

    ours_ref = f"dockerignore-ours/{case.name}:1"
    with build.Engine(docker_engine) as engine:
        build.build_playbook_image(
            engine, ours_dir, containerfile="Containerfile", ref=ours_ref, labels={}, overrides={}
        )
    ours = _saved(cli, env, ours_ref, tmp_path / "ours.tar")
    if major < 23 and case.differs_before_23:
        # playbookctl follows today's Docker: an older CLI sends something else, as the README
        # and the lint warning say (the case's 23+ reading is checked where such a CLI is).
        assert ours != want, f"docker CLI {major} reads these patterns as 23+ does"
    else:
        assert ours == want, "the engine path"

    if case.version_dependent:
        with pytest.raises(assemble.Refused, match=r"\.dockerignore: line \d+: pattern"):
            assemble.context_entries(ours_dir, "Containerfile")
        return
    entries = assemble.context_entries(ours_dir, "Containerfile")
    assembled = {(rel, entry.kind) for rel, entry in entries.items() if rel}
    assert assembled == ours, "assembly's context"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_context_is_what_buildkit_is_sent(
    case: Case, docker_engine: str, tmp_path: Path
) -> None:
    """`docker build` since Docker 23 is BuildKit: the client sends only what its fsutil walk
    keeps of the patterns (so nothing is removed after), and that is the context assembly sees.
    Driven by a CLI before 23 (DOCKER_BUILDKIT=1), the walk is that CLI's (its 2020 fsutil):
    it reads the cases Docker versions read differently as 20.10 does, so they must differ."""
    cli = buildkit_cli()
    old = not cli.buildx and int(cli.version.split(".", 1)[0]) < 23
    directory = _tree(tmp_path / "ctx", case)
    ref = f"dockerignore-buildkit/{case.name}:1"
    image_id = cli.build(directory, tag=ref, docker_host=docker_engine)
    got = _saved(cli.cli, cli.env(docker_host=docker_engine), image_id, tmp_path / "kit.tar")
    if case.version_dependent:
        # Assembly refuses these (the other test); today's reading, less what a daemon of
        # some version removes, is compared.
        files = dockerignore.context_files(directory, "Containerfile")
        sent = assemble.read_context(directory, files)
        want = {(rel, e.kind) for rel, e in sent.items() if rel}
        gone = {(".dockerignore", "file"), ("Containerfile", "file")}
        got, want = got - gone, want - gone
    else:
        want = {
            (rel, e.kind)
            for rel, e in assemble.context_entries(directory, "Containerfile").items()
            if rel
        }
    if old and case.differs_before_23:
        assert got != want, f"BuildKit driven by docker CLI {cli.version} reads these as 23+ does"
    else:
        assert got == want
