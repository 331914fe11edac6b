"""Fixtures that grade simulated classes through the real pipeline (nbgrader + sandbox)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.autograde import autograde
from grader.course import Course
from grader.mutants import load, student_answers
from grader.simulate import make_submission, solution_answers, write_submission

ASSIGNMENTS = Course(root=Path("/nonexistent")).assignments()
_graded = {}


def notebook_name(course: Course, assignment: str) -> str:
    return course.source_notebooks(assignment)[0].stem


def grade_class(tmp_root: Path, assignment: str, extra=None, workers: int = 2, cell_timeout: float = 20,
                mutants: bool = True):
    """Grade perfect, empty, every WRONG and RIGHT mutant (and ``extra`` students) of ``assignment``.

    Returns (course, {student: results json}, {student: mutant}).
    """
    course = Course(root=tmp_root / "course")
    nbname = notebook_name(course, assignment)
    subs = tmp_root / "submitted"
    sol = solution_answers(course, assignment, nbname)
    wrong, right = load(assignment) if mutants else ([], [])
    who = {}
    write_submission(subs, "perfect", assignment, nbname, make_submission(course, assignment, nbname, sol))
    write_submission(subs, "empty", assignment, nbname, make_submission(course, assignment, nbname))
    for kind, mutants in (("wrong", wrong), ("right", right)):
        for i, m in enumerate(mutants):
            student = f"{kind}{i:02d}"
            who[student] = m
            write_submission(subs, student, assignment, nbname,
                             make_submission(course, assignment, nbname, student_answers(sol, m)))
    for student, make in (extra or {}).items():
        make(course, subs, student, assignment, nbname, sol)
    results = tmp_root / "results"
    autograde(course, assignment, subs, results, workers=workers, progress=False, cell_timeout=cell_timeout)
    out = {p.parent.name: json.loads(p.read_text()) for p in results.glob(f"*/{assignment}.json")}
    return course, out, who


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory):
    def get(assignment):
        if assignment not in _graded:
            _graded[assignment] = grade_class(tmp_path_factory.mktemp(f"class{assignment[:2]}"), assignment)
        return _graded[assignment]
    return get
