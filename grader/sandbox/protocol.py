"""The grading protocol: the stages of a batch, the messages between its processes, their types.

A batch goes through these stages, in this order (as nbgrader lists its preprocessors); each
names the function or class that does it and what it hands to the next:

=========  =========================================  ==============================================
stage      where                                      hands on
=========  =========================================  ==============================================
discover   ``grader.autograde.discover``              {student: [submitted notebooks]}
assemble   ``grader.assemble.assemble``               an ``Assembled`` notebook and a :class:`Job`
run        ``grader.autograde.GradingWorkers.grade``  a :class:`JobResult` (one warm server each,
           (``grader.sandbox.client.WarmServer``)     ``grader.sandbox.server.run_job`` replaying
                                                      cells after a kernel is lost)
judge      ``grader.sandbox.server.Judge``            a :class:`Verdict` per check call, inside run
score      ``grader.autograde.score_cells``           a :class:`CellScore` per graded cell
render     ``grader.autograde.render_outputs``        the notebook's cell outputs
record     ``grader.autograde.record``                nbgrader's gradebook, the autograded notebook
                                                      and the results JSON
feedback   ``grader.feedback.feedback``               nbgrader's HTML feedback
=========  =========================================  ==============================================

The processes and what crosses between them (every message is one frame of
``dlhw.checks.wire``: the one framing implementation, shared with the kit's side):

* instructor -> server (a pipe): a :class:`Job` as JSON; server -> instructor: :data:`Op.READY`
  once, then per job one :data:`Op.CELL` per finished cell (a :class:`CellResult`) and
  :data:`Op.DONE` (or :data:`Op.FATAL`);
* judge -> kernel (a control socket): :data:`Op.RUN` with a cell's source, its nonce and a fresh
  pair of pipes; kernel -> judge (those pipes, ``dlhw.checks.core.install_channel``): the kit's
  :data:`Op.INPUTS`, :data:`Op.OUTPUTS` and :data:`Op.DEP` requests (wire-encoded, never
  pickled), then :data:`Op.DONE` with the cell's output.

No side effects on import: the instructor's process, the grading server and the reference helper
all use it. Jobs and results are plain dataclasses, so they pickle (for a Dask worker) and turn
into JSON (for a server) without loss.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Dict, List, Optional, Tuple

from dlhw.checks.wire import read_frame, send_frame


class Op(str, Enum):
    """The ``op`` of every message."""
    READY = "ready"             # server, started: {"digest", "pid"}
    CELL = "cell"               # server, a cell finished: {"index", "result"}
    DONE = "done"               # server, a job finished: {"seconds"}; kernel, a cell finished
    FATAL = "fatal"             # server, the judge itself failed: {"error"}
    STARTED = "started"         # sandbox, the kernel runs: {"pid"}
    SANDBOX_ERROR = "sandbox_error"
    RUN = "run"                 # judge to kernel: {"source", "nonce"}
    INPUTS = "inputs"           # kernel (dlhw.checks.core): {"check"}
    OUTPUTS = "outputs"         # kernel: {"check", "outputs"}
    DEP = "dep"                 # kernel: {"function", "args", "kwargs"}


class Status(str, Enum):
    """How one cell ended."""
    OK = "ok"                   # ran to the end
    ERROR = "error"             # raised (its own error, or a failed check)
    TIMEOUT = "timeout"         # stopped at the time limit
    DIED = "died"               # the kernel (or the server) died while it ran
    NOT_RUN = "not_run"         # never ran: an earlier cell ended the submission
    PROTOCOL = "protocol"       # wrote to the grader's channel

    @property
    def stopped(self) -> bool:
        """The grader stopped the cell or never ran it (its message says why)."""
        return self in (Status.TIMEOUT, Status.DIED, Status.NOT_RUN, Status.PROTOCOL)


@dataclass(frozen=True)
class Limits:
    """What one submission may use; the same for the whole batch."""
    cell_timeout: float = 60.0
    memory_mb: int = 2048
    max_procs: int = 64             # processes (and threads) of one submission
    disk_mb: int = 256              # each of the submission's private /submission and /tmp
    output_limit: int = 20000       # characters of stdout (and of stderr) kept per cell
    isolate: bool = True            # False: --no-sandbox, trusted code only
    student_uid: int = 65534        # student code's user, when graded as root
    forbidden: Tuple[str, ...] = ()     # APIs the assignment's policy forbids (dlhw.checks.policy)
    # graded function -> "module:name" of its reference, for graded dependencies (dlhw/checks/deps.py)
    references: Dict[str, str] = field(default_factory=dict)


@dataclass
class CellJob:
    """One code cell to run: its source and, for a test cell, the check calls (name, hidden) it
    makes; ``calls`` is None for a cell that is not a test."""
    source: str
    calls: Optional[List[Tuple[str, bool]]] = None


@dataclass
class Job:
    """Everything one notebook of one submission needs to be graded, on any machine."""
    cells: List[CellJob]
    seed: str                       # the per-(student, notebook) secret seed of hidden inputs
    limits: Limits = field(default_factory=Limits)
    files: Dict[str, str] = field(default_factory=dict)     # helper files: name -> base64 content
    key: Tuple[str, str] = ("", "")                         # (student, notebook), for the caller

    def to_wire(self) -> dict:
        return asdict(self)

    @classmethod
    def from_wire(cls, d: dict) -> "Job":
        lim = dict(d.get("limits") or {})
        lim["forbidden"] = tuple(lim.get("forbidden") or ())
        cells = [CellJob(str(c["source"]), None if c.get("calls") is None else
                         [(str(n), bool(h)) for n, h in c["calls"]]) for c in d["cells"]]
        return cls(cells, str(d.get("seed", "0")), Limits(**lim), dict(d.get("files") or {}),
                   tuple(d.get("key") or ("", "")))


@dataclass
class Verdict:
    """The judge's decision on one check call."""
    check: str
    hidden: bool
    passed: bool
    message: str


