"""Feedback and export on nbgrader's own machinery.

``feedback`` runs nbgrader's generate_feedback, configured (see ``grader.course``) with
``ClearHiddenTests`` so the HTML shows hidden tests' verdicts and messages but never their
code. ``export`` writes nbgrader's CSV export and, optionally, a Canvas gradebook import
(``grader.lms``) and copies of the Gradescope-style results written by autograde.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from grader.course import Course


def feedback(course: Course, assignment: str, quiet: bool = False) -> Path:
    course.write_config()
    result = course.api().generate_feedback(assignment, student_id=None, force=True)
    if not result["success"]:
        raise SystemExit(f"error: nbgrader generate_feedback failed:\n{result.get('log', '')}\n{result.get('error', '')}")
    out = course.feedback_dir()
    if not quiet:
        n = len(list(out.glob(f"*/{assignment}/*.html")))
        print(f"wrote {n} feedback file(s) under {out}/<student>/{assignment}/")
    return out


def export(course: Course, csv: Path, assignment: Optional[str] = None, gradescope: Optional[Path] = None,
           results: Optional[Path] = None, quiet: bool = False, canvas: Optional[Path] = None,
           canvas_roster: Optional[Path] = None) -> Path:
    from nbgrader.plugins.export import CsvExportPlugin
    cfg = course.config()
    plugin = CsvExportPlugin(config=cfg)
    plugin.to = str(csv)
    if assignment:
        plugin.assignment = [assignment]
    with course.gradebook() as gb:
        plugin.export(gb)
    if canvas:
        from grader.lms import export_canvas
        export_canvas(course, canvas, [assignment] if assignment else None, canvas_roster, quiet=quiet)
    elif canvas_roster:
        raise SystemExit("error: --canvas-roster needs --canvas (the file to write)")
    if gradescope:
        if results is None:
            raise SystemExit("error: --gradescope needs --results (the folder autograde wrote)")
        for path in Path(results).glob("*/*.json"):
            if assignment and path.stem != assignment:
                continue
            dest = Path(gradescope) / path.parent.name / path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest)
    if not quiet:
        print(f"wrote grades to {csv}" + (f" and Gradescope results under {gradescope}" if gradescope else ""))
    return Path(csv)
