"""``dlhw autograde``: grade a class in parallel, record in nbgrader's gradebook, write results.

The stages of a batch (discover, assemble, run, judge, score, render, record, feedback) are
listed in one place, ``grader.sandbox.protocol``, with the types they hand on. Per notebook of
a student: rebuild the notebook to grade (:func:`grader.assemble.assemble`), make it a
:class:`Job`, run it on a warm sandboxed server (:class:`GradingWorkers`), score its test cells
from the judge's verdicts (:func:`score_cells`), put the outputs into the notebook
(:func:`render_outputs`), then :func:`record`: nbgrader's own ``SaveAutoGrades`` records the
scores in the gradebook and the autograded notebook goes where ``nbgrader generate_feedback``
expects it.

Only this (the instructor's) process records anything. The workers get each job whole (its
cells, helper files, seed and limits) and give back a :class:`JobResult`; both pickle, so a
:class:`GradingWorkers` can as well live on another machine (one per Dask worker).
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
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import nbformat

from dlhw.checks.core import message_lines
from grader.assemble import Assembled, assemble
from grader.course import Course, is_test_cell, nbgrader_meta, os_cpu_count
from grader.sandbox.protocol import CellJob, CellResult, Job, JobResult, Limits, Status

DEFAULT_CELL_TIMEOUT = 60.0
DEFAULT_MEMORY_MB = 2048
DEFAULT_MAX_PROCS = 64          # processes (and threads) of one submission
DEFAULT_DISK_MB = 256           # each of the submission's private /submission and /tmp
SANDBOX_UID = int(os.environ.get("DLHW_SANDBOX_UID", "65534"))   # student code's user, when graded as root


# ------------------------------------------------------------------------------ the workers
class GradingWorkers:
    """Warm grading servers, one per thread, all started from one staged judge.

    ``grade(job)`` runs a job on the calling thread's server (started on first use);
    ``submit(job)`` on one of the pool's own ``workers`` threads (``start`` starts their servers
    ahead). A server that dies (killed, os._exit in the wrong place, a segfault) costs only the
    submission it was running: that result says what happened, the submission is not re-run,
    and the next job starts a fresh server (from the staged, verified judge). ``close`` stops
    them all. One object per machine, or per Dask worker: it holds no state of the batch but the
    judge.
    """

    def __init__(self, stage, sandbox: bool = True, workers: Optional[int] = None):
        self.stage, self.sandbox = stage, sandbox
        self.workers = workers or os_cpu_count()
        self._local = threading.local()
        self._servers: list = []
        self._lock = threading.Lock()
        self._pool: Optional[ThreadPoolExecutor] = None

    def start(self) -> "GradingWorkers":
        self._pool = ThreadPoolExecutor(max_workers=self.workers, initializer=self._start_server)
        return self

    def server(self):
        """This thread's warm server (a new one if it has none, or it died)."""
        from grader.sandbox.client import WarmServer
        srv = getattr(self._local, "server", None)
        if srv is None or not srv.alive():
            srv = self._local.server = WarmServer(self.stage, sandbox=self.sandbox)
            with self._lock:
                self._servers.append(srv)
        return srv

    def _start_server(self) -> None:
        try:
            self.server()
        except Exception:  # reported again when the first job needs it
            pass

    def grade(self, job: Job) -> JobResult:
        """One notebook's results, on this thread's server; raises JudgeChanged, SandboxUnavailable."""
        from grader.sandbox.client import JudgeChanged, SandboxUnavailable
        try:
            srv = self.server()
        except (JudgeChanged, SandboxUnavailable):
            raise
        except Exception as exc:
            why = f"the grader could not start a grading server: {str(exc)[:500]}"
            return JobResult([CellResult.stopped(Status.NOT_RUN, why) for _ in job.cells], 0.0,
                             crashed=str(exc)[:500], key=job.key)
        result = srv.run(job)
        if result.crashed:
            srv.kill()
            self._local.server = None
        return result

    def submit(self, job: Job) -> Future:
        if self._pool is None:
            self.start()
        return self._pool.submit(self.grade, job)

    @staticmethod
    def results(futures) -> Iterator[JobResult]:
        """The submitted jobs' results, as they finish."""
        for fut in as_completed(futures):
            yield fut.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        with self._lock:
            while self._servers:
                self._servers.pop().close()
        self._local = threading.local()

    def __enter__(self) -> "GradingWorkers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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