@dataclass
class CellError:
    """The exception a cell raised."""
    ename: str
    evalue: str
    traceback: str = ""


@dataclass
class CellResult:
    """One cell's result; ``message`` says why the grader stopped it (``status.stopped``)."""
    status: Status
    verdicts: List[Verdict] = field(default_factory=list)
    message: str = ""
    stdout: str = ""
    stderr: str = ""
    error: Optional[CellError] = None

    def to_wire(self) -> dict:
        return asdict(self)

    @classmethod
    def from_wire(cls, d: dict) -> "CellResult":
        err = d.get("error")
        return cls(Status(d["status"]), [Verdict(str(v["check"]), bool(v["hidden"]), bool(v["passed"]),
                                                 str(v["message"])) for v in d.get("verdicts") or []],
                   str(d.get("message") or ""), str(d.get("stdout") or ""), str(d.get("stderr") or ""),
                   None if err is None else CellError(str(err["ename"]), str(err["evalue"]),
                                                      str(err.get("traceback") or "")))

    @classmethod
    def stopped(cls, status: Status, message: str) -> "CellResult":
        return cls(status, message=message)


@dataclass
class JobResult:
    """One notebook's results, one per cell of its job; ``crashed`` says why the server was lost."""
    cells: List[CellResult]
    seconds: float = 0.0
    crashed: Optional[str] = None
    key: Tuple[str, str] = ("", "")


# ------------------------------------------------------------------------------- messages
def send(fd: int, op: Op, **fields) -> None:
    """One JSON message ``{"op": op, **fields}`` (statuses and ops are str enums: JSON strings)."""
    send_frame(fd, json.dumps(dict(fields, op=op.value)).encode())


def recv(fd: int, deadline: Optional[float] = None) -> dict:
    """One JSON message (an object); ValueError for anything else. Only from the grader's own
    processes: no size limit."""
    msg = json.loads(read_frame(fd, deadline, limit=1 << 40))
    if not isinstance(msg, dict):
        raise ValueError("a message that is not an object")
    return msg


def tree_digest(roots) -> str:
    """sha256 over every file (relative path and content) under ``roots``: the judge's identity."""
    h = hashlib.sha256()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".pyc"):
                    continue
                path = os.path.join(dirpath, name)
                h.update(os.path.relpath(path, root).encode() + b"\0")
                with open(path, "rb") as fh:
                    h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()
