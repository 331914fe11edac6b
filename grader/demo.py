"""``dlhw demo``: the whole instructor workflow on a simulated class, from a fresh clone.

It releases the course into a demo course directory (never touching the repository's files),
writes a class of submissions per assignment (a perfect one, the unfilled release, partly right
ones made from ``grader.mutants``, and broken ones: not JSON, a kernel that exits, a cell that
never ends, deleted and edited test cells), autogrades them, prints nbgrader's gradebook, writes
the HTML feedback and exports the grades.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import List, Optional

import nbformat

from grader.course import Course, is_test_cell, nbgrader_meta
from grader.mutants import load, student_answers
from grader.simulate import make_submission, solution_answers, write_submission


def _broken_students(course: Course, subs: Path, assignment: str, nbname: str, sol: dict) -> List[str]:
    made = []
    # not a notebook at all
    write_submission(subs, "broken-json", assignment, nbname, raw='{"cells": [ {"cell_type": "code", ')
    made.append("broken-json")
    # the kernel exits in the first answer: everything after it scores zero
    first = next(iter(sol))
    answers = dict(sol)
    answers[first] = "import os\nos._exit(1)"
    write_submission(subs, "kernel-exits", assignment, nbname, make_submission(course, assignment, nbname, answers))
    made.append("kernel-exits")
    # an answer that never returns: that cell times out, the rest is graded
    answers = dict(sol)
    answers[first] = "while True:\n    pass"
    write_submission(subs, "infinite-loop", assignment, nbname, make_submission(course, assignment, nbname, answers))
    made.append("infinite-loop")
    # all answers right, but test cells deleted and one blanked: they are restored
    nb = make_submission(course, assignment, nbname, sol)
    tests = [c for c in nb.cells if is_test_cell(c)]
    if tests:
        tests[0].source = "pass  # nothing to see here"
        drop = {id(c) for c in tests[1::2]}
        nb.cells = [c for c in nb.cells if id(c) not in drop]
    write_submission(subs, "deleted-tests", assignment, nbname, nb)
    made.append("deleted-tests")
    return made


def simulate_class(course: Course, subs: Path, assignment: str, size: int) -> None:
    nbname = course.source_notebooks(assignment)[0].stem
    sol = solution_answers(course, assignment, nbname)
    wrong, _ = load(assignment)
    write_submission(subs, "perfect", assignment, nbname, make_submission(course, assignment, nbname, sol))
    write_submission(subs, "empty", assignment, nbname, make_submission(course, assignment, nbname))
    n = 2 + len(_broken_students(course, subs, assignment, nbname, sol))
    for i, m in enumerate(wrong[:max(0, size - n)]):
        write_submission(subs, f"partly-right-{i:02d}", assignment, nbname,
                         make_submission(course, assignment, nbname, student_answers(sol, m)))
        n += 1
    i = 0
    while n < size:  # fill the class with careful students
        write_submission(subs, f"student-{i:02d}", assignment, nbname, make_submission(course, assignment, nbname, sol))
        i += 1
        n += 1


def gradebook_table(course: Course, assignments: List[str]) -> str:
    rows = {}
    with course.gradebook() as gb:
        for a in assignments:
            for s in gb.assignment_submissions(a):
                rows.setdefault(s.student.id, {})[a] = s.score
            maxes = {a: gb.find_assignment(a).max_score for a in assignments}
    w = max([7] + [len(s) for s in rows])
    head = f"{'student':<{w}}" + "".join(f"  {a[:2]:>6}" for a in assignments)
    lines = ["nbgrader gradebook (points out of " + ", ".join(f"{a[:2]}: {maxes[a]:g}" for a in assignments) + ")",
             head, "-" * len(head)]
    for s in sorted(rows):
        lines.append(f"{s:<{w}}" + "".join(f"  {rows[s].get(a, float('nan')):6.1f}" for a in assignments))
    return "\n".join(lines)


def demo(root: Path, students: int = 16, workers: Optional[int] = None,
         assignments: Optional[List[str]] = None) -> int:
    from grader.autograde import autograde
    from grader.feedback import export, feedback

    t0 = time.perf_counter()
    root = Path(root).resolve()
    if root.exists():
        shutil.rmtree(root)
    course = Course(root=root, release=root / "release")
    course.write_config()
    assignments = assignments or course.assignments()
    print(f"dlhw demo: course in {root}; assignments: {', '.join(assignments)}")
    for a in assignments:
        course.ensure_released(a)
        subs = root / "submitted"
        simulate_class(course, subs, a, students)
        autograde(course, a, subs, root / "results", workers=workers, cell_timeout=10)
        feedback(course, a)
    export(course, root / "grades.csv")
    print()
    print(gradebook_table(course, assignments))
    print(f"\nfeedback: {course.feedback_dir()}/<student>/<assignment>/*.html")
    print(f"results (Gradescope format): {root / 'results'}/<student>/<assignment>.json")
    print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    return 0
