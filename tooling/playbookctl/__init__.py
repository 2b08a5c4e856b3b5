"""playbookctl: the GitOps pipeline for Kubernaut remediation playbooks."""

from __future__ import annotations

__version__ = "0.1.0"
