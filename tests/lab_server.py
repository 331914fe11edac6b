"""Starting JupyterLab in a test: a free port, and a bounded wait until the server answers.

Three tests start a ``jupyter lab`` (the release served from the repository's venv, the student
install's terminal, the browser test); they share this wait so that each failure says the same
thing: whether the server exited, or did not answer in time, and what it last logged.
"""
from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from typing import Callable, Optional

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(proc: subprocess.Popen, base: str, token: str, timeout_s: float,
                  log_tail: Optional[Callable[[], str]] = None) -> None:
    """Return once ``base``/api/status answers 200; fail the test if ``proc`` exits first or the
    server has not answered within ``timeout_s`` seconds (with the tail of its log, if given)."""
    def tail() -> str:
        if log_tail is not None:
            return log_tail()
        if proc.poll() is not None and proc.stderr is not None:
            return proc.stderr.read().decode(errors="replace")[-4000:]
        return "(no log)"

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode} before serving:\n{tail()}")
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer /api/status within {timeout_s:g} s:\n{tail()}")
