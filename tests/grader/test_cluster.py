"""Grading on a Dask cluster (issue 15.1) gives the grades a local run gives, and a worker
killed during the batch loses no result, counts none twice and leaves no staged judge behind.

One two-worker LocalCluster serves both tests (the second kills one of its workers last); its
workers' temporary folder is the test's own, so that what a batch leaves there can be seen."""
from __future__ import annotations

import json
import os
import signal
import threading
import tempfile
import time
from pathlib import Path

import pytest

from grader.autograde import autograde
from grader.course import Course
from grader.mutants import load, student_answers
from grader.sandbox.client import bwrap_path
from grader.simulate import make_submission, solution_answers, write_submission
from tests.grader.conftest import notebook_name

distributed = pytest.importorskip("distributed")
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cluster"),
              pytest.mark.skipif(bwrap_path() is None, reason="needs bubblewrap: run .ci/setup")]
A = "02_mlp_backprop"


def _class(root: Path):
    """perfect, empty, a wrong and a right mutant of A."""
    course = Course(root=root / "course")
    nbname = notebook_name(course, A)
    subs = root / "submitted"
    sol = solution_answers(course, A, nbname)
    wrong, right = load(A)
    answers = {"perfect": sol, "empty": None, "right00": student_answers(sol, right[0])}
    answers["wrong00"] = student_answers(sol, wrong[0])
    for student, ans in answers.items():
        write_submission(subs, student, A, nbname, make_submission(course, A, nbname, ans))
    return course, subs


def _grades(results: Path) -> dict:
    out = {}
    for p in sorted(results.glob(f"*/{A}.json")):
        r = json.loads(p.read_text())
        out[p.parent.name] = (r["score"], r["max_score"], [(t["name"], t["score"]) for t in r["tests"]])
    return out


def _gradebook_submissions(course: Course) -> list:
    with course.gradebook() as gb:
        return sorted(s.student.id for s in gb.assignment_submissions(A))


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    course, subs = _class(root)
    autograde(course, A, subs, root / "results", workers=2, progress=False, cell_timeout=20)
    grades = _grades(root / "results")
    assert len(grades) == 4 and grades["perfect"][0] == grades["perfect"][1] > 0 and grades["empty"][0] == 0
    assert grades["wrong00"][0] < grades["perfect"][0] == grades["right00"][0]
    return grades


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(client, the workers' temporary folder): a cluster of two single-threaded worker processes."""
    workers_tmp = tmp_path_factory.mktemp("workers-tmp")
    tempfile.gettempdir()                               # this process's stays what it was
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(workers_tmp))          # read by the worker processes as they start
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=0,
                                      dashboard_address=None) as lc, distributed.Client(lc) as client:
            yield client, workers_tmp


def _staged(workers_tmp: Path) -> list:
    return sorted(p.name for p in workers_tmp.glob("dlhw-judge-*"))


def test_a_cluster_grades_as_a_local_run_does(tmp_path, local, cluster):
    client, workers_tmp = cluster
    course, subs = _class(tmp_path)
    autograde(course, A, subs, tmp_path / "results", progress=False, cell_timeout=20, scheduler=client)
    # the batch's plugin and its staged judges are gone from the workers with the batch
    assert all("dlhw-grading" not in p for p in client.run(lambda dask_worker: list(dask_worker.plugins)).values())
    assert _staged(workers_tmp) == []
    assert _grades(tmp_path / "results") == local
    assert _gradebook_submissions(course) == sorted(local)


def test_a_worker_killed_during_the_batch_loses_no_result(tmp_path, local, cluster):
    client, workers_tmp = cluster
    course, subs = _class(tmp_path)
    killed = {}
    pids = client.run(os.getpid)

    def kill_a_busy_worker():
        # once the first notebook is recorded, the other three are queued or running
        give_up = time.monotonic() + 600
        while not list(course.root.glob(f"autograded/*/{A}/*.ipynb")) and time.monotonic() < give_up:
            time.sleep(0.05)
        busy = {w: ks for w, ks in client.processing().items() if ks and w in pids}
        victim = next(iter(busy), next(iter(pids)))
        os.kill(pids[victim], signal.SIGKILL)
        killed.update(worker=victim, running=list(busy.get(victim, [])), staged=_staged(workers_tmp))
    threading.Thread(target=kill_a_busy_worker, daemon=True).start()
    autograde(course, A, subs, tmp_path / "results", progress=False, cell_timeout=20, scheduler=client)
    assert killed["running"], killed        # it died grading a notebook
    assert len(killed["staged"]) >= 2, killed  # each worker had a judge staged, the victim's left there
    assert _staged(workers_tmp) == []          # and which the batch's end removed
    assert len(list(course.root.glob(f"autograded/*/{A}/*.ipynb"))) == 4
    assert _grades(tmp_path / "results") == local
    assert _gradebook_submissions(course) == sorted(local)
