"""Configuration defaults that depend on where playbookctl runs (GitHub Actions or not)."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbookctl.config import load_config

TABLE = '[tool.playbookctl]\nregistry = "ghcr.io"\n'


@pytest.mark.parametrize(
    ("env", "pyproject", "expected"),
    [
        ({}, TABLE, ("kubernaut-playbooks/images", "kubernaut-playbooks/bundles")),
        (
            {"GITHUB_REPOSITORY": "Acme-Corp/playbooks"},
            TABLE,
            ("acme-corp/kubernaut-playbooks/images", "acme-corp/kubernaut-playbooks/bundles"),
        ),
        # pyproject.toml pins them: GitHub's owner does not change what is set.
        (
            {"GITHUB_REPOSITORY": "acme/playbooks"},
            TABLE + 'image-repo = "org/img"\nbundle-repo = "org/bun"\n',
            ("org/img", "org/bun"),
        ),
        # so does the environment.
        (
            {"GITHUB_REPOSITORY": "acme/playbooks", "PLAYBOOKCTL_BUNDLE_REPO": "x/b"},
            TABLE,
            ("acme/kubernaut-playbooks/images", "x/b"),
        ),
        # not a GitHub owner: the plain defaults.
        ({"GITHUB_REPOSITORY": "-bad/x"}, TABLE, ("kubernaut-playbooks/images",
                                                  "kubernaut-playbooks/bundles")),
    ],
    ids=["not-on-github", "on-github", "pinned-in-pyproject", "pinned-by-env", "bad-owner"],
)  # fmt: skip
def test_image_and_bundle_repositories_follow_the_github_owner(
    tmp_path: Path, env: dict[str, str], pyproject: str, expected: tuple[str, str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(pyproject)
    config = load_config(tmp_path, env)
    assert (config.image_repo, config.bundle_repo) == expected


def test_the_project_pyproject_leaves_them_to_the_owner(repo_root: Path) -> None:
    config = load_config(repo_root, {"GITHUB_REPOSITORY": "someone/kubernaut-playbooks"})
    assert config.image_repo == "someone/kubernaut-playbooks/images"
    assert config.bundle_repo == "someone/kubernaut-playbooks/bundles"
    assert config.registry == "ghcr.io"


@pytest.mark.parametrize(
    ("pyproject", "env", "expected"),
    [
        (TABLE, {}, False),
        (TABLE + "fleet = true\n", {}, True),
        (TABLE + "fleet = true\n", {"PLAYBOOKCTL_FLEET": "false"}, False),
        (TABLE, {"PLAYBOOKCTL_FLEET": "yes"}, True),
        (TABLE, {"PLAYBOOKCTL_FLEET": " 1 "}, True),
    ],
)
def test_fleet_setting(tmp_path: Path, pyproject: str, env: dict[str, str], expected: bool) -> None:
    (tmp_path / "pyproject.toml").write_text(pyproject)
    assert load_config(tmp_path, env).fleet is expected


@pytest.mark.parametrize(
    ("pyproject", "env", "message"),
    [
        (TABLE + 'fleet = "true"\n', {}, "expected true or false, got a string"),
        (TABLE + "fleet = 1\n", {}, "expected true or false, got an integer"),
        (
            TABLE,
            {"PLAYBOOKCTL_FLEET": "maybe"},
            "expected one of true/false, 1/0, yes/no, on/off, got 'maybe'",
        ),
    ],
)
def test_fleet_setting_refuses_non_booleans(
    tmp_path: Path, pyproject: str, env: dict[str, str], message: str
) -> None:
    from playbookctl.errors import ConfigError

    (tmp_path / "pyproject.toml").write_text(pyproject)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, env)
