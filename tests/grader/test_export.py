"""``dlhw export --canvas``: the Canvas gradebook import CSV (grader/lms.py) beside nbgrader's CSV.

The gradebook is nbgrader's own: the assignments as nbgrader generates them, submissions added
through its API and a few cells' scores set, so that nbgrader computes every total. The Canvas
file must carry those totals (nbgrader's own CSV export is the reference) and the points
possible, in Canvas's layout.
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pytest

from grader.cli import main
from grader.course import Course
from grader.lms import IDENTITY, POINTS_ROW

pytestmark = pytest.mark.slow
A1, A2 = "01_linear_models", "02_mlp_backprop"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = Course(root=tmp_path_factory.mktemp("export") / "course")
    for a in (A1, A2):
        course.ensure_released(a)
    with warnings.catch_warnings(), course.gradebook() as gb:
        warnings.simplefilter("ignore")   # nbgrader's own ORM use trips SQLAlchemy's autoflush warnings
        gb.update_or_create_student("jdoe", first_name="Jane", last_name="Doe", lms_user_id="4242")
        gb.update_or_create_student("asmith")
        gb.update_or_create_student("nosub", first_name="No", last_name="Submission")
        for student in ("jdoe", "asmith"):
            gb.add_submission(A1, student)
        gb.add_submission(A2, "jdoe")
        # jdoe: two cells of 01 right (10 + 4 points), all of 02 right; asmith: one cell of 01
        for gid, student in (("test_numerical_gradient", "jdoe"), ("test_numerical_gradient_restores_x", "jdoe"),
                             ("test_rel_error", "asmith")):
            g = gb.find_grade(gid, A1, A1, student)
            g.auto_score = g.max_score
        for g in gb.find_submission_notebook(A2, A2, "jdoe").grades:
            g.auto_score = g.max_score
        gb.db.commit()
    return course


def _read(path: Path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_canvas_csv_matches_nbgrader(course, tmp_path):
    assert main(["export", "--course", str(course.root), "--csv", str(tmp_path / "grades.csv"),
                 "--canvas", str(tmp_path / "canvas.csv")]) == 0
    rows = _read(tmp_path / "canvas.csv")
    assert rows[0] == list(IDENTITY) + [A1, A2]
    assert rows[1] == [POINTS_ROW, "", "", "", "", "100", "100"]
    body = {r[3]: r for r in rows[2:]}                      # by SIS Login ID: the nbgrader id
    assert sorted(body) == ["asmith", "jdoe", "nosub"]
    assert body["jdoe"][:5] == ["Doe, Jane", "4242", "", "jdoe", ""]
    assert body["asmith"][:2] == ["asmith", ""]            # no name in the gradebook: the id
    assert body["jdoe"][5:] == ["14", "100"] and body["asmith"][5:] == ["4", ""]
    assert body["nosub"][5:] == ["", ""]                   # no submission: blank, Canvas keeps its grade
    # the same totals as nbgrader's own CSV export
    with open(tmp_path / "grades.csv", newline="") as fh:
        nb = {(r["student_id"], r["assignment"]): float(r["raw_score"]) for r in csv.DictReader(fh)}
    for sid, row in body.items():
        for a, cell in zip((A1, A2), row[5:]):
            if cell:
                assert float(cell) == nb[(sid, a)]


def test_canvas_csv_with_a_roster(course, tmp_path, capsys):
    roster = tmp_path / "export.csv"
    with open(roster, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(IDENTITY) + [f"{A1} (1234)", "Quiz 1 (77)", "Current Score"])
        w.writerow([POINTS_ROW, "", "", "", "", "100", "10", "(read only)"])
        w.writerow(["Doe, Jane", "4242", "S001", "jane.doe", "Section A", "", "9", "90"])
        w.writerow(["Smith, Al", "4343", "asmith", "al.smith", "Section B", "50", "", "50"])
        w.writerow(["Student, Test", "9999", "", "", "", "", "", ""])
    out = tmp_path / "canvas.csv"
    assert main(["export", "--course", str(course.root), "--csv", str(tmp_path / "g.csv"),
                 "--canvas", str(out), "--canvas-roster", str(roster)]) == 0
    rows = _read(out)
    assert rows[0] == list(IDENTITY) + [f"{A1} (1234)", A2]   # 01 updates Canvas's assignment 1234
    assert rows[2:] == [["Smith, Al", "4343", "asmith", "al.smith", "Section B", "4", ""],   # by SIS User ID
                        ["Doe, Jane", "4242", "S001", "jane.doe", "Section A", "14", "100"]]  # by lms_user_id
    said = capsys.readouterr().out
    assert "nosub: not in the roster" in said and f"{A2}: no column of that name" in said


def test_canvas_csv_of_one_assignment(course, tmp_path):
    out = tmp_path / "canvas.csv"
    assert main(["export", A2, "--course", str(course.root), "--csv", str(tmp_path / "g.csv"),
                 "--canvas", str(out)]) == 0
    rows = _read(out)
    assert rows[0][5:] == [A2] and rows[1][5:] == ["100"]


def test_roster_that_is_not_a_canvas_export(course, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,score\nx,1\n")
    with pytest.raises(SystemExit, match="not a Canvas gradebook export"):
        main(["export", "--course", str(course.root), "--csv", str(tmp_path / "g.csv"),
              "--canvas", str(tmp_path / "c.csv"), "--canvas-roster", str(bad)])
