"""``dlhw autograde``: grade a class in parallel, record in nbgrader's gradebook, write results.

The pipeline, per student: rebuild the notebook to grade (``grader.assemble``), run it on a
warm sandboxed server (``grader.sandbox``), turn the judge's verdicts into cell outputs, then
let nbgrader's own ``SaveAutoGrades`` record the scores in the gradebook and write the
autograded notebook where ``nbgrader generate_feedback`` expects it.

Parallelism goes through a ``concurrent.futures.Executor``: by default a thread pool whose
threads each drive one warm server process (the work happens in those processes). Any other
executor with ``submit`` (a Dask ``distributed.Client`` running :func:`grade_job` on workers
that have dlhw installed, for a course that outgrows one machine) can be passed instead.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
import threading
import time
import warnings
from collections import Counter
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import nbformat

from dlhw.checks.core import message_lines
from grader.assemble import assemble
from grader.course import Course, is_test_cell, nbgrader_meta, os_cpu_count

DEFAULT_CELL_TIMEOUT = 60.0
DEFAULT_MEMORY_MB = 2048
DEFAULT_MAX_PROCS = 64          # processes (and threads) of one submission
DEFAULT_DISK_MB = 256           # each of the submission's private /submission and /tmp
SANDBOX_UID = int(os.environ.get("DLHW_SANDBOX_UID", "65534"))   # student code's user, when graded as root


# ------------------------------------------------------------------------------ the workers
_local = threading.local()
_all_servers: list = []
_servers_lock = threading.Lock()
_settings: dict = {}


def _server():
    from grader.sandbox.client import WarmServer
    srv = getattr(_local, "server", None)
    if srv is None or not srv.alive():
        srv = _local.server = WarmServer(_settings["stage"], sandbox=_settings["sandbox"])
        with _servers_lock:
            _all_servers.append(srv)
    return srv


def _start_server():
    try:
        _server()
    except Exception as exc:  # reported again when the first job needs it
        _local.start_error = exc


def grade_job(job: dict) -> dict:
    """Run one notebook's cells on this thread's warm server.

    A server that dies (killed, os._exit in the wrong place, a segfault) costs only the
    submission it was running: that result says what happened, the submission is not re-run,
    and the next job starts a fresh server (from the staged, verified judge).
    """
    from grader.sandbox.client import JudgeChanged, SandboxUnavailable
    try:
        srv = _server()
    except (JudgeChanged, SandboxUnavailable):
        raise
    except Exception as exc:
        return {"cells": [{"status": "not_run", "verdicts": [],
                           "message": f"the grader could not start a grading server: {str(exc)[:500]}"}
                          for _ in job["cells"]], "seconds": 0.0, "crashed": str(exc)[:500]}
    result = srv.run(job)
    if result.get("crashed"):
        srv.kill()
        _local.server = None
    return result


# ------------------------------------------------------------------------------ results
@dataclass
class TestResult:
    name: str
    score: float
    max_score: float
    output: str


@dataclass
class StudentResult:
    student: str
    assignment: str
    tests: List[TestResult] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.tests)

    def gradescope(self) -> dict:
        return {"score": self.score, "max_score": self.max_score,
                "execution_time": round(self.seconds, 3),
                "output": "\n".join(self.notes),
                "tests": [t.__dict__ for t in self.tests]}


def _secret(course: Course) -> str:
    path = course.root / ".grader-secret"
    if not path.exists():
        course.root.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _fill_outputs(asm, result: dict) -> List[TestResult]:
    """Put outputs into the graded notebook and score its test cells from the judge's verdicts."""
    tests = []
    by_cell = dict(zip(asm.run, result["cells"]))
    for idx, cell in enumerate(asm.notebook.cells):
        if cell.cell_type != "code":
            continue
        r = by_cell.get(idx)
        outputs = []
        if r is None:
            cell.outputs = []
            continue
        for stream in ("stdout", "stderr"):
            if r.get(stream):
                outputs.append(nbformat.v4.new_output("stream", name=stream, text=r[stream]))
        status = r.get("status")
        if is_test_cell(cell):
            meta = nbgrader_meta(cell)
            expected = list(dict.fromkeys(asm.expected_checks.get(idx, [])))
            verdicts = r.get("verdicts", [])
            failures = [v["message"] for v in verdicts if not v["passed"]]
            # every call the cell's source makes must have reported, visible and hidden alike
            reported = Counter((v["check"], bool(v.get("hidden"))) for v in verdicts)
            want = Counter(asm.expected_calls.get(idx, []))
            missing = list(dict.fromkeys(n + (" (hidden)" if h else "") for (n, h), k in want.items()
                                         if reported[(n, h)] < k))
            if status in ("timeout", "died", "not_run", "protocol"):
                failures.insert(0, r.get("message", status))
            if missing:
                failures.append("the check(s) " + ", ".join(missing) + " did not report (the cell stopped before "
                                "them" + (f": {r['error']['ename']}: {r['error']['evalue'][:300]}" if r.get("error") else "")
                                + ")")
            if not expected and status != "ok" and not failures:
                failures.append(f"{r['error']['ename']}: {r['error']['evalue']}" if r.get("error") else status)
            ok = not failures
            report = "\n".join(("[grader] \u2713 " if v["passed"] else "[grader] \u2717 ") + v["message"]
                               for v in verdicts)
            # the student's process printed its own copy of each verdict; the judge's is the record.
            # nbgrader zeroes any grade cell that wrote to stderr (a warning from correct code
            # would cost the points), so what the student's code wrote there is shown as text.
            outputs = [nbformat.v4.new_output("stream", name="stdout", text="[stderr]\n" + o["text"])
                       for o in outputs if o.get("name") == "stderr"]
            if report:
                outputs.append(nbformat.v4.new_output("stream", name="stdout", text=report + "\n"))
            if not ok:
                # short wrapped lines, as the notebook shows them: feedback and Validate read them whole
                outputs.append(nbformat.v4.new_output("error", ename="CheckFailed", evalue=failures[0],
                                                      traceback=[line for f in failures
                                                                 for line in message_lines("\u2717 " + f)]))
            points = float(meta.get("points", 0))
            name = meta.get("grade_id", f"cell {idx}")
            if expected:
                name += " (" + ", ".join(dict.fromkeys(expected)) + ")"
            tests.append(TestResult(name, points if ok else 0.0, points,
                                    "\n".join(failures) if failures else report))
        else:
            if status in ("timeout", "died", "not_run", "protocol"):
                outputs.append(nbformat.v4.new_output("error", ename=status.replace("_", " ").title().replace(" ", ""),
                                                      evalue=r.get("message", status), traceback=[r.get("message", "")]))
            elif r.get("error"):
                e = r["error"]
                outputs.append(nbformat.v4.new_output("error", ename=e["ename"], evalue=e["evalue"],
                                                      traceback=str(e.get("traceback", "")).splitlines()[-12:]))
        cell.outputs = outputs
    return tests


