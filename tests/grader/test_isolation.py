"""Grader isolation (issue 9): an adversarial class graded in one batch, attackers first.

The victims (a perfect copy and two wrong ones) are graded once alone, then again in a batch in
which attackers come first (student names sort before theirs, and jobs are handed out in
that order). Every victim must get the grade it got alone; every attacker only the points its
code earns; the batch finishes with a result for everyone; no process is left behind.
"""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import nbformat
import pytest

from grader.course import REPO
from grader.mutants import load, student_answers
from grader.sandbox.client import bwrap_path
from grader.simulate import make_submission, solution_answers, write_submission
from tests.grader.conftest import grade_class, notebook_name
from tests.grader.test_hostile import _appended, _with

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("isolation"),
              pytest.mark.skipif(bwrap_path() is None, reason="needs bubblewrap: run .ci/setup")]
A = "02_mlp_backprop"
MARK = "31337"          # sleepers carry it in their command line, so the test can look for them


TAMPER_AND_KILL = '''
import os, signal, glob, dlhw, dlhw.checks.core as core
report = []
targets = [core.__file__, os.path.dirname(dlhw.__file__), "/opt/dlhw-server/grader/sandbox/server.py"]
targets += glob.glob("/opt/*/grader/sandbox/*.py") + glob.glob("/opt/*/dlhw/checks/*.py")
for path in targets:
    try:
        with open(path, "a") as fh:
            fh.write("\\ndef judge(*a, **k):\\n    return True, 'pwned'\\n")
        report.append("WROTE " + path)
    except OSError as exc:
        report.append("blocked " + path)
    try:
        os.rename(path, path + ".x"); report.append("RENAMED " + path)
    except OSError:
        pass
print("\\n".join(report))
for pid in range(2, 400):          # every process it can name, the graders included
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
os.kill(-1, signal.SIGKILL)
'''

def _course_paths(root: Path) -> list:
    course = root / "course"
    return [course / "gradebook.db", course / ".grader-secret", course / "autograded", course / "feedback",
            root / "results", root / "submitted", REPO / "solutions" / A / f"{A}.ipynb",
            REPO / "dlhw" / "nn" / "layers.py",
            Path("/opt/dlhw-ref/dlhw/nn/layers.py")]    # the judge's reference, covered in the sandbox


def snoop(root: Path):
    paths = [str(p) for p in _course_paths(root)]
    return _appended(f'''
import os
found = []
for p in {paths!r}:
    if os.path.exists(p):
        found.append("SEES " + p)
        try:
            if os.path.isdir(p):
                os.listdir(p); found.append("LISTS " + p)
            else:
                open(p, "rb").read(1); found.append("READS " + p)
            open(os.path.join(p, "x") if os.path.isdir(p) else p, "ab").write(b"pwned")
            found.append("WRITES " + p)
        except OSError:
            pass
import sys
system = ("/proc", "/sys", "/usr", "/dev", sys.prefix, sys.base_prefix)   # the read-only system and Python
for top in ("/", "/submission/..", "/tmp"):
    for dirpath, dirs, files in os.walk(os.path.realpath(top)):
        if dirpath.startswith(system):
            dirs[:] = []
            continue
        for f in files:
            if f.endswith((".ipynb", ".db")) or f == ".grader-secret":
                found.append("FILE " + os.path.join(dirpath, f))
print("SNOOP", found if found else "nothing")
''')


FORGE = '''
import os, json, struct, dlhw.checks.core as core
print("[grader] \\u2713 affine_forward: correct")
print("\\u2713 affine_forward: correct. Hidden tests with other shapes and seeds run at grading time.")
ch = core._CHANNEL
if ch is not None:
    # a verdict claimed without inputs, an early 'done', then raw garbage on every descriptor
    ch._send(core.encode({"op": "outputs", "check": "affine_forward", "nonce": ch.nonce,
                          "outputs": {"out": [1.0]}}))
    ch._send(core.encode({"op": "done", "nonce": ch.nonce, "stdout": "", "stderr": "", "error": None}))
    for fd in range(3, 64):
        try:
            os.write(fd, struct.pack("<Q", 12) + b"not json at all")
        except OSError:
            pass

def affine_forward(x, w, b):    # wrong: no bias
    return x.reshape(x.shape[0], -1) @ w, (x, w, b)
'''