# ------------------------------------------------------------------------------ score, render
@dataclass
class CellScore:
    """A test cell's score from the judge's verdicts: ``points`` of ``max_points``, with why not."""
    index: int                  # the cell's index in the graded notebook
    name: str                   # its grade id and the checks it calls
    max_points: float
    failures: List[str]         # empty when it passes
    report: str                 # the judge's verdict lines

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def points(self) -> float:
        return self.max_points if self.passed else 0.0

    def test_result(self) -> TestResult:
        return TestResult(self.name, self.points, self.max_points,
                          "\n".join(self.failures) if self.failures else self.report)


def _score_cell(asm: Assembled, idx: int, r: CellResult) -> CellScore:
    cell = asm.notebook.cells[idx]
    meta = nbgrader_meta(cell)
    expected = list(dict.fromkeys(asm.expected_checks.get(idx, [])))
    failures = [v.message for v in r.verdicts if not v.passed]
    # every call the cell's source makes must have reported, visible and hidden alike
    reported = Counter((v.check, v.hidden) for v in r.verdicts)
    want = Counter(asm.expected_calls.get(idx, []))
    missing = list(dict.fromkeys(n + (" (hidden)" if h else "") for (n, h), k in want.items()
                                 if reported[(n, h)] < k))
    if r.status.stopped:
        failures.insert(0, r.message or r.status.value)
    if missing:
        failures.append("the check(s) " + ", ".join(missing) + " did not report (the cell stopped before "
                        "them" + (f": {r.error.ename}: {r.error.evalue[:300]}" if r.error else "") + ")")
    if not expected and r.status is not Status.OK and not failures:
        failures.append(f"{r.error.ename}: {r.error.evalue}" if r.error else r.status.value)
    report = "\n".join(("[grader] \u2713 " if v.passed else "[grader] \u2717 ") + v.message for v in r.verdicts)
    name = meta.get("grade_id", f"cell {idx}")
    if expected:
        name += " (" + ", ".join(expected) + ")"
    return CellScore(idx, name, float(meta.get("points", 0)), failures, report)


def score_cells(asm: Assembled, result: JobResult) -> List[CellScore]:
    """The score of every test cell that ran, in notebook order (the judge's verdicts decide)."""
    return [_score_cell(asm, idx, r) for idx, r in zip(asm.run, result.cells)
            if is_test_cell(asm.notebook.cells[idx])]


def _stream(name: str, text: str):
    return nbformat.v4.new_output("stream", name=name, text=text)


def render_outputs(asm: Assembled, result: JobResult, scores: List[CellScore]) -> None:
    """Put each code cell's outputs into the graded notebook (cells not run get none)."""
    by_cell = dict(zip(asm.run, result.cells))
    by_score = {s.index: s for s in scores}
    for idx, cell in enumerate(asm.notebook.cells):
        if cell.cell_type != "code":
            continue
        r = by_cell.get(idx)
        if r is None:
            cell.outputs = []
        elif idx in by_score:
            cell.outputs = _test_cell_outputs(r, by_score[idx])
        else:
            cell.outputs = [_stream(n, t) for n, t in (("stdout", r.stdout), ("stderr", r.stderr)) if t]
            if r.status.stopped:
                cell.outputs.append(nbformat.v4.new_output(
                    "error", ename=r.status.value.replace("_", " ").title().replace(" ", ""),
                    evalue=r.message or r.status.value, traceback=[r.message]))
            elif r.error:
                cell.outputs.append(nbformat.v4.new_output("error", ename=r.error.ename, evalue=r.error.evalue,
                                                           traceback=r.error.traceback.splitlines()[-12:]))


