"""The warm grading server: the judge, and the zygote that forks one sandbox per submission.

Started once per worker (inside bubblewrap, see ``grader.sandbox.client``), it imports the heavy
libraries once, then reads jobs (one submission each) from stdin and writes messages to stdout:
one ``cell`` message per finished cell, then ``done`` (the protocol: ``grader.sandbox.protocol``).
:func:`run_job` holds the replay logic; :class:`Kernel` runs one cell in a sandboxed kernel and
:class:`Judge` answers its requests.

Who runs what:

* this process is the *judge*: it hands out each check's inputs and decides the verdict with
  the oracles. It never runs student code, it is not dumpable (no ptrace, no /proc/PID/mem),
  and in the root set-up it runs as another user than student code;
* for every submission it forks a child that isolates itself before any student code runs
  (:func:`_enter_sandbox`): a new user, mount, PID, network and IPC namespace; a private
  size-capped tmpfs for ``/submission`` (the assignment's helper files, written from the job)
  and for ``/tmp``; everything else read-only; no capabilities, no new privileges; limits on
  memory, file size, open files and processes. Student code runs as PID 1 of its own PID
  namespace, so when it ends every process it started (double-forked daemons included) is
  killed by the kernel, and it cannot address the judge's process at all;
* the judge decides what each cell may ask for: a test cell gets exactly the checks its source
  calls, visible or hidden as the source says (the child's claims are ignored); every message
  carries the cell's nonce; a malformed message is a protocol violation that fails that cell
  only (the child is replaced and the cells before it are replayed in a fresh sandbox);
* a cell that runs past its time limit is killed the same way; a child that dies (os._exit, a
  segfault, the memory cap) ends the submission: the remaining cells are reported as not run;
* a graded function's calls to the graded functions it depends on (dlhw/checks/deps.py) are
  answered, during its own check only, by a reference helper (:class:`Reference`): a process
  forked at start-up, which alone imports the full package (it drops the kit's modules that
  came with the protocol's framing, and the checks are not loaded yet). The reference never
  enters a submission's memory, and its folder is covered in every submission's sandbox.

Forking from a process that already imported numpy, torch, matplotlib and the checks is what
makes this fast: nbgrader starts a fresh kernel and re-imports all of it for every notebook.
"""
from __future__ import annotations

import base64
import ctypes
import hashlib
import io
import json
import os
import secrets
import select
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from enum import Enum
from typing import Callable, List, Optional

# One thread per worker: the grader runs one worker per core, and forking a process whose
# OpenMP/BLAS thread pools are running can deadlock the child.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

SUBMISSION_DIR = "/submission"  # the student's scratch folder inside the sandbox
REFERENCE_MOUNT = "/opt/dlhw-ref"   # the full dlhw (with solutions): the judge's, never the student's

from grader.sandbox.protocol import (CellError, CellJob, CellResult, Job, Limits, Op, Status, Verdict,  # noqa: E402
                                     read_frame, recv, send, send_frame, tree_digest)

# ------------------------------------------------------------------------------- the sandbox

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4


