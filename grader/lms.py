"""Grades for a learning management system: a Canvas gradebook import CSV.

Canvas imports grades (Grades > Import) from a CSV laid out like its own gradebook export:

    Student,ID,SIS User ID,SIS Login ID,Section,01_linear_models,02_mlp_backprop
    Points Possible,,,,,100,100
    "Doe, Jane",,,jdoe,,87.5,100

one row per student, the identity columns first (Canvas finds the student by ID, SIS User ID
or SIS Login ID), then one column per assignment named "Name (id)" for an assignment Canvas
has (a name without an id makes a new assignment on import), and a "Points Possible" row
under the header. A blank score changes nothing in Canvas: a student with no submission of an
assignment gets a blank, not a 0.

Without a roster, identities come from nbgrader's gradebook: Student is "Last, First" (the
nbgrader id where the gradebook has no name), ID is the student's ``lms_user_id`` where
nbgrader has one, and SIS Login ID is the nbgrader id. With ``roster`` (a CSV exported from
the Canvas gradebook, Grades > Export), each nbgrader student is matched to the roster's row
whose SIS Login ID, SIS User ID or ID equals their nbgrader id (or whose ID equals their
``lms_user_id``), and that row's identity columns are copied as they are; an assignment
column of the roster whose name, before " (id)", is the nbgrader assignment's name is reused,
so the import updates that assignment instead of making a new one.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from grader.course import Course

IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
POINTS_ROW = "Points Possible"
_COLUMN_ID = re.compile(r"^(.*?)\s*\((\d+)\)\s*$")


def _score(x: Optional[float]) -> str:
    return "" if x is None else f"{x:.6g}"


def read_roster(path: Path) -> Tuple[List[dict], Dict[str, str]]:
    """(student rows, {assignment name: its column header}) of a Canvas gradebook export.

    Canvas puts "Points Possible" (and, in some exports, a row of muted/read-only markers
    whose Student is blank) under the header; those are not students.
    """
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or any(c not in rows[0] for c in ("Student", "ID")):
        raise SystemExit(f"error: --canvas-roster {path} is not a Canvas gradebook export "
                         f"(it needs the columns {', '.join(IDENTITY)})")
    students = [r for r in rows if (r.get("Student") or "").strip() and r["Student"].strip() != POINTS_ROW
                and not (r["Student"].strip() == "Student, Test")]   # Canvas's test student
    columns = {}
    for header in rows[0].keys():
        m = _COLUMN_ID.match(header or "")
        if m and header not in IDENTITY:
            columns.setdefault(m.group(1), header)
    return students, columns


def canvas_rows(course: Course, assignments: Optional[List[str]] = None, roster: Optional[Path] = None):
    """(header, rows, warnings) of the Canvas import of ``course``'s gradebook; see the module docstring."""
    from nbgrader.api import MissingEntry
    roster_rows, roster_columns = read_roster(roster) if roster else ([], {})
    warnings = []
    with course.gradebook() as gb:
        names = assignments or sorted(a.name for a in gb.assignments)
        possible, scores, people = {}, {}, []
        for name in names:
            try:
                possible[name] = gb.find_assignment(name).max_score
            except MissingEntry:
                raise SystemExit(f"error: the gradebook of {course.root} has no assignment {name!r}") from None
        for st in sorted(gb.students, key=lambda s: s.id):
            people.append((st.id, st.first_name, st.last_name, getattr(st, "lms_user_id", None)))
            for name in names:
                try:
                    scores[(st.id, name)] = gb.find_submission(name, st.id).score
                except MissingEntry:
                    scores[(st.id, name)] = None
    header = list(IDENTITY) + [roster_columns.get(n, n) for n in names]
    rows = [[POINTS_ROW, "", "", "", ""] + [_score(possible[n]) for n in names]]
    for sid, first, last, lms_id in people:
        if roster:
            match = next((r for r in roster_rows
                          if sid in (r.get("SIS Login ID"), r.get("SIS User ID"), r.get("ID"))
                          or (lms_id and str(lms_id) == r.get("ID"))), None)
            if match is None:
                warnings.append(f"{sid}: not in the roster {roster}; left out")
                continue
            ident = [match.get(c, "") or "" for c in IDENTITY]
        else:
            full = ", ".join(p for p in (last, first) if p) or sid
            ident = [full, str(lms_id or ""), "", sid, ""]
        rows.append(ident + [_score(scores[(sid, n)]) for n in names])
    for n in names:
        if roster and n not in roster_columns:
            warnings.append(f"{n}: no column of that name in the roster; Canvas makes a new assignment of it")
    return header, rows, warnings


def export_canvas(course: Course, path: Path, assignments: Optional[List[str]] = None,
                  roster: Optional[Path] = None, quiet: bool = False) -> Path:
    """Write the Canvas gradebook import CSV of ``course`` to ``path``."""
    header, rows, warnings = canvas_rows(course, assignments, roster)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    if not quiet:
        for line in warnings:
            print(f"warning: {line}")
        print(f"wrote the Canvas gradebook import ({len(rows) - 1} student(s)) to {path}")
    return path