def _save_grades(course: Course, assignment: str, student: str, name: str, nb) -> None:
    from nbgrader.preprocessors import SaveAutoGrades
    resources = {"nbgrader": {"notebook": name, "assignment": assignment, "student": student,
                              "db_url": course.db_url}}
    SaveAutoGrades().preprocess(nb, resources)


# ------------------------------------------------------------------------------ the command
def discover(submitted_root: Path, assignment: str) -> Dict[str, List[Path]]:
    """{student: [submitted notebooks]} from nbgrader's layout DIR/<student>/<assignment>/*.ipynb."""
    submitted_root = Path(submitted_root)
    if not submitted_root.is_dir():
        raise SystemExit(f"error: --submitted {submitted_root} is not a directory")
    found = {}
    for sdir in sorted(p for p in submitted_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        adir = sdir / assignment
        if adir.is_dir():   # a student folder without this assignment did not submit it
            found[sdir.name] = sorted(adir.glob("*.ipynb"))
    return found


def autograde(course: Course, assignment: str, submitted_root: Path, results_dir: Path,
              workers: Optional[int] = None, executor: Optional[Executor] = None,
              cell_timeout: float = DEFAULT_CELL_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
              progress: bool = True, students: Optional[List[str]] = None,
              skip_practice: bool = True, sandbox: bool = True, allow_apis: bool = False,
              max_procs: int = DEFAULT_MAX_PROCS, disk_mb: int = DEFAULT_DISK_MB) -> List[StudentResult]:
    """Grade every student folder of ``submitted_root``; see the module docstring.

    ``skip_practice=False`` also runs the cells tagged ``practice`` (training runs, plots),
    which never carry points; the default skips them, as they only cost time.
    ``sandbox=False`` (``--no-sandbox``) grades without bubblewrap: only for trusted code.
    ``allow_apis=True`` lifts the assignment's from-scratch policy (grader.curriculum).
    """
    from tqdm.auto import tqdm
    from grader.curriculum import GRADED, forbidden_apis
    from grader.kit import build_kit
    from grader.sandbox.client import JudgeStage, SandboxUnavailable, bwrap_path

    t0 = time.perf_counter()
    if sandbox and bwrap_path() is None:
        from grader.sandbox.client import BWRAP_INSTALL
        raise SystemExit("error: refusing to grade: bubblewrap (bwrap) is not installed, and student code must not "
                         "run unsandboxed; " + BWRAP_INSTALL)
    if not sandbox:
        print("warning: --no-sandbox: student code runs WITHOUT isolation (it can read this machine's files, "
              "reach the network and tamper with the grading of others); grade only trusted submissions",
              file=sys.stderr)
    course.ensure_released(assignment)
    sources = course.source_notebooks(assignment)
    subs = discover(submitted_root, assignment)
    if students:
        subs = {s: p for s, p in subs.items() if s in students}
    if not subs:
        raise SystemExit(f"error: no student folders in {submitted_root}")
    secret = _secret(course)
    # the helper files every submission gets in its private scratch folder
    files = {extra.name: base64.b64encode(extra.read_bytes()).decode("ascii")
             for extra in sorted((course.source / assignment).iterdir())
             if extra.is_file() and extra.suffix != ".ipynb" and not extra.name.startswith(".")}
    # the judge of this batch: a read-only copy, hashed now and verified at every server start
    stage = JudgeStage(lambda dest: build_kit(dest, with_pyproject=False))
    _settings.update(stage=stage, sandbox=sandbox)
    limits = {"cell_timeout": cell_timeout, "memory_mb": memory_mb, "max_procs": max_procs, "disk_mb": disk_mb,
              "isolate": bool(sandbox), "student_uid": SANDBOX_UID,
              "forbidden": [] if allow_apis else list(forbidden_apis(assignment)),
              # where the judge finds the reference of a graded dependency (dlhw/checks/deps.py)
              "references": {ref.split(":")[1]: ref for refs in GRADED.values() for ref in refs}}

    own_pool = executor is None
    if own_pool:
        workers = workers or os_cpu_count()
        executor = ThreadPoolExecutor(max_workers=workers, initializer=_start_server)

    # assemble every notebook of every student, then hand all the jobs to the pool at once
    plans = {}
    futures = {}
    for student, paths in subs.items():
        for src in sources:
            source_nb = nbformat.read(src, as_version=4)
            release_nb = nbformat.read(course.release / assignment / src.name, as_version=4)
            asm = assemble(source_nb, release_nb, paths, src.stem, skip_practice=skip_practice)
            seed = hashlib.sha256(f"{secret}|{assignment}|{student}|{src.stem}".encode()).hexdigest()
            cells = [{"source": asm.notebook.cells[i].source, "calls": asm.expected_calls.get(i)} for i in asm.run]
            job = dict(limits, cells=cells, files=files, seed=seed)
            plans[(student, src.stem)] = asm
            futures[executor.submit(grade_job, job)] = (student, src.stem)

    results: Dict[str, StudentResult] = {s: StudentResult(s, assignment) for s in subs}
    results_dir = Path(results_dir)
    bar = tqdm(total=len(futures), desc=f"autograde {assignment}", unit="nb", disable=not progress)
    try:
        for fut in as_completed(futures):
            student, name = futures[fut]
            asm = plans[(student, name)]
            try:
                res = fut.result()
            except SandboxUnavailable as exc:
                raise SystemExit(f"error: {exc}") from None
            except Exception as exc:
                from grader.sandbox.client import JudgeChanged
                if isinstance(exc, JudgeChanged):
                    raise SystemExit(f"error: {exc}") from None
                raise
            sr = results[student]
            sr.tests.extend(_fill_outputs(asm, res))
            sr.notes.extend(asm.notes)
            if res.get("crashed"):
                sr.notes.append(str(res["crashed"]))
            sr.notes.extend(_status_notes(asm, res))
            sr.seconds += res.get("seconds", 0.0)
            out_dir = course.autograded_dir(student, assignment)
            out_dir.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                # nbgrader's own ORM use trips SQLAlchemy's autoflush warnings; they are harmless
                warnings.simplefilter("ignore")
                with course.gradebook() as gb:
                    gb.update_or_create_student(student)
                    gb.update_or_create_submission(assignment, student)
                _save_grades(course, assignment, student, name, asm.notebook)
            nbformat.write(asm.notebook, out_dir / f"{name}.ipynb")
            bar.update(1)
    finally:
        bar.close()
        if own_pool:
            executor.shutdown(wait=True, cancel_futures=True)
            _close_servers()
        stage.cleanup()
    for sr in results.values():
        d = results_dir / sr.student
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{assignment}.json").write_text(json.dumps(sr.gradescope(), indent=2))
    ordered = [results[s] for s in sorted(results)]
    if progress:
        print(class_table(ordered))
        print(f"graded {len(ordered)} submission(s) of {assignment} in {time.perf_counter() - t0:.1f} s")
    return ordered


def _status_notes(asm, res) -> List[str]:
    notes = []
    for idx, r in zip(asm.run, res["cells"]):
        cell = asm.notebook.cells[idx]
        gid = nbgrader_meta(cell).get("grade_id", f"cell {idx}")
        if r["status"] in ("timeout", "died", "protocol"):
            notes.append(f"{gid}: {r.get('message', r['status'])}")
        elif r.get("error") and not is_test_cell(cell):
            e = r["error"]
            notes.append(f"{gid}: {e['ename']}: {str(e['evalue'])[:200]}")
    return notes


def _close_servers():
    with _servers_lock:
        while _all_servers:
            _all_servers.pop().close()
    _local.__dict__.clear()


def class_table(results: List[StudentResult]) -> str:
    w = max([len("student")] + [len(r.student) for r in results])
    lines = [f"{'student':<{w}}  {'score':>7}  {'max':>5}  notes", "-" * (w + 30)]
    for r in results:
        note = "; ".join(r.notes)[:90]
        lines.append(f"{r.student:<{w}}  {r.score:7.1f}  {r.max_score:5.0f}  {note}")
    return "\n".join(lines)
