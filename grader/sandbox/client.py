"""Starting warm grading servers inside bubblewrap, and talking to them.

A batch first *stages* the judge (:class:`JudgeStage`): a private, read-only copy of the student
kit and of the server's code, outside every folder a student can reach, with a content digest
taken before any submission runs. ``WarmServer`` is one server process (``grader.sandbox.server``)
started from that copy; ``run(job)`` sends it one submission (a ``protocol.Job``) and returns
its ``protocol.JobResult``.

The server's bubblewrap sandbox (``server_command``):

* new PID, network, IPC and UTS namespaces, no network at all (loopback included), dies with
  its parent;
* read-only: the system and Python directories, the staged kit (the only ``dlhw`` on the path)
  and the staged server code; nothing of the course (solutions, gradebook, results, other
  students' files, the grader's secret) is mounted, and nothing is writable but a private /tmp;
* run as root, the server keeps only the capabilities to change user, so that each submission
  runs as ``DLHW_SANDBOX_UID`` (default 65534, nobody), never as the judge's user. Each
  submission then isolates itself further (its own namespaces and tmpfs: see the server).

Without bubblewrap nothing starts unless the instructor asked for ``--no-sandbox``.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional

from grader.sandbox.protocol import CellResult, Job, JobResult, Op, Status, recv, send_frame, tree_digest

SERVER_DIR = Path(__file__).resolve().parent
KIT_MOUNT, SERVER_MOUNT, REFERENCE_MOUNT = "/opt/dlhw-kit", "/opt/dlhw-server", "/opt/dlhw-ref"
BWRAP_INSTALL = ("install bubblewrap on the grading machine (Debian/Ubuntu: sudo apt-get install bubblewrap; "
                 "Fedora: sudo dnf install bubblewrap; `bash .ci/setup` does it when run as root), or pass "
                 "--no-sandbox to grade trusted submissions without it")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing (or cannot create namespaces) and --no-sandbox was not given."""


class JudgeChanged(RuntimeError):
    """The judge's code differs from the copy staged at the start of the batch."""


def bwrap_path() -> Optional[str]:
    return shutil.which("bwrap")


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


class JudgeStage:
    """A batch's private copy of the judge: ``kit/dlhw``, ``server/grader/sandbox`` and
    ``reference/dlhw``, read-only. Built here with ``build_kit``, or unpacked from another
    stage's :meth:`archive` (the same judge on another machine: a Dask worker)."""

    def __init__(self, build_kit: Optional[Callable[[Path], object]] = None, archive: Optional[bytes] = None,
                 prefix: str = "dlhw-judge-"):
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.kit = self.root / "kit"
        self.server = self.root / "server"
        # the full package, for the judge's evaluation of graded dependencies (dlhw/checks/deps.py)
        self.reference = self.root / "reference"
        if archive is not None:
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
                tar.extractall(self.root, filter="data")
        else:
            build_kit(self.kit)
            shutil.copytree(Path(__import__("dlhw").__file__).resolve().parent, self.reference / "dlhw",
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            (self.server / "grader" / "sandbox").mkdir(parents=True)
            (self.server / "grader" / "__init__.py").write_text("")
            for f in ("__init__.py", "protocol.py", "server.py"):
                shutil.copyfile(SERVER_DIR / f, self.server / "grader" / "sandbox" / f)
        for dirpath, dirnames, filenames in os.walk(self.root):
            os.chmod(dirpath, 0o555)       # readable by the sandbox's user, writable by nobody
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), 0o444)
        self.roots = [str(self.kit), str(self.server), str(self.reference)]
        self.digest = tree_digest(self.roots)

    def archive(self) -> bytes:
        """The staged judge as .tar.gz bytes (for ``JudgeStage(archive=...)``)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for root in self.roots:
                tar.add(root, arcname=Path(root).name)
        return buf.getvalue()

    def verify(self) -> None:
        now = tree_digest(self.roots)
        if now != self.digest:
            raise JudgeChanged(f"the judge's code in {self.root} changed during the batch (digest {now[:12]} "
                               f"instead of {self.digest[:12]}): grading stopped")

    def cleanup(self) -> None:
        remove_stage(self.root)


def remove_stage(root: Path) -> None:
    """Remove a staged judge (its folders are read-only: made writable first)."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(root, ignore_errors=True)