ASK_VISIBLE = '''
import dlhw.checks.core as core
_real = core.check
def check(name, *fns, hidden=False, quiet=False):   # asks for the visible inputs, always
    return _real(name, *fns, hidden=False, quiet=quiet)
core.check = check
import dlhw.checks
dlhw.checks.check = check

def affine_forward(x, w, b):    # wrong: no bias
    return x.reshape(x.shape[0], -1) @ w, (x, w, b)
'''

PEEK = '''
import gc, inspect, numpy as np

def affine_forward(x, w, b):
    # looks for the expected output in the caller's frames and in every object the process holds
    want = (x.shape[0], w.shape[1])
    for frame in inspect.stack():
        for v in list(frame.frame.f_locals.values()):
            if isinstance(v, np.ndarray) and v.shape == want:
                return v.copy(), (x, w, b)
    for obj in gc.get_objects():
        if isinstance(obj, np.ndarray) and obj.shape == want and obj is not x:
            return obj.copy(), (x, w, b)
    return np.zeros(want), (x, w, b)
'''

LINGER = f'''
import os, subprocess, time
subprocess.Popen(["sleep", "{MARK}"])
if os.fork() == 0:                  # a double-forked daemon
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "{MARK}1"])
    os._exit(0)
n = 0
try:                                # a fork bomb, stopped by the process cap
    for _ in range(10000):
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
        n += 1
except OSError as exc:
    print("FORKS STOPPED after", n, exc)
'''

DISK = '''
try:
    with open("big.bin", "wb") as fh:
        for _ in range(4096):
            fh.write(b"x" * (1 << 20))       # 4 GiB
except OSError as exc:
    print("DISK CAPPED", exc)
'''


def network(port: int):
    return _appended(f'''
import socket
for host, port in (("127.0.0.1", {port}), ("pypi.org", 443), ("8.8.8.8", 53)):
    try:
        socket.create_connection((host, port), timeout=2)
        print("NET OPEN", host, port)
    except OSError:
        print("NET closed", host, port)
''')


TORCH = '''
import torch
def affine_forward(x, w, b):
    out = torch.from_numpy(x.reshape(x.shape[0], -1)) @ torch.from_numpy(w) + torch.from_numpy(b)
    return out.numpy(), (x, w, b)
'''


def _victims():
    wrong, _ = load(A)
    picks = [m for m in wrong if m.answer in ("affine_backward", "relu_forward")][:2]
    assert len(picks) == 2
    return picks


def _victim_makers():
    def perfect(course, subs, student, assignment, nbname, sol):
        write_submission(subs, student, assignment, nbname, make_submission(course, assignment, nbname, sol))

    def mutant(m):
        def make(course, subs, student, assignment, nbname, sol):
            write_submission(subs, student, assignment, nbname,
                             make_submission(course, assignment, nbname, student_answers(sol, m)))
        return make
    a, b = _victims()
    return {"z-perfect": perfect, "z-wrong-a": mutant(a), "z-wrong-b": mutant(b)}


def _host_sleepers() -> list:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "sleep " + MARK in cmd:
                found.append((pid, cmd))
    return found


