"""Starting warm grading servers, inside bubblewrap where it exists, and talking to them.

``WarmServer`` is one server process (see ``grader.sandbox.server``); ``run(job)`` sends it one
submission and returns its result. Sandbox (bubblewrap, when ``bwrap`` is on PATH):

* no network (a new network namespace), a new PID namespace, dies with its parent;
* the file system is read-only system and Python directories, the student kit (checks, no
  reference solutions) as the only ``dlhw`` on the path, a private /tmp, and the folder of
  the submissions being graded. solutions/, the gradebook and the repository are not there.

Without bubblewrap the server runs as a plain subprocess (still with the kit as its ``dlhw``,
the memory cap and the time limits) and ``sandbox_warning()`` says so.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import sysconfig
import json
import threading
from pathlib import Path
from typing import Optional

SERVER_DIR = Path(__file__).resolve().parent


def bwrap_path() -> Optional[str]:
    if os.environ.get("DLHW_NO_SANDBOX"):
        return None
    return shutil.which("bwrap")


def sandbox_warning() -> Optional[str]:
    if bwrap_path() is None:
        return ("bubblewrap (bwrap) is not available: student code runs WITHOUT a sandbox (it can reach "
                "the network and read files of this machine). Install it: apt-get install bubblewrap")
    return None


def _python_roots() -> list:
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            roots.add(Path(p).resolve())
    # bind whole prefixes only once: drop paths inside another root
    roots = sorted(roots, key=lambda p: len(p.parts))
    keep = []
    for r in roots:
        if not any(r == k or k in r.parents for k in keep):
            keep.append(r)
    return keep


def server_command(kit_dir: Path, work_root: Path) -> tuple:
    """(argv, env) starting a server with ``kit_dir`` as dlhw and ``work_root`` writable."""
    kit_dir, work_root = Path(kit_dir).resolve(), Path(work_root).resolve()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "MPLCONFIGDIR": "/tmp/mpl",
           "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8",
           "PYTHONPATH": f"{kit_dir}:{SERVER_DIR.parent.parent}" if bwrap_path() is None else "/opt/dlhw-kit:/opt/dlhw-server"}
    py = [sys.executable, "-u", "-m", "grader.sandbox.server"]
    bw = bwrap_path()
    if bw is None:
        return py, env
    args = [bw, "--unshare-all", "--die-with-parent", "--new-session",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for d in ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin"):
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/passwd", "/etc/group"):
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    for root in _python_roots():
        if not str(root).startswith(("/usr/", "/bin", "/lib")):
            args += ["--ro-bind", str(root), str(root)]
    # only the server's own package goes in, at a neutral path, never the repository
    args += ["--ro-bind", str(kit_dir), "/opt/dlhw-kit",
             "--dir", "/opt/dlhw-server/grader",
             "--ro-bind", str(SERVER_DIR.parent / "__init__.py"), "/opt/dlhw-server/grader/__init__.py",
             "--ro-bind", str(SERVER_DIR), "/opt/dlhw-server/grader/sandbox",
             "--bind", str(work_root), str(work_root),
             "--chdir", "/tmp"]
    return args + py, env


class WarmServer:
    """One warm grading server process; ``run(job)`` grades one submission on it."""

    def __init__(self, kit_dir: Path, work_root: Path):
        argv, env = server_command(kit_dir, work_root)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, close_fds=True)
        self._stderr = []
        threading.Thread(target=self._drain, daemon=True).start()
        hello = self._recv()
        if hello is None or hello.get("op") != "ready":
            raise RuntimeError("the grading server did not start:\n" + "".join(self._stderr)[-3000:])

    def _drain(self):
        for line in iter(self.proc.stderr.readline, b""):
            if len(self._stderr) < 200:
                self._stderr.append(line.decode(errors="replace"))

    def _recv(self):
        head = self.proc.stdout.read(8)
        if len(head) < 8:
            return None
        (n,) = struct.unpack("<Q", head)
        return json.loads(self.proc.stdout.read(n))

    def run(self, job: dict) -> dict:
        data = json.dumps(job).encode()
        self.proc.stdin.write(struct.pack("<Q", len(data)) + data)
        self.proc.stdin.flush()
        result = self._recv()
        if result is None:
            raise RuntimeError("the grading server stopped:\n" + "".join(self._stderr)[-3000:])
        if "fatal" in result:
            raise RuntimeError("the grading server failed:\n" + result["fatal"])
        return result

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
