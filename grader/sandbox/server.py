"""The warm grading server: imports the heavy libraries once, then forks one child per submission.

Started once per worker (inside bubblewrap when available, see ``grader.sandbox.client``), it
reads jobs from stdin and writes results to stdout, one length-prefixed JSON message each.
For every job it forks a child that runs the student's cells one at a time, driven from here:

* the child runs student code; this process never does. It is the *judge*: when a test cell
  calls ``check(...)``, the child asks here for the inputs and sends back plain outputs
  (JSON + .npy, never pickle); the verdict is decided and recorded here;
* a cell that runs past its time limit is killed; the child is restarted, the cells before it
  replayed (their verdicts are already recorded) and grading goes on after it;
* a child that dies (os._exit, a segfault, the memory cap) ends the run: the remaining cells
  are reported as not run, so they score zero;
* the memory cap is an RLIMIT_AS on the child; output beyond a limit is truncated.

Forking from a process that already imported numpy, torch, matplotlib and the checks is what
makes this fast: nbgrader starts a fresh kernel and re-imports all of it for every notebook.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import select
import signal
import struct
import sys
import time
import traceback

# One thread per worker: the grader runs one worker per core, and forking a process whose
# OpenMP/BLAS thread pools are running can deadlock the child.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

# ------------------------------------------------------------------------------- framing

def send(fd: int, obj) -> None:
    data = json.dumps(obj).encode()
    data = struct.pack("<Q", len(data)) + data
    while data:
        data = data[os.write(fd, data):]


def recv_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        b = os.read(fd, min(n, 1 << 20))
        if not b:
            raise EOFError
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def recv(fd: int):
    (n,) = struct.unpack("<Q", recv_exact(fd, 8))
    return json.loads(recv_exact(fd, n))


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


def _child(rfd: int, wfd: int, job: dict) -> None:
    """Run cells on request until told to stop. Never returns."""
    import resource

    try:
        cap = int(job.get("memory_mb", 2048)) << 20
        with open("/proc/self/status") as fh:
            vm = next((int(line.split()[1]) << 10 for line in fh if line.startswith("VmSize:")), 0)
        # the cap is on top of what the warm process already maps (torch maps a lot)
        resource.setrlimit(resource.RLIMIT_AS, (vm + cap, vm + cap))
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, 256 << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    os.chdir(job["workdir"])
    # helper modules copied next to the notebook (an assignment's blocks.py) import as they
    # do in Jupyter, where the notebook's folder is on the path
    sys.path.insert(0, job["workdir"])
    # C-level writes to fds 1/2 go nowhere; Python-level output is captured per cell
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):   # the job pipe (0) and the result pipe (1) are not the student's
        os.dup2(devnull, fd)
    signal.signal(signal.SIGINT, signal.SIG_DFL)

    import dlhw.checks.core as core
    from dlhw.checks.wire import encode
    core._CHANNEL = core._Channel(rfd, wfd)

    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance(colors="NoColor", history_length=0)
    shell.showtraceback = lambda *a, **k: None   # errors are reported structured, below
    limit = int(job.get("output_limit", 20000))
    real_stdout, real_stderr = sys.stdout, sys.stderr
    while True:
        try:
            msg = recv(rfd)
        except EOFError:
            os._exit(0)
        if msg.get("op") != "run":
            os._exit(3)
        out, err = _LimitedWriter(limit), _LimitedWriter(limit)
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
        # the captured error text is what IPython printed; keep ours structured instead
        core._CHANNEL._send(encode({"op": "done", "stdout": out.text(),
                                    "stderr": err.text() if error is None else "", "error": error}))


# ------------------------------------------------------------------------------- judge side

class Judge:
    """Hands out inputs and records verdicts for one submission."""

    def __init__(self, seed: str):
        from dlhw.checks import core
        self.core = core
        self.seed = seed
        self.pending = {}
        self.calls = {}

    def _seed(self, cell: int, check: str, hidden: bool) -> int:
        # deterministic per (secret, student, cell, check, call number): regrading gives the
        # same inputs, and students cannot predict them
        n = self.calls.get((cell, check, hidden), 0)
        self.calls[(cell, check, hidden)] = n + 1
        h = hashlib.sha256(f"{self.seed}|{cell}|{check}|{hidden}|{n}".encode()).digest()
        return int.from_bytes(h[:4], "little")

    def inputs(self, cell: int, name: str, hidden: bool):
        chk = self.core.get(name)
        inputs = self.core.draw_inputs(chk, bool(hidden), seed=self._seed(cell, name, bool(hidden)))
        self.pending[name] = inputs
        return inputs

    def verdict(self, name: str, outputs):
        if name not in self.pending:
            return False, f"{name}: outputs arrived without a request for inputs"
        inputs = self.pending.pop(name)
        try:
            chk = self.core.get(name)
        except ValueError as exc:
            return False, str(exc)
        return self.core.judge(chk, inputs, outputs)


def _fork_child(job: dict):
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(to_child_w)
            os.close(to_parent_r)
            _child(to_child_r, to_parent_w, job)
        except BaseException:
            pass
        finally:
            os._exit(4)
    os.close(to_child_r)
    os.close(to_parent_w)
    return pid, to_parent_r, to_child_w


def _kill(pid: int, *fds) -> str:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    return _reap(pid)


def _reap(pid: int) -> str:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return "unknown"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f"killed by signal {signal.Signals(sig).name}" if sig in signal.Signals._value2member_map_ else f"signal {sig}"
    return f"exit status {os.WEXITSTATUS(status)}"


def run_job(job: dict) -> dict:
    from dlhw.checks.wire import WireError, decode, encode

    cells = job["cells"]
    timeout = float(job.get("cell_timeout", 30))
    judge = Judge(job.get("seed", "0"))
    results = [None] * len(cells)
    skip = set()            # cells that timed out: not replayed
    start = time.monotonic()
    i = 0
    while i < len(cells):
        pid, rfd, wfd = _fork_child(job)
        replaying = [k for k in range(i) if k not in skip]
        order = replaying + list(range(i, len(cells)))
        died = None
        for k in order:
            replay = k < i
            cell = cells[k]
            verdicts = []
            try:
                send(wfd, {"op": "run", "source": cell["source"]})
            except OSError:
                died = "the kernel had exited before this cell"
                break
            deadline = time.monotonic() + timeout
            done = None
            while done is None:
                left = deadline - time.monotonic()
                ready = select.select([rfd], [], [], max(left, 0))[0] if left > 0 else []
                if not ready:
                    done = "timeout"
                    break
                try:
                    (n,) = struct.unpack("<Q", recv_exact(rfd, 8))
                    if n > (512 << 20):
                        raise EOFError
                    raw = recv_exact(rfd, n)
                except EOFError:
                    done = "died"
                    break
                try:
                    msg = decode(raw)
                except WireError:
                    msg = {}
                op = msg.get("op") if isinstance(msg, dict) else None
                if op == "inputs":
                    try:
                        inputs = judge.inputs(k, str(msg.get("check")), bool(msg.get("hidden")))
                        payload = encode(inputs)
                    except Exception as exc:
                        payload = encode({"__error__": str(exc)})
                    os.write(wfd, struct.pack("<Q", len(payload)))
                    _write_all(wfd, payload)
                elif op == "outputs":
                    passed, message = judge.verdict(str(msg.get("check")), msg.get("outputs"))
                    verdicts.append({"check": str(msg.get("check")), "passed": passed, "message": message})
                    payload = encode({"passed": passed, "message": message})
                    os.write(wfd, struct.pack("<Q", len(payload)))
                    _write_all(wfd, payload)
                elif op == "done":
                    done = msg
                else:
                    done = "died"
                    break
            if replay:
                if done == "timeout" or done == "died":
                    # a cell that passed before fails on replay: stop replaying, report it
                    died = f"the kernel died while re-running the cells before cell {i}"
                    break
                continue
            if done == "timeout":
                results[k] = {"status": "timeout", "verdicts": verdicts,
                              "message": f"this cell ran longer than the limit of {timeout:g} s and was stopped"}
                skip.add(k)
                _kill(pid, rfd, wfd)
                i = k + 1
                break
            if done == "died":
                how = _kill(pid, rfd, wfd)
                results[k] = {"status": "died", "verdicts": verdicts,
                              "message": f"the kernel died while running this cell ({how}); the cells after it "
                                         "were not run and score zero"}
                for rest in range(k + 1, len(cells)):
                    results[rest] = {"status": "not_run", "verdicts": [],
                                     "message": f"not run: the kernel died in an earlier cell"}
                return {"cells": results, "seconds": time.monotonic() - start}
            results[k] = {"status": "error" if done.get("error") else "ok", "verdicts": verdicts,
                          "stdout": str(done.get("stdout", ""))[:200000],
                          "stderr": str(done.get("stderr", ""))[:200000],
                          "error": done.get("error")}
        else:
            _kill(pid, rfd, wfd)
            i = len(cells)
            continue
        if died:
            _kill(pid, rfd, wfd)
            for rest in range(len(cells)):
                if results[rest] is None:
                    results[rest] = {"status": "not_run", "verdicts": [], "message": f"not run: {died}"}
            break
    return {"cells": results, "seconds": time.monotonic() - start}


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def main() -> None:
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
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    rfd, wfd = sys.stdin.fileno(), sys.stdout.fileno()
    # keep our protocol channel clean: stray prints go to stderr
    sys.stdout = sys.stderr
    send(wfd, {"op": "ready"})
    while True:
        try:
            job = recv(rfd)
        except EOFError:
            return
        try:
            result = run_job(job)
        except Exception:
            result = {"fatal": traceback.format_exc()}
        send(wfd, result)


def job_preloads():
    return ["sklearn.datasets", "tqdm.auto", "dlhw.data", "dlhw.validation", "scipy"]


if __name__ == "__main__":
    main()
