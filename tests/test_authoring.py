"""Graded test cells generated from their metadata (grader/authoring.py), and the assembler taking a
cell's checks from the SOURCE notebook's metadata, never from the student's copy."""
from __future__ import annotations

import copy

import nbformat
import pytest

from grader.assemble import assemble
from grader.authoring import GradedCellError, graded_calls, graded_cell, graded_source
from grader.course import REPO, is_test_cell, nbgrader_meta

NAME = "02_mlp_backprop"


def test_a_generated_test_cell_runs_its_check_visibly_then_hidden():
    cell = graded_cell("affine_forward", 4, "affine_forward", "affine_forward against PyTorch")
    assert cell.source == ('# Graded test (4 points): affine_forward against PyTorch\n'
                           'check("affine_forward", affine_forward)\n'
                           '### BEGIN HIDDEN TESTS\n'
                           'check("affine_forward", affine_forward, hidden=True)\n'
                           '### END HIDDEN TESTS')
    assert graded_calls(cell) == [("affine_forward", False), ("affine_forward", True)]
    assert nbgrader_meta(cell) == {"grade": True, "solution": False, "locked": True, "points": 4,
                                   "grade_id": "test_affine_forward", "schema_version": 3}
    # the points are nbgrader's: change them there and the cell says so
    cell.metadata["nbgrader"]["points"] = 2.5
    assert graded_source(cell).startswith("# Graded test (2.5 points): ")


def test_every_graded_test_cell_of_the_solutions_is_generated():
    n = 0
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if is_test_cell(cell):
                assert cell.source == graded_source(cell), f"{path.name}: {nbgrader_meta(cell)['grade_id']}"
                n += 1
    assert n == 168                          # 150 in 01-09, 18 in 12


@pytest.mark.parametrize("meta, message", [
    ({}, "has no \"dlhw\": {\"test\""),
    ({"dlhw": {"test": {"check": "affine forward", "args": "f"}}}, "dlhw.test.check must be a check's dotted name"),
    ({"dlhw": {"test": {"check": "affine_forward", "args": ""}}}, "dlhw.test.args must be the check's arguments"),
    ({"dlhw": {"test": {"check": "affine_forward", "args": "f", "title": "a\nb"}}}, "title must be one line"),
    ({"dlhw": {"test": {"check": "affine_forward", "args": "f"}}, "points": 0}, "nbgrader.points must be a positive"),
])
def test_malformed_test_metadata_is_named(meta, message):
    cell = nbformat.v4.new_code_cell("")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "test_x", "points": meta.pop("points", 1)}
    cell.metadata.update(meta)
    with pytest.raises(GradedCellError, match="test cell test_x") as err:
        graded_source(cell)
    assert message in str(err.value)


def _notebooks():
    source = nbformat.read(REPO / "solutions" / NAME / f"{NAME}.ipynb", as_version=4)
    release = nbformat.read(REPO / "notebooks" / NAME / f"{NAME}.ipynb", as_version=4)
    return source, release


def _expected(source):
    return [graded_calls(c) for c in source.cells if is_test_cell(c)]


def test_an_unedited_release_is_graded_without_notes(tmp_path):
    source, release = _notebooks()
    (tmp_path / f"{NAME}.ipynb").write_text(nbformat.writes(release))
    asm = assemble(source, release, [tmp_path / f"{NAME}.ipynb"], NAME)
    assert not [n for n in asm.notes if "test cell" in n], asm.notes
    assert list(asm.expected_calls.values()) == _expected(source)


def test_a_students_edited_test_metadata_changes_nothing(tmp_path):
    """A student who points a test cell's metadata (and code) at an easier check, or deletes the
    metadata, gets the source's checks: the assembler never reads the submitted metadata."""
    source, release = _notebooks()
    student = copy.deepcopy(release)
    tests = [c for c in student.cells if is_test_cell(c)]
    tests[0].metadata["dlhw"]["test"]["check"] = "relu_forward"
    tests[0].source = tests[0].source.replace("affine_forward", "relu_forward")
    tests[1].metadata["dlhw"]["test"] = {"check": "relu_forward", "args": "relu_forward", "title": "easy"}
    del tests[2].metadata["dlhw"]
    tests[3].metadata["nbgrader"]["points"] = 1000
    (tmp_path / f"{NAME}.ipynb").write_text(nbformat.writes(student))
    asm = assemble(source, release, [tmp_path / f"{NAME}.ipynb"], NAME)
    assert list(asm.expected_calls.values()) == _expected(source)
    graded = [asm.notebook.cells[i] for i in asm.expected_calls]
    assert [c.source for c in graded] == [c.source for c in source.cells if is_test_cell(c)]
    assert [nbgrader_meta(c)["points"] for c in graded] == [nbgrader_meta(c)["points"] for c in source.cells
                                                             if is_test_cell(c)]
    edited = {n.split()[2] for n in asm.notes if "was edited: restored from the source" in n}
    assert edited == {nbgrader_meta(c)["grade_id"] for c in tests[:3]}, asm.notes