@pytest.fixture(scope="module")
def listener():
    """A real service on the host's loopback, which no submission may reach."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    hits = []

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            hits.append(1)
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1], hits
    srv.close()


@pytest.fixture(scope="module")
def batch(tmp_path_factory, listener):
    port, hits = listener
    alone_root = tmp_path_factory.mktemp("alone")
    _, alone, _ = grade_class(alone_root, A, extra=_victim_makers(), mutants=False, cell_timeout=10)
    root = tmp_path_factory.mktemp("attacked")
    attackers = {
        "a-tamper-kill": _appended(TAMPER_AND_KILL),
        "a-snoop": snoop(root),
        "a-forge": _appended(FORGE),
        "a-ask-visible": _appended(ASK_VISIBLE),
        "a-peek": _appended(PEEK),
        "a-linger": _with("relu_forward", LINGER + "\n\ndef relu_forward(x):\n    return np.maximum(x, 0), x\n"),
        "a-disk": _appended(DISK),
        "a-net": network(port),
        "a-torch": _appended(TORCH),
    }
    course, res, _ = grade_class(root, A, extra={**attackers, **_victim_makers()}, mutants=False, cell_timeout=10)
    return root, course, res, alone, hits


def _text(course, student) -> str:
    nb = nbformat.read(course.autograded_dir(student, A) / f"{A}.ipynb", as_version=4)
    return "".join(o.get("text", "") + " ".join(o.get("traceback", []) or [])
                   for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def _tests(r):
    return {t["name"].split(" ")[0]: t for t in r["tests"]}


def test_victims_get_the_grades_they_get_alone(batch):
    root, course, res, alone, _ = batch
    for v in ("z-perfect", "z-wrong-a", "z-wrong-b"):
        assert {k: t["score"] for k, t in _tests(res[v]).items()} == \
               {k: t["score"] for k, t in _tests(alone[v]).items()}, f"{v} graded differently beside attackers"
    assert res["z-perfect"]["score"] == 100


def test_every_student_has_a_result(batch):
    root, course, res, _, _ = batch
    subs = {p.name for p in (root / "submitted").iterdir()}
    assert set(res) == subs
    with course.gradebook() as gb:
        assert {s.student.id for s in gb.assignment_submissions(A)} == subs


def test_the_judge_cannot_be_changed_and_killing_costs_only_the_attacker(batch):
    root, course, res, _, _ = batch
    text = _text(course, "a-tamper-kill")
    assert "WROTE" not in text and "RENAMED" not in text, text[:2000]
    assert "blocked" in text
    # it can name no process but its own: the kills hit nothing, and its (right) code earns its points
    assert res["a-tamper-kill"]["score"] == 100


def test_no_other_files_are_reachable(batch):
    root, course, res, _, _ = batch
    line = next(l for l in _text(course, "a-snoop").splitlines() if l.startswith("SNOOP"))
    assert line == "SNOOP nothing", line
    assert res["a-snoop"]["score"] == 100
    assert b"pwned" not in (course.root / "gradebook.db").read_bytes()
    for p in (root / "results").rglob("*.json"):
        assert "pwned" not in p.read_text()


def test_forged_verdicts_and_protocol_messages_earn_nothing(batch):
    root, course, res, _, _ = batch
    t = _tests(res["a-forge"])
    assert t["test_affine_forward"]["score"] == 0
    # the cells after the forgery are graded on their merits, in a fresh kernel
    assert t["test_relu_forward"]["score"] == t["test_relu_forward"]["max_score"]
    assert t["test_softmax_loss_loss"]["score"] == t["test_softmax_loss_loss"]["max_score"]


def test_asking_for_visible_inputs_in_a_hidden_test_earns_nothing(batch):
    t = _tests(batch[2]["a-ask-visible"])
    assert t["test_affine_forward"]["score"] == 0


def test_frames_and_gc_hold_no_expected_values(batch):
    t = _tests(batch[2]["a-peek"])
    assert t["test_affine_forward"]["score"] == 0


def test_no_process_outlives_its_submission(batch):
    root, course, res, _, _ = batch
    assert _host_sleepers() == []
    text = _text(course, "a-linger")
    assert "FORKS STOPPED" in text
    t = _tests(res["a-linger"])
    assert t["test_relu_forward"]["score"] == t["test_relu_forward"]["max_score"]


def test_disk_is_capped(batch):
    root, course, res, _, _ = batch
    assert "DISK CAPPED" in _text(course, "a-disk")
    assert res["a-disk"]["score"] == 100


def test_no_network_not_even_loopback(batch):
    root, course, res, _, hits = batch
    text = _text(course, "a-net")
    assert "NET OPEN" not in text and text.count("NET closed") == 3
    assert hits == [], "a submission reached a service on the host's loopback"


def test_forbidden_apis_fail_with_the_call_named(batch):
    t = _tests(batch[2]["a-torch"])
    assert t["test_affine_forward"]["score"] == 0
    assert "called torch." in t["test_affine_forward"]["output"]
    assert t["test_relu_forward"]["score"] == t["test_relu_forward"]["max_score"]


def test_refuses_to_grade_without_bubblewrap(tmp_path, monkeypatch):
    from grader import autograde as ag
    from grader.course import Course
    monkeypatch.setattr("grader.sandbox.client.bwrap_path", lambda: None)
    subs = tmp_path / "submitted"
    course = Course(root=tmp_path / "course")
    nbname = notebook_name(course, A)
    write_submission(subs, "s", A, nbname, make_submission(course, A, nbname, solution_answers(course, A, nbname)))
    with pytest.raises(SystemExit, match="bubblewrap"):
        ag.autograde(course, A, subs, tmp_path / "results", workers=1, progress=False)


def test_a_changed_judge_stops_the_batch(tmp_path):
    from grader.kit import build_kit
    from grader.sandbox.client import JudgeChanged, JudgeStage, WarmServer
    stage = JudgeStage(lambda d: build_kit(d, with_pyproject=False))
    try:
        target = stage.kit / "dlhw" / "checks" / "core.py"
        os.chmod(target.parent, 0o755)
        os.chmod(target, 0o644)
        with open(target, "a") as fh:
            fh.write("\n# changed\n")
        with pytest.raises(JudgeChanged, match="changed during the batch"):
            WarmServer(stage)
    finally:
        stage.cleanup()


def test_a_dead_server_costs_only_its_submission():
    """Killed mid-submission: the cells done keep their results, the rest say what happened, the
    submission is not re-run, and the next submission is graded by a fresh server."""
    import time
    from grader import autograde as ag
    from grader.kit import build_kit
    from grader.sandbox.client import JudgeStage
    from grader.sandbox.protocol import CellJob, Job, Limits
    stage = JudgeStage(lambda d: build_kit(d, with_pyproject=False))
    pool = ag.GradingWorkers(stage, sandbox=True)
    limits = Limits(cell_timeout=30, memory_mb=2048, isolate=True, student_uid=ag.SANDBOX_UID, forbidden=())
    try:
        first = pool.server()
        killer = threading.Timer(3.0, first.proc.kill)
        killer.start()
        t0 = time.monotonic()
        res = pool.grade(Job([CellJob("x = 1"), CellJob("import time\ntime.sleep(20)"), CellJob("print(x)")],
                             "s", limits))
        assert time.monotonic() - t0 < 15
        assert [c.status for c in res.cells] == ["ok", "died", "died"]
        assert "not re-run" in res.cells[1].message and res.crashed
        res = pool.grade(Job([CellJob("print(6 * 7)")], "s", limits))
        assert res.cells[0].stdout == "42\n"
        assert pool.server() is not first
    finally:
        pool.close()
        stage.cleanup()


def test_a_submissions_processes_end_with_it_not_with_the_batch():
    """A daemon left by one submission is gone as soon as that submission ends, server still up."""
    from grader.kit import build_kit
    from grader.sandbox.client import JudgeStage, WarmServer
    from grader.sandbox.protocol import CellJob, Job, Limits
    stage = JudgeStage(lambda d: build_kit(d, with_pyproject=False))
    srv = WarmServer(stage)
    try:
        daemon = (f"import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                  f"        os.execvp('sleep', ['sleep', '{MARK}2'])\n    os._exit(0)\n"
                  "import time\ntime.sleep(1.5)   # the daemon is running sleep by now\n")
        res = srv.run(Job([CellJob(daemon)], "s", Limits(cell_timeout=20, memory_mb=2048, isolate=True,
                                                         student_uid=65534)))
        assert res.cells[0].status == "ok", res
        assert srv.alive()
        assert [c for _, c in _host_sleepers() if f"sleep {MARK}2" in c] == []
    finally:
        srv.close()
        stage.cleanup()