def _ok(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(*args) -> int:
    return _libc.prctl(*[ctypes.c_ulong(a) for a in args])


def _mount_tmpfs(target: str, size_mb: int) -> None:
    opts = f"size={int(size_mb)}m,nr_inodes=65536,mode=1777".encode()
    _ok(_libc.mount(b"tmpfs", target.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts), f"mount tmpfs on {target}")


def _enter_sandbox(limits: Limits) -> None:
    """Isolate this (not yet student) process; see the module docstring. Raises OSError."""
    uid = int(limits.student_uid)
    if os.getuid() == 0 and uid > 0:
        # the root set-up: student code never runs as the judge's user
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    # a changed uid leaves the process undumpable, which makes /proc/self/uid_map root's
    _prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    me_u, me_g = os.getuid(), os.getgid()
    _ok(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS),
        "unshare")
    with open("/proc/self/setgroups", "w") as fh:
        fh.write("deny")
    with open("/proc/self/uid_map", "w") as fh:
        fh.write(f"{me_u} {me_u} 1")
    with open("/proc/self/gid_map", "w") as fh:
        fh.write(f"{me_g} {me_g} 1")
    _ok(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    disk = int(limits.disk_mb)
    # Python itself may live under /tmp (a clone or venv there): the private /tmp would cover it,
    # so keep a handle on those folders and bind them back, read-only, into the new /tmp
    keep = [p for p in os.environ.get("DLHW_KEEP_UNDER_TMP", "").split(":") if p.startswith("/tmp/")]
    handles = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in keep if os.path.isdir(p)]
    _mount_tmpfs("/tmp", disk)
    for path, fd in handles:
        os.makedirs(path, exist_ok=True)
        _ok(_libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND | MS_REC, None),
            f"keep {path}")
        _libc.mount(None, path.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
        os.close(fd)
    _mount_tmpfs(SUBMISSION_DIR, disk)
    if os.path.isdir(REFERENCE_MOUNT):
        # the judge's reference (for graded dependencies, see dlhw/checks/deps.py) is covered
        # by an empty read-only folder; without capabilities the student cannot uncover it
        _ok(_libc.mount(b"tmpfs", REFERENCE_MOUNT.encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY,
                        b"size=4k,mode=0555"), "cover the reference")


def _drop_privileges() -> None:
    """No capabilities (not even in the submission's own namespaces), no new privileges."""
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(64):
        _prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    _ok(_libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()), "drop capabilities")
    _ok(_prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _write_files(workdir: str, files: dict) -> None:
    for name, b64 in files.items():
        if "/" in name or name.startswith("."):
            continue
        with open(os.path.join(workdir, name), "wb") as fh:
            fh.write(base64.b64decode(b64))


def _apply_limits(limits: Limits) -> None:
    import resource
    cap = int(limits.memory_mb) << 20
    with open("/proc/self/status") as fh:
        vm = next((int(line.split()[1]) << 10 for line in fh if line.startswith("VmSize:")), 0)
    # the cap is on top of what the warm process already maps (torch maps a lot)
    rlimits = [(resource.RLIMIT_AS, vm + cap), (resource.RLIMIT_FSIZE, int(limits.disk_mb) << 20),
              (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 256)]
    if limits.isolate:
        # counted per user namespace: the submission's own processes only
        rlimits.append((resource.RLIMIT_NPROC, int(limits.max_procs)))
    for what, value in rlimits:
        try:
            resource.setrlimit(what, (value, value))
        except (ValueError, OSError):
            pass


# ------------------------------------------------------------------------------- child side

class _LimitedWriter(io.TextIOBase):
    """A stdout/stderr stand-in that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int):
        self.limit, self.parts, self.size, self.dropped = limit, [], 0, 0

    def writable(self):
        return True

    def write(self, s):
        s = str(s)
        room = self.limit - self.size
        if room > 0:
            self.parts.append(s[:room])
            self.size += min(len(s), room)
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def text(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n... [{self.dropped} more characters of output truncated by the grader]\n"
        return out


def _recv_cell(ctl):
    """The next cell to run and its two fresh descriptors, from the judge's control socket."""
    import socket
    mark, fds, _, _ = socket.recv_fds(ctl, 1, 2)     # the descriptors travel with one byte
    if not mark:
        raise EOFError
    return json.loads(read_frame(ctl.fileno())), fds


def _student(ctl_fd: int, limits: Limits, workdir: str) -> None:
    """Run cells on request until told to stop, inside the sandbox. Never returns.

    Each cell gets a fresh pair of pipes to the judge (passed with it over the control
    socket): whatever a cell writes to its channel, forged or garbage, cannot reach the
    channel of the cells after it.
    """
    import socket
    _apply_limits(limits)
    if limits.isolate:
        _drop_privileges()
    os.chdir(workdir)
    # helper modules next to the notebook (an assignment's blocks.py) import as in Jupyter
    sys.path.insert(0, workdir)
    # C-level writes to fds 1/2 go nowhere; Python-level output is captured per cell. No other
    # descriptor of the judge's survives: only the control socket.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    keep = sorted({0, 1, 2, ctl_fd})
    for lo, hi in zip(keep, keep[1:] + [65536]):
        os.closerange(lo + 1, hi)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    ctl = socket.socket(fileno=ctl_fd)

    import dlhw.checks.core as core
    from dlhw.checks.wire import encode
    core.set_policy(list(limits.forbidden))

    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance(colors="NoColor", history_length=0)
    shell.showtraceback = lambda *a, **k: None   # errors are reported structured, below
    real_stdout, real_stderr = sys.stdout, sys.stderr
    while True:
        try:
            msg, fds = _recv_cell(ctl)
        except (EOFError, OSError, ValueError):
            os._exit(0)
        if not isinstance(msg, dict) or msg.get("op") != Op.RUN or len(fds) != 2:
            os._exit(3)
        req_w, rep_r = fds
        nonce = str(msg.get("nonce", ""))
        core.install_channel(rep_r, req_w, nonce)
        out, err = _LimitedWriter(limits.output_limit), _LimitedWriter(limits.output_limit)
        sys.stdout, sys.stderr = out, err
        error = None
        try:
            result = shell.run_cell(msg["source"], store_history=False, silent=False)
            exc = result.error_in_exec or result.error_before_exec
            if exc is not None:
                tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-6))
                error = {"ename": type(exc).__name__, "evalue": str(exc)[:4000], "traceback": tb[-8000:]}
        except BaseException as exc:  # SystemExit, KeyboardInterrupt raised by student code
            error = {"ename": type(exc).__name__, "evalue": str(exc)[:4000], "traceback": ""}
        finally:
            sys.stdout, sys.stderr = real_stdout, real_stderr
        try:
            send_frame(req_w, encode({"op": Op.DONE.value, "nonce": nonce, "stdout": out.text(),
                                      "stderr": err.text() if error is None else "", "error": error}))
        except OSError:
            pass
        for fd in (req_w, rep_r):
            try:
                os.close(fd)
            except OSError:
                pass


