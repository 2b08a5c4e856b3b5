"""The script contract's verdicts in the lint cache: reused only while every input is the same."""

from __future__ import annotations

from pathlib import Path

from playbookctl.lint import script
from playbookctl.lint.cache import ResultCache
from playbookctl.load import load_text

SCRIPT = '#!/bin/bash\nset -u\nkubectl rollout undo "deployment/$NAME"\necho "$DRY_RUN"\n'
RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: r}
rules:
  - apiGroups: [apps]
    resources: [deployments]
    verbs: [get, patch]
"""


def surroundings(rbac: str, params: set[str]) -> script.Surroundings:
    env = script.surroundings(
        params, None, None, list(load_text(rbac, "rbac.yaml").documents), "rbac.yaml"
    )
    env.env_known = True
    env.step_env = dict.fromkeys(params, "pipeline")
    return env


def test_a_cached_verdict_equals_the_cold_one_and_any_change_misses(tmp_path: Path) -> None:
    path = tmp_path / "remediate.sh"
    path.write_text(SCRIPT)
    cache = ResultCache(tmp_path / "cache")
    env = surroundings(RBAC, {"NAME"})
    cold = script.check_files([(path, "p/remediate.sh")], env, cache)
    assert sorted(f.rule for f in cold) == ["script.rbac", "script.variable"]
    warm = script.check_files([(path, "p/remediate.sh")], env, cache)
    assert (cache.hits, cache.writes) == (1, 1)
    assert warm == cold
    # another parameter set, another rbac.yaml, another script: each is a miss
    script.check_files([(path, "p/remediate.sh")], surroundings(RBAC, {"NAME", "DRY_RUN"}), cache)
    more = RBAC + "  - apiGroups: [apps]\n    resources: [replicasets]\n    verbs: [list]\n"
    fixed = script.check_files([(path, "p/remediate.sh")], surroundings(more, {"NAME"}), cache)
    assert [f.rule for f in fixed] == ["script.variable"]
    path.write_text(SCRIPT.replace("$DRY_RUN", "${DRY_RUN:-false}"))
    script.check_files([(path, "p/remediate.sh")], env, cache)
    assert (cache.hits, cache.writes) == (1, 4)