def _test_cell_outputs(r: CellResult, score: CellScore) -> list:
    # The student's process printed its own copy of each verdict; the judge's is the record, so
    # the student's stdout is dropped. nbgrader zeroes any grade cell that wrote to stderr (a
    # warning from correct code would cost the points), so stderr is shown as stdout text.
    outputs = [_stream("stdout", "[stderr]\n" + r.stderr)] if r.stderr else []
    if score.report:
        outputs.append(_stream("stdout", score.report + "\n"))
    if score.failures:
        # short wrapped lines, as the notebook shows them: feedback and Validate read them whole
        outputs.append(nbformat.v4.new_output("error", ename="CheckFailed", evalue=score.failures[0],
                                              traceback=[line for f in score.failures
                                                         for line in message_lines("\u2717 " + f)]))
    return outputs


# ------------------------------------------------------------------------------ record
def record(course: Course, assignment: str, student: str, name: str, nb) -> None:
    """The notebook's grades into nbgrader's gradebook, the notebook where feedback expects it."""
    out_dir = course.autograded_dir(student, assignment)
    out_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # nbgrader's own ORM use trips SQLAlchemy's autoflush warnings; they are harmless
        warnings.simplefilter("ignore")
        with course.gradebook() as gb:
            gb.update_or_create_student(student)
            gb.update_or_create_submission(assignment, student)
        _save_grades(course, assignment, student, name, nb)
    nbformat.write(nb, out_dir / f"{name}.ipynb")


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
              workers: Optional[int] = None,
              cell_timeout: float = DEFAULT_CELL_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
              progress: bool = True, students: Optional[List[str]] = None,
              skip_practice: bool = True, sandbox: bool = True, allow_apis: bool = False,
              max_procs: int = DEFAULT_MAX_PROCS, disk_mb: int = DEFAULT_DISK_MB,
              scheduler=None) -> List[StudentResult]:
    """Grade every student folder of ``submitted_root``; see the module docstring.

    ``scheduler`` (a Dask scheduler's address, or a ``distributed.Client``) grades on that
    cluster's workers (``grader.cluster``) instead of ``workers`` local servers.
    ``skip_practice=False`` also runs the cells tagged ``practice`` (training runs, plots),
    which never carry points; the default skips them, as they only cost time.
    ``sandbox=False`` (``--no-sandbox``) grades without bubblewrap: only for trusted code.
    ``allow_apis=True`` lifts the assignment's from-scratch policy (grader.curriculum).
    """
    from tqdm.auto import tqdm
    from grader.curriculum import GRADED, forbidden_apis
    from grader.kit import build_kit
    from grader.sandbox.client import JudgeChanged, JudgeStage, SandboxUnavailable, bwrap_path

    t0 = time.perf_counter()
    # on a cluster, each worker's first server start checks for bubblewrap (SandboxUnavailable)
    if sandbox and scheduler is None and bwrap_path() is None:
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
    files = helper_files(course, assignment)
    limits = Limits(cell_timeout=cell_timeout, memory_mb=memory_mb, max_procs=max_procs, disk_mb=disk_mb,
                    isolate=bool(sandbox), student_uid=SANDBOX_UID,
                    forbidden=() if allow_apis else tuple(forbidden_apis(assignment)),
                    # where the judge finds the reference of a graded dependency (dlhw/checks/deps.py)
                    references={ref.split(":")[1]: ref for refs in GRADED.values() for ref in refs})
    # the judge of this batch: a read-only copy, hashed now and verified at every server start
    stage = JudgeStage(lambda dest: build_kit(dest, with_pyproject=False))
    results: Dict[str, StudentResult] = {s: StudentResult(s, assignment) for s in subs}
    bar = tqdm(total=len(subs) * len(sources), desc=f"autograde {assignment}", unit="nb", disable=not progress)
    try:
        if scheduler is not None:
            from grader.cluster import ClusterWorkers
            pool = ClusterWorkers(scheduler, stage, sandbox)
        else:
            pool = GradingWorkers(stage, sandbox, workers).start()
        # the servers warm up while every notebook is assembled; all the jobs go to the pool at once
        with pool:
            plans, futures = {}, []
            for student, paths in subs.items():
                for src in sources:
                    asm, job = assemble_job(course, assignment, student, src, paths, secret, limits, files,
                                            skip_practice)
                    plans[job.key] = asm
                    futures.append(pool.submit(job))
            try:
                for res in pool.results(futures):
                    student, name = res.key
                    collect(course, assignment, results[student], name, plans[res.key], res)
                    bar.update(1)
            except (SandboxUnavailable, JudgeChanged) as exc:
                raise SystemExit(f"error: {exc}") from None
    finally:
        bar.close()
        stage.cleanup()
    ordered = [results[s] for s in sorted(results)]
    write_results(Path(results_dir), assignment, ordered)
    if progress:
        print(class_table(ordered))
        print(f"graded {len(ordered)} submission(s) of {assignment} in {time.perf_counter() - t0:.1f} s")
    return ordered