class SandboxError(RuntimeError):
    """The submission's sandbox could not be made: the judge stops (the batch reports it)."""


def _fork_child(job: Job):
    """Fork a sandboxed child; returns (pids to kill, control socket) or raises SandboxError."""
    import socket
    ctl_judge, ctl_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    hello_r, hello_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 4
        try:
            ctl_judge.close()
            os.close(hello_r)
            if not job.limits.isolate:
                import tempfile
                workdir = tempfile.mkdtemp(prefix="submission-")
                _write_files(workdir, job.files)
                send(hello_w, Op.STARTED, pid=os.getpid())
                os.close(hello_w)
                _student(ctl_child.detach(), job.limits, workdir)
            _enter_sandbox(job.limits)
            student = os.fork()     # PID 1 of the submission's PID namespace
            if student == 0:
                try:
                    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                    os.close(hello_w)
                    _write_files(SUBMISSION_DIR, job.files)
                    _student(ctl_child.detach(), job.limits, SUBMISSION_DIR)
                finally:
                    os._exit(4)
            ctl_child.close()
            send(hello_w, Op.STARTED, pid=student)
            os.close(hello_w)
            # PID 1's exit is reported only once the kernel has killed and reaped every other
            # process of its namespace, so when this process exits the submission is all gone
            _, status = os.waitpid(student, 0)
            code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        except BaseException as exc:
            try:
                send(hello_w, Op.SANDBOX_ERROR, error=f"{type(exc).__name__}: {exc}")
            except Exception:
                pass
            code = 5
        finally:
            os._exit(code)
    ctl_child.close()
    os.close(hello_w)
    ready = select.select([hello_r], [], [], 30)[0]
    try:
        hello = recv(hello_r) if ready else {"op": Op.SANDBOX_ERROR, "error": "no answer in 30 s"}
    except (EOFError, ValueError):
        hello = {"op": Op.SANDBOX_ERROR, "error": "the sandbox exited while starting"}
    os.close(hello_r)
    if hello.get("op") != Op.STARTED:
        ctl_judge.close()
        _kill([pid])
        raise SandboxError("could not create the submission's sandbox: " + str(hello.get("error")))
    return [int(hello["pid"]), pid], ctl_judge


def _send_cell(ctl, msg: dict):
    """Send a cell to run with a fresh channel; returns the judge's ends (read requests, write replies)."""
    import socket
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    try:
        socket.send_fds(ctl, [b"\0"], [req_w, rep_r])
        send_frame(ctl.fileno(), json.dumps(msg).encode())
    except OSError:
        _close(req_r, rep_w)
        raise
    finally:
        os.close(req_w)
        os.close(rep_r)
    return req_r, rep_w