def server_command(stage: JudgeStage, sandbox: bool = True) -> tuple:
    """(argv, env) starting a server on ``stage``'s copy of the judge."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "MPLCONFIGDIR": "/tmp/mpl",
           "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    py = [sys.executable, "-u", "-s", "-m", "grader.sandbox.server"]
    if not sandbox:
        env.update(PYTHONPATH=f"{stage.kit}:{stage.server}", DLHW_JUDGE_ROOTS=":".join(stage.roots),
                   DLHW_REFERENCE_ROOT=str(stage.reference))
        return py, env
    bw = bwrap_path()
    if bw is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed: " + BWRAP_INSTALL)
    env.update(PYTHONPATH=f"{KIT_MOUNT}:{SERVER_MOUNT}", DLHW_JUDGE_ROOTS=f"{KIT_MOUNT}:{SERVER_MOUNT}:{REFERENCE_MOUNT}",
               DLHW_REFERENCE_ROOT=REFERENCE_MOUNT)
    args = [bw, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try"]
    if os.getuid() == 0:
        # root: no user namespace for the server; it keeps only what it needs to run each
        # submission as another user (which then makes its own user namespace)
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user"]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--perms", "0755", "--dir", "/submission"]
    binds = []
    for d in ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin"):
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            binds.append((d, d))
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/passwd", "/etc/group"):
        if os.path.exists(f):
            binds.append((f, f))
    for root in _python_roots():
        if not str(root).startswith(("/usr/", "/bin", "/lib")):
            binds.append((str(root), str(root)))
    # only the staged judge goes in, at neutral paths: never the repository or the course
    binds += [(str(stage.kit), KIT_MOUNT), (str(stage.server), SERVER_MOUNT), (str(stage.reference), REFERENCE_MOUNT)]
    # the folders above the mounts: bubblewrap would make them 0700, closed to the student's user
    parents = sorted({str(p) for _, dest in binds for p in Path(dest).parents if str(p) != "/"},
                     key=lambda p: (p.count("/"), p))
    for p in parents:
        args += ["--perms", "0755", "--dir", p]
    for src, dest in binds:
        args += ["--ro-bind", src, dest]
    args += ["--remount-ro", "/", "--chdir", "/tmp"]
    env["DLHW_KEEP_UNDER_TMP"] = ":".join(dest for _, dest in binds if dest.startswith("/tmp/"))
    return args + py, env


class WarmServer:
    """One warm grading server process; ``run(job)`` grades one submission on it."""

    def __init__(self, stage: JudgeStage, sandbox: bool = True):
        stage.verify()
        argv, env = server_command(stage, sandbox)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, close_fds=True, bufsize=0)
        self._stderr = []
        threading.Thread(target=self._drain, daemon=True).start()
        hello = self._recv(timeout=300)
        if hello is None or hello.get("op") != Op.READY:
            self.kill()
            raise RuntimeError("the grading server did not start:\n" + "".join(self._stderr)[-3000:])
        if hello.get("digest") != stage.digest:
            self.kill()
            raise JudgeChanged("a grading server started with other judge code than the batch's "
                               f"({str(hello.get('digest'))[:12]} instead of {stage.digest[:12]}): grading stopped")

    def _drain(self):
        for line in iter(self.proc.stderr.readline, b""):
            if len(self._stderr) < 200:
                self._stderr.append(line.decode(errors="replace"))

    def _recv(self, timeout: Optional[float] = None):
        # raw reads on the descriptor (bufsize=0): a buffered reader would hide bytes from select()
        try:
            return recv(self.proc.stdout.fileno(), None if timeout is None else time.monotonic() + timeout)
        except (EOFError, TimeoutError, ValueError, OSError):
            return None

    def run(self, job: Job) -> JobResult:
        """The submission's result. Cells finished before the server died keep their results;
        the others say what happened. A submission is never re-run."""
        cells: List[Optional[CellResult]] = [None] * len(job.cells)
        try:
            send_frame(self.proc.stdin.fileno(), json.dumps(job.to_wire()).encode())
        except OSError:
            return self._lost(job, cells, "the grading server had stopped before this submission")
        # every cell ends within its time limit; a replay re-runs at most all cells before it
        patience = float(job.limits.cell_timeout) * (len(cells) + 2) + 60
        while True:
            msg = self._recv(timeout=patience)
            if msg is None:
                how = "stopped answering" if self.alive() else f"died ({self._exit()})"
                self.kill()
                return self._lost(job, cells, f"the grading server {how} while grading this submission")
            if msg.get("op") == Op.CELL:
                k = int(msg["index"])
                if 0 <= k < len(cells):
                    cells[k] = CellResult.from_wire(msg["result"])
                continue
            if msg.get("op") == Op.FATAL:
                raise RuntimeError("the grading server failed:\n" + str(msg.get("error"))[-3000:])
            return JobResult([c or CellResult.stopped(Status.NOT_RUN, "not run") for c in cells],
                             float(msg.get("seconds", 0.0)), key=job.key)

    def _exit(self) -> str:
        code = self.proc.poll()
        return f"exit status {code}" if code is not None and code >= 0 else f"signal {-code}" if code else "unknown"

    @staticmethod
    def _lost(job: Job, cells, why: str) -> JobResult:
        lost = CellResult.stopped(Status.DIED, f"{why}; this cell and the ones after it score zero (the submission "
                                               "is not re-run: it may have altered the environment it ran in)")
        return JobResult([c or lost for c in cells], 0.0, crashed=why, key=job.key)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self):
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except Exception:
            pass

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except Exception:
            self.kill()
