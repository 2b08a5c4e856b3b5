"""Running the suite's code as the unprivileged user `nobody` (test_non_root.py, test_rootless.py).

The interpreter of this virtual environment may live where nobody cannot reach it (a pyenv under
/root), so the user gets a bare venv of the system's Python of the same version that reads this
environment's site-packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NOBODY = 65534


def python_for_nobody(venv: Path) -> Path:
    """A Python nobody can run that imports what this one does (skips where there is none)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(f"python{version}", path="/usr/bin:/usr/local/bin")
    if system is None:
        pytest.skip(f"no system python{version} for the unprivileged user")
    subprocess.run([system, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site_packages = next(p for p in sys.path if p.endswith("site-packages") and sys.prefix in p)
    pth = venv / "lib" / f"python{version}" / "site-packages" / "suite.pth"
    pth.write_text(f"import site; site.addsitedir({site_packages!r})\n")
    return venv / "bin" / "python"


def workdir_for_nobody(work: Path) -> Path:
    """`work`, an empty directory, made nobody's with `home/` and `basetemp/` in it; returns a
    Python nobody can run (its venv in `work/venv`)."""
    work.chmod(0o755)
    (work / "home").mkdir()
    (work / "basetemp").mkdir()
    python = python_for_nobody(work / "venv")
    for path in (work, work / "home", work / "basetemp"):
        os.chown(path, NOBODY, NOBODY)
    return python