def _close(*fds) -> None:
    for fd in fds:
        try:
            fd.close() if hasattr(fd, "close") else os.close(fd)
        except OSError:
            pass


def _kill(pids, *fds) -> str:
    """Kill a submission and wait until all of its processes are gone; says how it ended.

    pids is [student, sandbox]: the student's PID 1 is killed, and the sandbox process that
    waits on it exits only after the kernel has torn the submission's PID namespace down
    (a daemon the student double-forked included). Killing the sandbox process too would
    return before that teardown is finished.
    """
    student, sandbox = pids[0], pids[-1]

    def ended():    # (True, status) once the sandbox process is reaped; status None: not ours
        try:
            pid, st = os.waitpid(sandbox, os.WNOHANG)
        except ChildProcessError:
            return True, None
        return (True, st) if pid else (False, None)

    gone, status = ended()
    if not gone:            # else the student is reaped too, and its pid may be another's now
        try:
            os.kill(student, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _close(*fds)
    give_up = time.monotonic() + 10.0
    while not gone and time.monotonic() < give_up:
        time.sleep(0.005)
        gone, status = ended()
    if not gone:
        os.kill(sandbox, signal.SIGKILL)
        status = os.waitpid(sandbox, 0)[1]
    _reap_strays()
    return "unknown" if status is None else _how(status)


def _how(status: int) -> str:
    """How a process ended; the sandbox process passes its student's signal on as 128 + N."""
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    if code > 128 and code - 128 in signal.Signals._value2member_map_:
        return f"killed by signal {signal.Signals(code - 128).name}"
    return f"signal {code - 128}" if code > 128 else f"exit status {code}"


def _reap_strays() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# ------------------------------------------------------------------------------- judge side

# ------------------------------------------------------------------------------- judge side

class Reference:
    """The reference helper: a process forked before the judge imports the kit's checks, which
    alone imports the full package, to evaluate graded dependencies (dlhw/checks/deps.py).

    The judge itself never imports the reference, so no submission forked from the judge holds
    it in memory; the helper's pipes are the judge's alone.
    """

    def __init__(self, root: str):
        to_r, to_w = os.pipe()
        back_r, back_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.close(to_w)
                os.close(back_r)
                self._serve(root, to_r, back_w)
            finally:
                os._exit(0)
        os.close(to_r)
        os.close(back_w)
        self.rfd, self.wfd = back_r, to_w

    @staticmethod
    def _serve(root: str, rfd: int, wfd: int) -> None:
        _prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        # the kit's dlhw came in with the protocol's framing: the reference's package replaces it
        for name in [m for m in sys.modules if m == "dlhw" or m.startswith("dlhw.")]:
            del sys.modules[name]
        sys.path.insert(0, root)
        import importlib
        import numpy  # noqa: F401
        from dlhw.checks.wire import decode, encode
        while True:
            try:
                req = decode(read_frame(rfd))
            except EOFError:
                return
            try:
                module, name = str(req["ref"]).split(":")
                fn = getattr(importlib.import_module(module), name)
                payload = encode({"result": fn(*req["args"], **req["kwargs"])})
            except BaseException as exc:
                payload = encode({"__error__": f"{type(exc).__name__}: {str(exc)[:300]}"})
            send_frame(wfd, payload)

    def call(self, ref: str, args, kwargs, deadline: float) -> bytes:
        """The encoded reply ``{"result": ...}`` (or ``{"__error__": ...}``) of ``ref(*args, **kwargs)``."""
        from dlhw.checks.wire import encode
        send_frame(self.wfd, encode({"ref": ref, "args": args, "kwargs": kwargs}))
        return read_frame(self.rfd, deadline)


class Judge:
    """Hands out inputs and records verdicts for one submission.

    The judge, not the student's process, decides which checks a cell may run and whether
    they are hidden: a test cell gets the calls its (restored) source makes, in that order.
    """

    def __init__(self, seed: str, reference: Optional[Reference] = None, references: Optional[dict] = None):
        from dlhw.checks import core
        self.core = core
        self.seed = seed
        self.reference, self.references = reference, dict(references or {})
        self.calls = {}
        self.start_cell(-1, None)

    def start_cell(self, cell: int, calls) -> None:
        self.cell = cell
        self.allowed = [(str(n), bool(h)) for n, h in (calls or [])]
        self.test = calls is not None
        self.pending = {}
        self.deps_used = {}
        self.verdicts: List[Verdict] = []       # this cell's, in the order the checks reported

    def answer(self, op: Op, msg: dict, deadline: float) -> bytes:
        """The encoded reply to one of the kernel's requests (``op`` INPUTS, OUTPUTS or DEP)."""
        from dlhw.checks.wire import encode
        if op == Op.INPUTS:
            try:
                inputs = self.inputs(str(msg.get("check")))
            except Exception as exc:
                return encode({"__error__": str(exc)})
            return encode(inputs)
        if op == Op.OUTPUTS:
            name = str(msg.get("check"))
            passed, message, hidden = self.verdict(name, msg.get("outputs"))
            self.verdicts.append(Verdict(name, hidden, passed, message))
            return encode({"passed": passed, "message": message})
        return self._dependency(msg, deadline)

    def _seed(self, cell: int, check: str, hidden: bool) -> int:
        # deterministic per (secret, student, cell, check, call number): regrading gives the
        # same inputs, and students cannot predict them
        n = self.calls.get((cell, check, hidden), 0)
        self.calls[(cell, check, hidden)] = n + 1
        h = hashlib.sha256(f"{self.seed}|{cell}|{check}|{hidden}|{n}".encode()).digest()
        return int.from_bytes(h[:4], "little")

    def inputs(self, name: str):
        if self.test:
            slot = next((i for i, (n, _) in enumerate(self.allowed) if n == name), None)
            if slot is None:
                raise ValueError(f"this cell does not run the check {name!r} (or ran it already)")
            hidden = self.allowed.pop(slot)[1]
        else:
            hidden = False          # a student's own check() call outside a test cell
        chk = self.core.get(name)
        inputs = self.core.draw_inputs(chk, hidden, seed=self._seed(self.cell, name, hidden))
        self.pending[name] = (inputs, hidden)
        return inputs

    def verdict(self, name: str, outputs):
        if name not in self.pending:
            return False, f"{name}: outputs arrived without a request for inputs", False
        inputs, hidden = self.pending.pop(name)
        used = self.deps_used.pop(name, [])
        try:
            chk = self.core.get(name)
        except ValueError as exc:
            return False, str(exc), hidden
        passed, message = self.core.judge(chk, inputs, outputs)
        if used:
            message += (f" (graded with the reference {', '.join(used)} in place of yours, which "
                        f"{'is' if len(used) == 1 else 'are'} graded in {'its' if len(used) == 1 else 'their'} own tests)")
        return passed, message, hidden

    def dependency(self, function: str):
        """The check (pending now) that may have ``function`` evaluated by the reference, or None."""
        from dlhw.checks.deps import dependencies_of
        for name in self.pending:
            if function in dependencies_of(self.core.get(name).functions):
                return name
        return None

    def _dependency(self, msg: dict, deadline: float) -> bytes:
        """The answer to a graded function's call of one of its dependencies (encoded)."""
        from dlhw.checks.wire import encode
        function = str(msg.get("function"))
        check = self.dependency(function)
        ref = self.references.get(function)
        if check is None or ref is None or self.reference is None:
            return encode({"__error__": f"{function} is not a dependency of the check running now"})
        try:
            answer = self.reference.call(ref, msg.get("args") or [], msg.get("kwargs") or {}, deadline)
        except (OSError, EOFError, TimeoutError, ValueError) as exc:
            return encode({"__error__": f"the reference did not answer ({type(exc).__name__})"})
        used = self.deps_used.setdefault(check, [])
        if function not in used:
            used.append(function)
        return answer


# ------------------------------------------------------------------------------- running cells

class End(Enum):
    """How the kernel left one cell (what the replay logic decides on)."""
    DONE = "done"               # the cell finished (its own error included)
    TIMEOUT = "timeout"
    DIED = "died"               # the kernel died during the cell
    VIOLATION = "violation"     # the cell broke the grading protocol
    GONE = "gone"               # the kernel had exited before the cell could be sent


@dataclass
class CellRun:
    end: End
    verdicts: List[Verdict]
    done: Optional[dict] = None     # the kernel's report of a finished cell (stdout, stderr, error)
    violation: str = ""

    def result(self) -> CellResult:
        """The result of a finished cell (``end`` DONE); what the kernel says is bounded here."""
        err = self.done.get("error")
        if isinstance(err, dict):
            err = CellError(str(err.get("ename", "")), str(err.get("evalue", ""))[:4000],
                            str(err.get("traceback", ""))[-8000:])
        elif err:
            err = CellError("Error", str(err)[:4000])
        return CellResult(Status.ERROR if err else Status.OK, self.verdicts,
                          stdout=str(self.done.get("stdout", ""))[:200000],
                          stderr=str(self.done.get("stderr", ""))[:200000], error=err or None)


class Kernel:
    """One sandboxed student process (forked for a submission) that runs its cells one at a time."""

    def __init__(self, job: Job):
        self.pids, self.ctl = _fork_child(job)
        self._how = None

    def run_cell(self, judge: Judge, index: int, cell: CellJob, timeout: float) -> CellRun:
        """Run cell ``index``, answering its check requests with ``judge``, for at most ``timeout`` s."""
        from dlhw.checks.wire import WireError, decode
        nonce = secrets.token_hex(16)
        judge.start_cell(index, cell.calls)
        try:
            rfd, wfd = _send_cell(self.ctl, {"op": Op.RUN.value, "source": cell.source, "nonce": nonce})
        except OSError:
            return CellRun(End.GONE, judge.verdicts)
        deadline = time.monotonic() + timeout

        def violated(why: str) -> CellRun:
            return CellRun(End.VIOLATION, judge.verdicts, violation=why)
        try:
            while True:
                try:
                    raw = read_frame(rfd, deadline)
                except TimeoutError:
                    return CellRun(End.TIMEOUT, judge.verdicts)
                except EOFError:
                    time.sleep(0.2)
                    # the channel closed under a live kernel: the cell's code closed it
                    return violated("it closed the grader's channel") if self.alive() else CellRun(End.DIED, judge.verdicts)
                except ValueError as exc:
                    return violated(str(exc))
                try:
                    msg = decode(raw)
                except (WireError, ValueError, TypeError, KeyError):
                    msg = None
                if not isinstance(msg, dict):
                    return violated("a message that is not the grader's format")
                if msg.get("nonce") != nonce:
                    continue        # forged: ignored
                op = msg.get("op")
                if op == Op.DONE:
                    return CellRun(End.DONE, judge.verdicts, done=msg)
                if op not in (Op.INPUTS, Op.OUTPUTS, Op.DEP):
                    return violated(f"an unknown message {str(op)[:40]!r}")
                try:
                    send_frame(wfd, judge.answer(Op(op), msg, deadline))
                except OSError:
                    pass            # the cell closed its reply pipe: its own check calls fail
        finally:
            _close(rfd, wfd)

    def alive(self) -> bool:
        return _alive(self.pids[1])

    def kill(self) -> str:
        """End the kernel (once) and say how it ended."""
        if self._how is None:
            self._how = _kill(self.pids, self.ctl)
        return self._how


def run_job(job: Job, report: Callable[[int, CellResult], None], reference: Optional[Reference] = None) -> None:
    """Grade one submission: run its cells in order; ``report(index, result)`` each as it ends.

    A cell that times out or breaks the protocol scores zero, and its kernel is replaced: the
    cells before it (but those that failed so) are replayed in a fresh kernel, then the next one
    runs. A kernel that dies ends the submission; so does one that fails during a replay (the
    cell passed before). Every cell is reported exactly once. Raises SandboxError.
    """
    judge = Judge(job.seed, reference, job.limits.references)
    pending = set(range(len(job.cells)))

    def finish(k: int, result: CellResult) -> None:
        pending.discard(k)
        report(k, result)
    skip = set()            # cells that timed out or broke the protocol: not replayed
    i = 0
    while i < len(job.cells):
        kernel = Kernel(job)
        try:
            stop = _replay(kernel, judge, job, [k for k in range(i) if k not in skip], i)
            if stop is None:
                i, stop = _run_from(kernel, judge, job, i, finish, skip)
        finally:
            kernel.kill()
        if stop is not None:
            for rest in sorted(pending):
                finish(rest, CellResult.stopped(Status.NOT_RUN, f"not run: {stop}"))
            return


def _replay(kernel: Kernel, judge: Judge, job: Job, cells: List[int], i: int) -> Optional[str]:
    """Re-run ``cells`` (before cell ``i``) in a fresh kernel; why the submission ends, or None."""
    for k in cells:
        end = kernel.run_cell(judge, k, job.cells[k], job.limits.cell_timeout).end
        if end is End.GONE:
            return "the kernel had exited before this cell"
        if end is End.VIOLATION:
            return f"the kernel broke the grading protocol while re-running the cells before cell {i}"
        if end is not End.DONE:
            # a cell that passed before fails on replay: stop replaying, report it
            return f"the kernel died while re-running the cells before cell {i}"
    return None


def _run_from(kernel: Kernel, judge: Judge, job: Job, i: int, finish, skip: set):
    """Run the cells from ``i`` on; (the next cell to run in a fresh kernel, why the submission ends or None)."""
    timeout = float(job.limits.cell_timeout)
    for k in range(i, len(job.cells)):
        run = kernel.run_cell(judge, k, job.cells[k], timeout)
        if run.end is End.GONE:
            return k, "the kernel had exited before this cell"
        if run.end is End.VIOLATION:
            finish(k, CellResult(Status.PROTOCOL, run.verdicts,
                                 f"this cell wrote to the grader's channel ({run.violation}); it scores "
                                 "zero and the cells after it were graded in a fresh kernel"))
            skip.add(k)
            return k + 1, None
        if run.end is End.TIMEOUT:
            finish(k, CellResult(Status.TIMEOUT, run.verdicts,
                                 f"this cell ran longer than the limit of {timeout:g} s and was stopped"))
            skip.add(k)
            return k + 1, None
        if run.end is End.DIED:
            finish(k, CellResult(Status.DIED, run.verdicts,
                                 f"the kernel died while running this cell ({kernel.kill()}); the cells after "
                                 "it were not run and score zero"))
            return len(job.cells), "the kernel died in an earlier cell"
        finish(k, run.result())
    return len(job.cells), None


def _alive(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return False


def main() -> None:
    # Who we are, before the checks are loaded: the digest of the judge's code.
    roots = [p for p in os.environ.get("DLHW_JUDGE_ROOTS", "").split(":") if p]
    digest = tree_digest(roots) if roots else ""
    _prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)     # no ptrace, no /proc/PID/mem of the judge
    root = os.environ.get("DLHW_REFERENCE_ROOT")
    reference = Reference(root) if root else None
    # warm up: everything a notebook of the course imports, imported once
    import numpy  # noqa: F401
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import torch
    torch.set_num_threads(1)
    import dlhw.checks.core as core
    core._load_registry()
    from IPython.core.interactiveshell import InteractiveShell  # noqa: F401
    for mod in job_preloads():
        try:
            __import__(mod)
        except Exception:
            pass
    core.install_scipy_guards()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    rfd, wfd = sys.stdin.fileno(), sys.stdout.fileno()
    # keep our protocol channel clean: stray prints go to stderr
    sys.stdout = sys.stderr
    send(wfd, Op.READY, digest=digest, pid=os.getpid())
    while True:
        try:
            msg = recv(rfd)
        except EOFError:
            return
        start = time.monotonic()
        try:
            run_job(Job.from_wire(msg), lambda k, r: send(wfd, Op.CELL, index=k, result=r.to_wire()), reference)
        except SandboxError as exc:
            send(wfd, Op.FATAL, error=str(exc))
            continue
        except Exception:
            send(wfd, Op.FATAL, error=traceback.format_exc())
            continue
        send(wfd, Op.DONE, seconds=time.monotonic() - start)


def job_preloads():
    return ["sklearn.datasets", "tqdm.auto", "dlhw.data", "dlhw.validation", "scipy", "scipy.signal",
            "scipy.ndimage"]


if __name__ == "__main__":
    main()
