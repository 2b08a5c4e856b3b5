"""A process the tests, the demo or a benchmark start that ends with them, even killed with -9."""

from __future__ import annotations

import shutil
import threading


def dies_with_owner(argv: list[str]) -> list[str]:
    """`argv` run so that the kernel stops it (SIGTERM) when this process dies, even by -9: a
    killed pytest or demo otherwise leaves a docker-registry serving its blobs from memory, or
    a dockerd and its containerd running. setpriv (util-linux) sets the parent-death signal
    and execs, so the pid stays the program's. The signal follows the *thread* that started
    the child, so only the main thread asks for it: a process started from a worker thread
    would die when that thread ends. An owner that dies between the fork and the signal being
    set leaves its child running, as before."""
    if threading.current_thread() is not threading.main_thread() or not shutil.which("setpriv"):
        return argv
    return ["setpriv", "--pdeathsig", "TERM", *argv]
