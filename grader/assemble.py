"""Rebuild the notebook to grade from the source notebook and what a student handed in.

nbgrader grades the student's file as it is and restores test cells it finds; cells a
student deleted, duplicated or moved to a renamed notebook get lost or counted twice. Here the
graded notebook is rebuilt from the source instead:

* the instructor's cells (test cells with their hidden tests, setup code, text) come from the
  source, always: an edited, blanked or deleted test cell is restored, and the note says so;
  the checks a test cell runs, its code and its points come from the source's metadata
  (``dlhw.test`` and nbgrader's), never from the submitted copy's, which a student can edit;
* each answer cell comes from the student's submission, found by its nbgrader ``grade_id`` in
  any notebook of the student's folder (a renamed notebook is found too); the first copy
  counts and duplicates are noted; a missing answer is graded as the unfilled stub;
* cells the student added keep their place after the instructor cell they followed;
* a file that is not valid notebook JSON is reported by name and line and graded as blank.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import nbformat

from grader.authoring import graded_calls, graded_source
from grader.course import PRACTICE_TAG, is_answer_cell, is_test_cell, nbgrader_meta, read_notebook


def check_calls(cell) -> List[Tuple[str, bool]]:
    """The ``check("name", ..., hidden=...)`` calls of a SOURCE notebook's test cell, in order:
    what its judge serves. They come from the cell's ``dlhw.test`` metadata, from which
    ``dlhw build`` writes the cell's code (grader.authoring); never from a submitted copy."""
    return graded_calls(cell)


@dataclass
class Assembled:
    notebook: "nbformat.NotebookNode"           # the notebook that is graded (no outputs yet)
    run: List[int]                              # indices of the code cells to execute
    expected_calls: Dict[int, List[Tuple[str, bool]]]   # test cell index -> its check calls (name, hidden)
    notes: List[str] = field(default_factory=list)

    @property
    def expected_checks(self) -> Dict[int, List[str]]:
        """test cell index -> the names of the checks it must run"""
        return {idx: [name for name, _ in calls] for idx, calls in self.expected_calls.items()}


def _grade_id(cell) -> Optional[str]:
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def _student_cells(paths: List[Path], source_name: str) -> Tuple[list, List[str]]:
    """The submitted notebooks' cells: the one named like the source first, then the others."""
    notes, cells = [], []
    ordered = sorted(paths, key=lambda p: (p.stem != source_name, p.name))
    for path in ordered:
        nb, err = read_notebook(path)
        if err:
            notes.append(err + ": graded as if its answers were left blank")
            continue
        if path.stem != source_name:
            notes.append(f"answers were also looked for in {path.name} (not named {source_name}.ipynb)")
        cells.extend(nb.cells)
    return cells, notes


def assemble(source_nb, release_nb, submitted: List[Path], name: str, skip_practice: bool = True) -> Assembled:
    """The notebook to grade: ``source_nb`` (named ``name``), the student's answers and extra cells."""
    student_cells, notes = _student_cells(submitted, name)
    if not submitted:
        notes.append("no notebook was submitted: every answer is graded as blank")

    source_ids = {_grade_id(c) for c in source_nb.cells if _grade_id(c)}
    stubs = {_grade_id(c): c.source for c in release_nb.cells if _grade_id(c)}
    answers: Dict[str, str] = {}
    seen_tests: Dict[str, tuple] = {}   # grade_id -> (the student's code, dlhw metadata)
    extras: Dict[Optional[str], list] = {}
    anchor = None
    for cell in student_cells:
        gid = _grade_id(cell)
        if gid in source_ids:
            anchor = gid
            if is_answer_cell(cell) and cell.cell_type == "code":
                if gid in answers:
                    if cell.source != answers[gid]:
                        notes.append(f"answer cell {gid} appears twice; the first copy was graded")
                else:
                    answers[gid] = cell.source
            elif gid not in seen_tests:
                seen_tests[gid] = (cell.source, cell.get("metadata", {}).get("dlhw"))
        elif cell.get("cell_type") == "code" and cell.source.strip():
            extras.setdefault(anchor, []).append(cell.source)

    out = copy.deepcopy(source_nb)
    cells, run, calls = [], [], {}

    def add_extras(key):
        for src in extras.pop(key, []):
            c = nbformat.v4.new_code_cell(src)
            c.metadata["dlhw"] = {"student_added": True}
            run.append(len(cells))
            cells.append(c)

    add_extras(None)
    for cell in out.cells:
        gid = _grade_id(cell)
        cell.outputs = [] if cell.cell_type == "code" else cell.get("outputs", None)
        if cell.cell_type == "code":
            cell.execution_count = None
        if cell.cell_type != "code":
            if "outputs" in cell:
                del cell["outputs"]
            cells.append(cell)
            add_extras(gid)
            continue
        if is_answer_cell(cell):
            if gid in answers:
                cell.source = answers[gid]
            else:
                cell.source = stubs.get(gid, "raise NotImplementedError()")
                if student_cells:
                    notes.append(f"answer cell {gid} was not found in the submission: graded as unanswered")
        elif is_test_cell(cell):
            # `cell` is the source's: its code is regenerated from the source's metadata, so
            # that the code run and the calls the judge expects cannot disagree
            cell.source = graded_source(cell)
            calls[len(cells)] = check_calls(cell)
            if student_cells:
                if gid not in seen_tests:
                    notes.append(f"test cell {gid} was deleted: restored from the source")
                elif (_strip_hidden(seen_tests[gid][0]).strip() != _strip_hidden(cell.source).strip()
                      or seen_tests[gid][1] != cell.metadata.get("dlhw")):
                    notes.append(f"test cell {gid} was edited: restored from the source")
        tags = cell.metadata.get("tags", [])
        if not skip_practice or PRACTICE_TAG not in tags or is_answer_cell(cell) or is_test_cell(cell):
            run.append(len(cells))
        cells.append(cell)
        add_extras(gid)
    for key in list(extras):
        add_extras(key)
    out.cells = cells
    return Assembled(out, run, calls, notes=notes)


def _strip_hidden(src: str) -> str:
    return re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", "", src, flags=re.S)
