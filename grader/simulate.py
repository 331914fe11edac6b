"""Simulated students: submissions made from the release with chosen answers filled in.

The demo and the tests of the tests use these: a perfect student (every answer from the
solutions), an empty one (the release as handed out), partly right ones (some answers replaced
by realistic wrong implementations from ``grader.mutants``) and broken ones.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Dict, Optional

import nbformat

from grader.course import Course, is_answer_cell, nbgrader_meta


def solution_answers(course: Course, assignment: str, notebook: str) -> Dict[str, str]:
    nb = nbformat.read(course.source / assignment / f"{notebook}.ipynb", as_version=4)
    return {nbgrader_meta(c)["grade_id"]: c.source for c in nb.cells if is_answer_cell(c)}


def make_submission(course: Course, assignment: str, notebook: str,
                    answers: Optional[Dict[str, str]] = None):
    """The release notebook with ``answers`` ({grade_id: code}) written into its answer cells."""
    nb = nbformat.read(course.release / assignment / f"{notebook}.ipynb", as_version=4)
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if is_answer_cell(cell) and answers and gid in answers:
            cell.source = answers[gid]
    return nb


def write_submission(root: Path, student: str, assignment: str, notebook: str, nb=None, raw: str = None) -> Path:
    folder = Path(root) / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{notebook}.ipynb"
    if raw is not None:
        path.write_text(raw)
    else:
        nbformat.write(nb, path)
    return path