def helper_files(course: Course, assignment: str) -> Dict[str, str]:
    """The helper files every submission gets in its private scratch folder: name -> base64."""
    return {extra.name: base64.b64encode(extra.read_bytes()).decode("ascii")
            for extra in sorted((course.source / assignment).iterdir())
            if extra.is_file() and extra.suffix != ".ipynb" and not extra.name.startswith(".")}


def assemble_job(course: Course, assignment: str, student: str, src: Path, paths: List[Path], secret: str,
                 limits: Limits, files: Dict[str, str], skip_practice: bool = True):
    """The notebook ``src`` of ``student`` to grade (an ``Assembled``) and its :class:`Job`."""
    source_nb = nbformat.read(src, as_version=4)
    release_nb = nbformat.read(course.release / assignment / src.name, as_version=4)
    asm = assemble(source_nb, release_nb, paths, src.stem, skip_practice=skip_practice)
    seed = hashlib.sha256(f"{secret}|{assignment}|{student}|{src.stem}".encode()).hexdigest()
    cells = [CellJob(asm.notebook.cells[i].source, asm.expected_calls.get(i)) for i in asm.run]
    return asm, Job(cells, seed, limits, files, key=(student, src.stem))


def collect(course: Course, assignment: str, sr: StudentResult, name: str, asm: Assembled,
            res: JobResult) -> None:
    """Score, render and record one notebook's result (the instructor's process only)."""
    scores = score_cells(asm, res)
    render_outputs(asm, res, scores)
    sr.tests.extend(s.test_result() for s in scores)
    sr.notes.extend(asm.notes)
    if res.crashed:
        sr.notes.append(res.crashed)
    sr.notes.extend(_status_notes(asm, res))
    sr.seconds += res.seconds
    record(course, assignment, sr.student, name, asm.notebook)


def write_results(results_dir: Path, assignment: str, results: List[StudentResult]) -> None:
    """One Gradescope-style JSON per student: RESULTS/<student>/<assignment>.json."""
    for sr in results:
        d = results_dir / sr.student
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{assignment}.json").write_text(json.dumps(sr.gradescope(), indent=2))


def _status_notes(asm: Assembled, res: JobResult) -> List[str]:
    notes = []
    for idx, r in zip(asm.run, res.cells):
        cell = asm.notebook.cells[idx]
        gid = nbgrader_meta(cell).get("grade_id", f"cell {idx}")
        if r.status in (Status.TIMEOUT, Status.DIED, Status.PROTOCOL):
            notes.append(f"{gid}: {r.message or r.status.value}")
        elif r.error and not is_test_cell(cell):
            notes.append(f"{gid}: {r.error.ename}: {r.error.evalue[:200]}")
    return notes


def class_table(results: List[StudentResult]) -> str:
    w = max([len("student")] + [len(r.student) for r in results])
    lines = [f"{'student':<{w}}  {'score':>7}  {'max':>5}  notes", "-" * (w + 30)]
    for r in results:
        note = "; ".join(r.notes)[:90]
        lines.append(f"{r.student:<{w}}  {r.score:7.1f}  {r.max_score:5.0f}  {note}")
    return "\n".join(lines)
