"""dlhw autograde against plain, sequential ``nbgrader autograde`` on the same submissions.

A class of N students of assignment 02 (perfect, partly right from grader.mutants, empty) is
graded three ways, side by side in one run:

* ``nbgrader autograde`` as an instructor runs it: one fresh kernel per notebook, in turn;
* ``dlhw autograde`` as it runs by default (all cores, warm forked workers, practice cells
  such as training runs skipped since they carry no points);
* ``dlhw autograde`` made to run every cell like nbgrader does (``skip_practice=False``), to
  show what the warm workers alone buy.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ASSIGNMENT = "02_mlp_backprop"


def make_class(course, subs: Path, n: int) -> None:
    from grader.mutants import load, student_answers
    from grader.simulate import make_submission, solution_answers, write_submission
    nb = course.source_notebooks(ASSIGNMENT)[0].stem
    sol = solution_answers(course, ASSIGNMENT, nb)
    wrong, right = load(ASSIGNMENT)
    variants = [sol, None] + [student_answers(sol, m) for m in wrong + right]
    for i in range(n):
        write_submission(subs, f"s{i:03d}", ASSIGNMENT, nb, make_submission(course, ASSIGNMENT, nb, variants[i % len(variants)]))


def run_nbgrader(root: Path, subs: Path) -> float:
    from grader.course import Course
    course = Course(root=root)
    course.write_config()
    shutil.copytree(subs, root / "submitted")
    course.ensure_released(ASSIGNMENT)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, "--force"],
                          cwd=root, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError("nbgrader autograde failed:\n" + proc.stderr[-3000:])
    return elapsed


def main(n: int = 16, workers=None) -> dict:
    from grader.autograde import autograde
    from grader.course import Course
    tmp = Path(tempfile.mkdtemp(prefix="dlhw-bench-"))
    try:
        seed_course = Course(root=tmp / "seed")
        seed_course.ensure_released(ASSIGNMENT)
        subs = tmp / "subs"
        make_class(seed_course, subs, n)
        times = {}
        for label, skip in (("dlhw", True), ("dlhw_all_cells", False)):
            c = Course(root=tmp / label)
            c.ensure_released(ASSIGNMENT)
            t = time.perf_counter()
            autograde(c, ASSIGNMENT, subs, tmp / f"res-{label}", workers=workers, progress=False, skip_practice=skip)
            times[label] = time.perf_counter() - t
        times["nbgrader"] = run_nbgrader(tmp / "nbgrader", subs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nautograde {n} submissions of {ASSIGNMENT} (wall time, same submissions, one run)")
    print(f"  nbgrader autograde (sequential)      {times['nbgrader']:7.1f} s")
    print(f"  dlhw autograde (default)             {times['dlhw']:7.1f} s   ratio {times['dlhw'] / times['nbgrader']:.2f}"
          f"  (goal <= 0.50)")
    print(f"  dlhw autograde (every cell, like nb) {times['dlhw_all_cells']:7.1f} s   ratio "
          f"{times['dlhw_all_cells'] / times['nbgrader']:.2f}")
    return times


def cases():
    return []


if __name__ == "__main__":
    main()
