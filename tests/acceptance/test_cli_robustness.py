"""Bad input through the command line: one clear line naming the file or variable, exit 1 (2 for
usage), nothing changed, never a traceback or an internal error."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from playbookctl.config import load_config
from playbookctl_dev.registry import free_port
from tests.support.clirun import run
from tests.support.lintrepo import good_playbook, make_repo

PYPROJECT = '[tool.playbookctl]\nregistry = "ghcr.io"\n'


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(good_playbook())})
    monkeypatch.chdir(root)
    return root


# (pyproject.toml's [tool.playbookctl] body or the whole file, the expected message part)
BAD_PYPROJECT = [
    ("[tool.playbookctl]\njobs = = 4\n", "pyproject.toml: Invalid value (at line 2"),
    ("[tool.playbookctl]\njobz = 4\n", "unknown [tool.playbookctl] setting(s): jobz (known: "),
    ('[tool.playbookctl]\njobs = "x"\n', "'jobs': expected an integer, got a string"),
    ("[tool.playbookctl]\njobs = true\n", "'jobs': expected an integer, got a boolean"),
    ("[tool.playbookctl]\njobs = 1.5\n", "'jobs': expected an integer, got a number"),
    ("[tool.playbookctl]\njobs = 0\n", "'jobs': must be at least 1, got 0"),
    ("[tool.playbookctl]\nmax-file-bytes = -5\n", "'max-file-bytes': must be at least 1"),
    ("[tool.playbookctl]\npush-retries = -1\n", "'push-retries': must be 0 or more"),
    ("[tool.playbookctl]\nregistry-timeout = 0\n", "'registry-timeout': expected a number greater"),
    ("[tool.playbookctl]\nregistry-timeout = nan\n", "'registry-timeout': expected a number gr"),
    ('[tool.playbookctl]\nregistry-timeout = "5"\n', "'registry-timeout': expected a number, got"),
    ("[tool.playbookctl]\nregistry = 5\n", "'registry': expected a string, got an integer"),
    ('[tool.playbookctl]\ninsecure-registries = "a"\n', "'insecure-registries': expected an arr"),
    ("[tool.playbookctl]\nbase-image-overrides = {a = 1}\n", "'base-image-overrides': expected"),
    ("[tool]\nplaybookctl = 5\n", "pyproject.toml: [tool.playbookctl] must be a table"),
    ('[tool.playbookctl]\nregistry = "\xff"\n', "pyproject.toml: not valid UTF-8"),
]


@pytest.mark.parametrize(("text", "message"), BAD_PYPROJECT)
def test_bad_pyproject_names_the_file(
    repo: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    (repo / "pyproject.toml").write_bytes(text.encode("latin-1"))  # \xff: one invalid byte
    code, out, err = run(capsys, "-C", str(repo), "lint", "--no-external")
    assert (code, out) == (1, "")
    assert err.startswith(f"playbookctl: error: {repo / 'pyproject.toml'}: "), err
    assert message in err
    assert err.count("\n") == 1


BAD_ENV = [
    ("PLAYBOOKCTL_JOBS", "abc", "'jobs': expected an integer, got 'abc'"),
    ("PLAYBOOKCTL_JOBS", "0", "'jobs': must be at least 1, got 0"),
    ("PLAYBOOKCTL_BASE_IMAGE_OVERRIDES", "not json", "'base-image-overrides': not valid JSON"),
    ("PLAYBOOKCTL_BASE_IMAGE_OVERRIDES", "[1]", "'base-image-overrides': expected a JSON object"),
    ("PLAYBOOKCTL_BASE_IMAGE_OVERRIDES", '{"a": 1}', "mapping strings to strings"),
    ("PLAYBOOKCTL_REGISTRY_TIMEOUT", "-1", "'registry-timeout': expected a number greater than 0"),
    ("PLAYBOOKCTL_REGISTRY_TIMEOUT", "inf", "'registry-timeout': expected a number greater than 0"),
    ("PLAYBOOKCTL_REGISTRY_TIMEOUT", "soon", "'registry-timeout': expected a number, got 'soon'"),
    ("PLAYBOOKCTL_PUSH_STALL_TIMEOUT", "0", "'push-stall-timeout': expected a number greater than"),
    ("PLAYBOOKCTL_REGISTRY_RETRIES", "-1", "'registry-retries': must be 0 or more, got -1"),
    ("PLAYBOOKCTL_MAX_FILE_BYTES", "0", "'max-file-bytes': must be at least 1, got 0"),
    ("PLAYBOOKCTL_ROOT", "/nonexistent/x", "PLAYBOOKCTL_ROOT: /nonexistent/x is not a directory"),
    ("PLAYBOOKCTL_REGISTRY", "http://r.io", "'registry': a registry is host[:port], without a s"),
    ("PLAYBOOKCTL_REGISTRY", "", "'registry': expected host[:port] with a '.' or a port, or lo"),
    ("PLAYBOOKCTL_REGISTRY", "ghcr.io/org", "'registry': expected host[:port] with a '.' or a p"),
    ("PLAYBOOKCTL_IMAGE_REPO", "Bad Repo", "'image-repo': expected lower-case path components"),
    ("PLAYBOOKCTL_INSECURE_REGISTRIES", "a:1,b c", "'insecure-registries': 'b c': expected host"),
]


@pytest.mark.parametrize(("var", "value", "message"), BAD_ENV)
def test_bad_environment_names_the_variable(
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    var: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(var, value)
    code, out, err = run(capsys, "lint", "--no-external")
    assert (code, out) == (1, "")
    assert err.startswith(f"playbookctl: error: {var}: "), err
    assert message in err
    assert err.count("\n") == 1


def test_good_settings_still_load(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "pyproject.toml").write_text(
        "[tool.playbookctl]\njobs = 2\nregistry-timeout = 3\ninsecure-registries = ['a:5000']\n"
        "base-image-overrides = {'x:1' = 'y:1'}\npush-retries = 0\n"
    )
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_TIMEOUT", " 2.5 ")
    monkeypatch.setenv("PLAYBOOKCTL_JOBS", "3")
    config = load_config(repo)
    assert (config.jobs, config.registry_timeout, config.push_retries) == (3, 2.5, 0)
    assert config.insecure_registries == ("a:5000",)
    assert config.base_image_overrides == {"x:1": "y:1"}
    assert run(capsys, "lint", "--no-external")[:2] == (0, "")


def test_lint_with_nothing_to_lint_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "lint", "--format", "json")
    assert (code, out) == (1, "[]\n")
    assert err == (
        f"playbookctl lint: nothing to lint under {tmp_path} (no playbook, no registry/ file, and "
        "no pyproject.toml with [tool.playbookctl]); pass paths, or -C the repository root\n"
    )


def test_pyproject_with_a_bom_is_read(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "pyproject.toml").write_bytes(b"\xef\xbb\xbf[tool.playbookctl]\njobs = 2\n")
    monkeypatch.chdir(repo / "playbooks")  # found from below, too
    assert load_config().jobs == 2
    assert run(capsys, "lint", "--no-external")[:2] == (0, "")


def test_missing_root_flag(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "-C", str(repo / "nope"), "lint")
    assert (code, out) == (1, "")
    assert err == f"playbookctl: error: repository root {repo / 'nope'} is not a directory\n"


def test_lint_fifo_is_a_finding_not_a_hang(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(repo / "pipe.yaml")
    code, out, _ = run(capsys, "lint", "--no-external", "pipe.yaml")
    assert (code, out.splitlines()[0]) == (1, "pipe.yaml:1:1: error [load.io] not a regular file")


def test_lint_symlink_loop(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "a.yaml").symlink_to("b.yaml")
    (repo / "b.yaml").symlink_to("a.yaml")
    code, out, err = run(capsys, "lint", "a.yaml")
    assert (code, out) == (2, "")
    assert err == "playbookctl: usage error: broken or looping symbolic link: a.yaml\n"


@pytest.mark.parametrize("image", ["::", "a b", "UPPER/x:1", "localhost:5000/x@sha256:abc"])
def test_render_refuses_a_bad_image(
    repo: Path, capsys: pytest.CaptureFixture[str], image: str
) -> None:
    code, out, err = run(capsys, "render", "restart-deployment", "--image", image)
    assert (code, out) == (1, "")
    assert err.startswith(f"playbookctl: error: invalid reference {image!r}: ")


def _result(
    name: str = "restart-deployment", digest: object = "sha256:" + "3" * 64
) -> dict[str, object]:
    return {
        "name": name,
        "version": "1.0.0",
        "source_hash": "sha256:" + "1" * 64,
        "status": "pushed",
        "image": None,
        "bundle": {
            "repository": f"r/b/{name}",
            "tag": "1.0.0",
            "digest": digest,
            "action": "pushed",
        },
    }


# (the file's content, the message after "<file>: ")
BAD_RESULTS = [
    (
        "{bad",
        "not a publish result file: invalid JSON at line 1 column 2: Expecting property name "
        "enclosed in double quotes",
    ),
    ("[]", 'not a publish result file: expected a JSON object {"schema": 1, "results": [...]}'),
    (
        '{"schema": 2, "results": []}',
        "not a publish result file: unsupported schema 2 (expected 1)",
    ),
    (
        json.dumps({"schema": 1, "results": [5]}),
        "not a publish result file: results[0]: expected an object",
    ),
    (
        json.dumps({"schema": 1, "results": [{"name": "x"}]}),
        "not a publish result file: results[0]: missing 'version'",
    ),
    (
        json.dumps({"schema": 1, "results": [_result(digest="abc")]}),
        "not a publish result file: results[0] (restart-deployment): bundle digest 'abc' is not "
        "sha256:<64 hex>",
    ),
]


@pytest.mark.parametrize(("content", "message"), BAD_RESULTS)
def test_register_bad_results_file(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "results.json"
    path.write_text(content)
    before = sorted(p.relative_to(repo) for p in repo.rglob("*"))
    code, out, err = run(capsys, "register", str(path))
    assert (code, out, err) == (1, "", f"playbookctl: error: {path}: {message}\n")
    assert sorted(p.relative_to(repo) for p in repo.rglob("*")) == before


def test_register_conflicting_results_name_both_files(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"schema": 1, "results": [_result(digest="sha256:" + "3" * 64)]}))
    b.write_text(json.dumps({"schema": 1, "results": [_result(digest="sha256:" + "4" * 64)]}))
    code, out, err = run(capsys, "register", str(a), str(b))
    assert (code, out) == (1, "")
    assert err == (
        f"playbookctl: error: {b}: conflicting results for restart-deployment: 1.0.0 (bundle "
        f"sha256:{'4' * 64}) here, 1.0.0 (bundle sha256:{'3' * 64}) in {a}\n"
    )
    assert not (repo / "registry" / "workflows").exists()


def test_register_missing_results_file(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "register", str(tmp_path / "nope.json"))
    assert (code, err) == (
        1,
        f"playbookctl: error: {tmp_path / 'nope.json'}: cannot read: No such file or directory\n",
    )


@pytest.mark.parametrize(
    ("blocker", "message"),
    [
        ("playbooks", "playbooks is not a directory; cannot create playbooks/fix-thing"),
        (
            "registry/action-types",
            "registry/action-types is not a directory; cannot create "
            "registry/action-types/fix-thing.yaml",
        ),
    ],
)
def test_new_with_a_file_in_the_way_changes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    blocker: str,
    message: str,
) -> None:
    root = tmp_path / "repo"
    (root / "registry").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.playbookctl]\n")
    (root / blocker).write_text("")
    monkeypatch.chdir(root)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    code, out, err = run(capsys, "new", "fix-thing", "--action-type", "FixThing")
    assert (code, out, err) == (1, "", f"playbookctl: error: {message}\n")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_unreachable_registry_says_why_within_seconds(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = f"127.0.0.1:{free_port()}"  # nobody listens: connection refused
    start = time.monotonic()
    code, out, err = run(capsys, "inspect", f"{host}/x/y:1.0.0")
    assert time.monotonic() - start < 30
    assert (code, out) == (1, "")
    assert err == (
        f"playbookctl: error: registry {host}: get manifest {host}/x/y:1.0.0 failed after 5 "
        "attempt(s): ConnectionError (connection refused: is the registry running and the port "
        "right?)\n"
    )


@pytest.mark.parametrize(
    ("content", "what"),
    [
        ("- 1\n", "a document that is not a Kubernetes object (apiVersion or kind missing)"),
        ("kind: ConfigMap\nmetadata: {}\n", "a document that is not a Kubernetes object"),
        ("apiVersion: v1\nkind: ConfigMap\n", "kind 'ConfigMap' (apiVersion 'v1')"),
    ],
)
def test_verify_names_a_foreign_document_plainly(
    repo: Path, capsys: pytest.CaptureFixture[str], content: str, what: str
) -> None:
    (repo / "registry" / "workflows").mkdir()
    (repo / "registry" / "workflows" / "restart-deployment.yaml").write_text(content)
    code, out, _ = run(capsys, "verify", "--offline")
    assert code == 1
    assert (
        f"registry/workflows/restart-deployment.yaml:1:1: error [verify.registration-kind] {what}"
    ) in out
    assert "None" not in out


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (".", "--output {tmp}: is a directory; name a file"),
        (
            "afile/x/results.json",
            "--output {tmp}/afile/x/results.json: {tmp}/afile is not a writable directory",
        ),
    ],
)
def test_publish_refuses_an_unwritable_output_before_publishing(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str, message: str
) -> None:
    (tmp_path / "afile").write_text("")
    target = tmp_path if output == "." else tmp_path / output
    # The registry is unreachable: had publish started, the error would be about it instead.
    code, out, err = run(
        capsys,
        "publish",
        "--registry",
        "127.0.0.1:1",
        "--commit",
        "a" * 40,
        "--output",
        str(target),
    )
    assert (code, out) == (2, "")
    assert err == f"playbookctl: usage error: {message.format(tmp=tmp_path)}\n"


def _loop(d: Path) -> None:
    (d / "l1").symlink_to("l2")
    (d / "l2").symlink_to("l1")


def _dir_link(d: Path) -> None:
    (d / "lib").mkdir()
    (d / "lib" / "data.txt").write_text("x\n")
    (d / "alias").symlink_to("lib")


# (what goes into the playbook directory, the findings it gives: file, message)
SPECIAL_FILES = [
    (lambda d: os.mkfifo(d / "fifo"), [("fifo", "not a regular file (a FIFO, socket or device)")]),
    (_loop, [("l1", "a broken or looping symbolic link"), ("l2", "a broken or looping symbolic")]),
    (lambda d: (d / "gone").symlink_to("nowhere"), [("gone", "a broken or looping symbolic link")]),
    (lambda d: (d / "out").symlink_to("/etc/hostname"), [("out", "a symbolic link out of the")]),
    (lambda d: (d / "inner").symlink_to("remediate.sh"), []),  # inside the playbook: fine
    # A link to a directory, inside or out: the build copies the link, the hash can't cover it.
    (lambda d: (d / "etc").symlink_to("/etc"), [("etc", "a symbolic link to a directory")]),
    (_dir_link, [("alias", "a symbolic link to a directory")]),
]


@pytest.mark.parametrize(("make", "expected"), SPECIAL_FILES)
def test_special_files_in_a_playbook_are_findings(
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], None],
    expected: list[tuple[str, str]],
) -> None:
    make(repo / "playbooks" / "restart-deployment")
    # External linters included: a FIFO must not block the shebang sniffing either.
    code, out, _ = run(capsys, "lint", "--format", "json", "playbooks/restart-deployment")
    found = [
        (f["file"], f["message"]) for f in json.loads(out) if f["rule"] == "playbook.special-file"
    ]
    assert code == (1 if expected else 0)
    assert len(found) == len(expected)
    for (file, message), (want_file, want_message) in zip(found, expected, strict=True):
        assert file == f"playbooks/restart-deployment/{want_file}"
        assert message.startswith(want_message)


def test_publish_skips_a_playbook_holding_a_fifo_instead_of_hanging(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo(repo / "playbooks" / "restart-deployment" / "fifo")
    code, out, _ = run(
        capsys, "publish", "--dry-run", "--registry", "127.0.0.1:1", "--commit", "a" * 40
    )
    assert code == 1
    assert out.splitlines() == [
        "restart-deployment 1.0.0: skipped",
        "  error: not published: 1 lint error(s)",
        "    playbooks/restart-deployment/fifo:1:1: playbook.special-file: not a regular file (a "
        "FIFO, socket or device): a playbook holds regular files",
        "1 skipped",
    ]


@pytest.mark.parametrize("as_directory", [False, True])
def test_render_a_playbook_without_its_workflow_says_so(
    repo: Path, capsys: pytest.CaptureFixture[str], as_directory: bool
) -> None:
    workflow = repo / "playbooks" / "restart-deployment" / "workflow.yaml"
    workflow.unlink()
    if as_directory:
        workflow.mkdir()
    code, out, err = run(capsys, "render", "restart-deployment")
    assert (code, out, err) == (
        1,
        "",
        "playbookctl: error: playbooks/restart-deployment has no workflow.yaml file; run "
        "playbookctl lint playbooks/restart-deployment for the details\n",
    )


USAGE = [
    (
        ["lint", "--format", "bad"],
        "lint: argument --format: invalid choice: 'bad' (choose from "
        "'human', 'json', 'github', 'sarif') (see playbookctl lint --help)",
    ),
    ([], "the following arguments are required: COMMAND (see playbookctl --help)"),
    (
        ["publish", "--jobs", "x"],
        "publish: argument --jobs: invalid int value: 'x' (see playbookctl publish --help)",
    ),
]


@pytest.mark.parametrize(("argv", "message"), USAGE)
def test_usage_errors_name_the_command_once(
    repo: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(capsys, *argv) == (2, "", f"playbookctl: usage error: {message}\n")


# (file of the playbook, its bytes, the one finding: rule, line, column, message)
UNREADABLE_SOURCES = [
    (
        "Containerfile",
        b"FROM x\n\xff\xfe\x00binary",
        ("load.encoding", 2, 1, "file is not valid UTF-8 (byte 0xff)"),
    ),
    (
        "remediate.sh",
        b"#!/bin/bash\necho \xff\n",
        ("load.encoding", 2, 6, "file is not valid UTF-8 (byte 0xff)"),
    ),
    (
        "remediate.sh",
        b"#!/bin/bash\n" + b"echo hi\n" * 400,
        ("load.too-large", 1, 1, "file is 3212 bytes, over the 3000-byte bound"),
    ),
]


@pytest.mark.parametrize(("name", "content", "expected"), UNREADABLE_SOURCES)
def test_binary_or_huge_sources_are_one_finding(
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    content: bytes,
    expected: tuple[str, int, int, str],
) -> None:
    monkeypatch.setenv("PLAYBOOKCTL_MAX_FILE_BYTES", "3000")
    (repo / "playbooks" / "restart-deployment" / name).write_bytes(content)
    code, out, _ = run(capsys, "lint", "--format", "json", "playbooks/restart-deployment")
    rule, line, column, message = expected
    assert (code, json.loads(out)) == (
        1,
        [
            {
                "rule": rule,
                "severity": "error",
                "file": f"playbooks/restart-deployment/{name}",
                "line": line,
                "column": column,
                "message": message,
            }
        ],
    )


@pytest.mark.parametrize(
    ("flag", "value", "problem"),
    [
        ("--registry", "http://127.0.0.1:1", "a registry is host[:port], without a scheme"),
        (
            "--registry",
            "myreg",
            "expected host[:port] with a '.' or a port, or localhost (e.g. ghcr.io)",
        ),
        (
            "--bundle-repo",
            "x//y",
            "expected lower-case path components (letters, digits, '.', '_', '-'), e.g. org/images",
        ),
    ],
)
def test_bad_registry_flags_are_usage_errors(
    repo: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, problem: str
) -> None:
    code, out, err = run(capsys, "publish", "--dry-run", "--commit", "a" * 40, flag, value)
    assert (code, out, err) == (2, "", f"playbookctl: usage error: {flag} {value!r}: {problem}\n")


@pytest.mark.parametrize("command", ["publish", "release"])
@pytest.mark.parametrize("value", ["0", "-3", "nan", "inf"])
def test_a_bad_push_stall_timeout_flag_is_a_usage_error(
    repo: Path, capsys: pytest.CaptureFixture[str], command: str, value: str
) -> None:
    code, out, err = run(capsys, command, "--push-stall-timeout", value)
    assert (code, out) == (2, "")
    assert err.startswith("playbookctl: usage error: --push-stall-timeout "), err
    assert err.endswith(": expected a number greater than 0\n"), err


@pytest.mark.parametrize("commit", ["nothex", "ABC1234", "abc", ""])
def test_publish_commit_must_be_a_commit_id(
    repo: Path, capsys: pytest.CaptureFixture[str], commit: str
) -> None:
    code, out, err = run(
        capsys, "publish", "--dry-run", "--registry", "127.0.0.1:1", "--commit", commit
    )
    assert (code, out) == (2, "")
    expected = f"--commit {commit!r}: expected a commit id (hex), e.g. HEAD's"
    assert err == f"playbookctl: usage error: {expected}\n"


# `--opt=--`: Python 3.11's argparse passed a list on where a string belongs (internal errors).
DOUBLE_DASH = [
    (["render", "restart-deployment", "--image=--"], "render: argument --image"),
    (["publish", "--jobs=--"], "publish: argument --jobs"),
    (["publish", "--commit=--"], "publish: argument --commit"),
    (["plan", "--base=--"], "plan: argument --base"),
    (["pipelinerun", "restart-deployment", "--param=--"], "pipelinerun: argument --param"),
    (["inspect", "--registry=--", "a.io/b:1"], "inspect: argument --registry"),
    (["-C=--", "lint"], "argument -C/--root"),
]


@pytest.mark.parametrize(("argv", "what"), DOUBLE_DASH)
def test_double_dash_as_an_option_value(
    repo: Path, capsys: pytest.CaptureFixture[str], argv: list[str], what: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(f"playbookctl: usage error: {what}: expected one argument (see ")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"auths": {"r.io": {"auth": "c2VjcmV0OnB3"}}, bad', "invalid JSON at line 1 column 47"),
        (b'{"auths": "\xff"}', "not valid UTF-8"),
        (None, "Not a directory"),
    ],
)
def test_broken_docker_config_says_why_without_its_content(
    repo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    content: bytes | None,
    why: str,
) -> None:
    config_dir = tmp_path / "docker"
    if content is None:
        config_dir.write_text("")  # a file where the directory belongs
    else:
        config_dir.mkdir()
        (config_dir / "config.json").write_bytes(content)
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    code, out, err = run(capsys, "inspect", f"127.0.0.1:{free_port()}/a/b:1")
    assert (code, out) == (1, "")
    assert err == f"playbookctl: error: cannot read Docker config {config_dir}/config.json: {why}\n"
    assert "c2VjcmV0" not in err


def test_a_file_name_that_is_not_utf8_is_a_finding_in_lint_and_publish(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """File names are bytes: lint names the file with \\xNN escapes and refuses it; publish
    skips that playbook with the finding (it used to end in `internal error:
    UnicodeEncodeError`, exit 3, for every playbook)."""
    (repo / "playbooks" / "restart-deployment" / os.fsdecode(b"data-\xff.txt")).write_bytes(b"x")
    shown = "playbooks/restart-deployment/data-\\xff.txt"
    message = (
        "the file name is not UTF-8 (data-\\xff.txt): every file name in a playbook must be "
        "UTF-8; rename it"
    )
    code, out, _ = run(capsys, "lint", "playbooks/restart-deployment")
    assert code == 1
    assert f"{shown}:1:1: error [playbook.file-name] {message}" in out.splitlines()
    code, out, _ = run(capsys, "lint", "--format", "json", "playbooks/restart-deployment")
    assert [(f["rule"], f["file"]) for f in json.loads(out)] == [("playbook.file-name", shown)]
    code, out, _ = run(
        capsys, "publish", "--dry-run", "--registry", "127.0.0.1:1", "--commit", "a" * 40
    )
    assert code == 1
    assert out.splitlines() == [
        "restart-deployment 1.0.0: skipped",
        "  error: not published: 1 lint error(s)",
        f"    {shown}:1:1: playbook.file-name: {message}",
        "1 skipped",
    ]


@pytest.mark.parametrize("given", [(), ("playbooks/restart-deployment",)])
def test_a_playbook_directory_that_is_a_link_is_refused_and_nothing_behind_it_read(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], given: tuple[str, ...]
) -> None:
    """A directory outside the repository, linked in as a playbook: lint refuses it with the
    reason (it used to lint clean and be published with files that are not in git), and
    publish skips it."""
    outside = tmp_path / "outside" / "restart-deployment"
    (repo / "playbooks" / "restart-deployment").rename(outside.parent.mkdir() or outside)
    (outside / "untracked.sh").write_text("#!/bin/sh\necho $UNDECLARED `x`\n")  # no finding
    (repo / "playbooks" / "restart-deployment").symlink_to(outside)
    message = (
        f"the playbook directory is a symbolic link (to {outside}): a playbook is the "
        "repository's own files, as git holds them; move the directory itself here"
    )
    code, out, _ = run(capsys, "lint", "--format", "json", *given)
    assert code == 1
    assert [(f["rule"], f["file"], f["message"]) for f in json.loads(out)] == [
        ("playbook.directory-link", "playbooks/restart-deployment", message)
    ]
    code, out, _ = run(
        capsys, "publish", "--dry-run", "--registry", "127.0.0.1:1", "--commit", "a" * 40
    )
    assert code == 1
    assert out.splitlines() == [
        "restart-deployment 1.0.0: skipped",
        "  error: not published: 1 lint error(s)",
        f"    playbooks/restart-deployment:1:1: playbook.directory-link: {message}",
        "1 skipped",
    ]
