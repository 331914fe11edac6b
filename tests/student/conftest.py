"""``student_venv``: a virtual environment made by the student install command, and nothing else.

The README's student install (``bash notebooks/_kit/install.sh VENV``) runs in what a student of
assignment 02 receives (``dlhw release 02_mlp_backprop --to .cache/student-venv-<hash>/course``),
into ``.cache/student-venv-<hash>/venv`` (the hash covers the kit's files and the Python
version), so repeated runs reuse it; a file lock lets xdist workers and other test sessions
share it. The venv holds no dev extras: no pytest, no reference package.

Here, ``DLHW_TORCH_INDEX`` is set empty: the machine's package index already serves the CPU
build of torch (a student's default is the CPU index, https://download.pytorch.org/whl/cpu).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache"


def kit_hash() -> str:
    """A hash of the kit as `dlhw release` builds it (from dlhw), the Python and the torch asked for."""
    from grader.kit import kit_files
    h = hashlib.sha256(f"{sys.version_info[:2]} {os.environ.get('DLHW_TORCH', '')}".encode())
    for rel, data in sorted(kit_files().items()):
        h.update(rel.encode() + b"\0" + data + b"\0")
    return h.hexdigest()[:16]


def base_python() -> str:
    """The interpreter the test venv was made from (a student's python3)."""
    return getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable


ASSIGNMENT = "02_mlp_backprop"


def make_student_venv(dest: Path) -> float:
    """Release ASSIGNMENT into ``dest/course`` and run the student install there into
    ``dest/venv``; returns the install's wall time in seconds."""
    from grader.release import release
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    release(ASSIGNMENT, dest / "course")
    env = dict(os.environ, DLHW_TORCH_INDEX="", PYTHON=base_python())
    for var in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(var, None)
    start = time.monotonic()
    proc = subprocess.run(["bash", "notebooks/_kit/install.sh", str(dest / "venv")], cwd=dest / "course",
                          env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    (dest / "install.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode:
        raise RuntimeError(f"the student install failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    (dest / "install-seconds").write_text(f"{wall:.1f}\n")
    return wall


def cached_student_venv() -> Path:
    """The venv of the current kit under .cache/, made once (under a lock) and then reused.
    The released course it was installed from is ``<venv>/../course``."""
    CACHE.mkdir(exist_ok=True)
    key = kit_hash()
    root = CACHE / f"student-venv-{key}"
    with open(CACHE / "student-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "ok").exists():
            # venvs of earlier kits, unused for an hour (another session may still be using a
            # recent one)
            for old in CACHE.glob("student-venv-*"):
                stamp = old / "ok"
                if old.is_dir() and old != root and (not stamp.exists() or time.time() - stamp.stat().st_mtime > 3600):
                    shutil.rmtree(old, ignore_errors=True)
            make_student_venv(root)
            (root / "ok").write_text(key)
        (root / "ok").touch()   # in use
    return root / "venv"


@pytest.fixture(scope="session")
def student_venv() -> Path:
    """A venv made by the student install command only: ``student_venv / "bin" / "jupyter"`` etc."""
    return cached_student_venv()
