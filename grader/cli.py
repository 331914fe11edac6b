"""The ``dlhw`` command of the full package (the instructor install, ``pip install -e .``):

Instructors and TAs:
    dlhw build                   regenerate answer cells, blocks, the release and the kit
    dlhw autograde A --submitted DIR --results OUT [--workers N] [--course DIR]
                  [--timeout S] [--memory-mb M] [--max-procs P] [--disk-mb D] [--allow-apis]
                  [--no-sandbox]       (refuses to run without bubblewrap unless --no-sandbox)
                  [--scheduler ADDRESS]  (grade on a Dask cluster's workers)
    dlhw feedback A [--course DIR]      HTML feedback per student (hidden tests' code hidden)
    dlhw export [A] --csv FILE [--canvas FILE [--canvas-roster FILE]] [--gradescope DIR] [--course DIR]
    dlhw gradescope A --out ZIP [--course DIR] [--timeout S] [--memory-mb M] [--visibility V]
                  [--torch REQ] [--torch-index URL]
                                 Gradescope autograder package of A (grader/gradescope.py)
    dlhw demo [--dir DIR]        build, simulate a class, autograde it, gradebook and feedback
    dlhw release A --to DIR      what students of A receive: A, the kit, the install files

Students (also in the kit, from ``dlhw/cli.py``):
    dlhw check [NOTEBOOK]        run a notebook and report every graded test cell's verdict

The commands live here, not in ``dlhw``, because the student kit ships ``dlhw`` without
``grader``: grader depends on dlhw, never the other way round. ``python -m grader`` is this
command where the script is not on the PATH. The grader modules are imported by the command
that needs them, so that ``dlhw check`` does not load nbgrader's gradebook.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlhw.cli import add_check_command


def _course(args):
    from grader.course import Course
    return Course(root=Path(args.course))


def cmd_build(args) -> int:
    from grader.build import build, check_stale
    if args.check:
        stale = check_stale()
        for path, why in stale.items():
            print(f"{path}: {why}")
        return 1 if stale else 0
    build(only=args.only)
    return 0


def cmd_autograde(args) -> int:
    from grader.autograde import autograde
    results = autograde(_course(args), args.assignment, Path(args.submitted), Path(args.results),
                        workers=args.workers, cell_timeout=args.timeout, memory_mb=args.memory_mb,
                        max_procs=args.max_procs, disk_mb=args.disk_mb, sandbox=not args.no_sandbox,
                        allow_apis=args.allow_apis, scheduler=args.scheduler)
    return 0 if results else 1


def cmd_feedback(args) -> int:
    from grader.feedback import feedback
    feedback(_course(args), args.assignment)
    return 0


def cmd_export(args) -> int:
    from grader.feedback import export
    export(_course(args), Path(args.csv), args.assignment,
           Path(args.gradescope) if args.gradescope else None, Path(args.results) if args.results else None,
           canvas=Path(args.canvas) if args.canvas else None,
           canvas_roster=Path(args.canvas_roster) if args.canvas_roster else None)
    return 0


def cmd_gradescope(args) -> int:
    from grader.gradescope import build_package
    out = build_package(args.assignment, Path(args.out), _course(args), cell_timeout=args.timeout,
                        memory_mb=args.memory_mb, visibility=args.visibility, torch=args.torch,
                        torch_index=args.torch_index)
    print(f"wrote {out}: upload it as the assignment's autograder (Gradescope: Configure Autograder, zip file)")
    return 0


def cmd_demo(args) -> int:
    from grader.demo import demo
    return demo(Path(args.dir), students=args.students, workers=args.workers)


def cmd_release(args) -> int:
    from grader.release import release, resolve_assignment
    assignment = resolve_assignment(args.assignment)
    written = release(assignment, Path(args.to))
    print(f"released {len(written)} files to {args.to}: notebooks/{assignment}/, notebooks/_kit/ "
          "(with install.sh) and environment.yml.\nHand out one assignment at a time, after the deadline "
          "of the one before: its blocks.py holds earlier assignments' reference code.")
    return 0


def add_instructor_commands(sub) -> None:
    """Add build, autograde, feedback, export, gradescope, demo and release to the subcommands ``sub``."""
    s = sub.add_parser("build", help="regenerate solutions' answer cells, blocks, notebooks/ and the kit")
    s.add_argument("--check", action="store_true", help="only list generated files that are stale")
    s.add_argument("only", nargs="*", help="assignments to build (default: all, and the kit)")
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("autograde", help="grade DIR/<student>/<ASSIGNMENT>/*.ipynb")
    s.add_argument("assignment")
    s.add_argument("--submitted", required=True, help="folder of student folders (nbgrader's layout)")
    s.add_argument("--results", required=True, help="where OUT/<student>/<ASSIGNMENT>.json go")
    s.add_argument("--workers", type=int, default=None, help="parallel workers (default: all cores)")
    s.add_argument("--course", default="course", help="course directory: gradebook, autograded/, feedback/")
    s.add_argument("--timeout", type=float, default=60.0, help="seconds per cell (default 60)")
    s.add_argument("--memory-mb", type=int, default=2048, help="memory cap per submission (default 2048)")
    s.add_argument("--max-procs", type=int, default=64, help="processes per submission (default 64)")
    s.add_argument("--disk-mb", type=int, default=256, help="scratch disk per submission, MB (default 256)")
    s.add_argument("--no-sandbox", action="store_true",
                   help="grade without bubblewrap (trusted code only: autograde refuses to run without it otherwise)")
    s.add_argument("--allow-apis", action="store_true",
                   help="lift the assignment's from-scratch policy (torch, scipy convolutions in graded functions)")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="grade on the workers of this Dask scheduler (tcp://host:8786) instead of local --workers")
    s.set_defaults(func=cmd_autograde)

    s = sub.add_parser("feedback", help="HTML feedback per student under COURSE/feedback")
    s.add_argument("assignment")
    s.add_argument("--course", default="course")
    s.set_defaults(func=cmd_feedback)

    s = sub.add_parser("export", help="grades as CSV (nbgrader's, Canvas's) and Gradescope JSON")
    s.add_argument("assignment", nargs="?", default=None)
    s.add_argument("--csv", default="grades.csv")
    s.add_argument("--canvas", default=None, help="also write a Canvas gradebook import CSV here")
    s.add_argument("--canvas-roster", default=None,
                   help="a Canvas gradebook export: its students' IDs and assignment columns are used")
    s.add_argument("--gradescope", default=None, help="folder for <student>/<assignment>.json copies")
    s.add_argument("--results", default=None, help="the --results folder of autograde (for --gradescope)")
    s.add_argument("--course", default="course")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("gradescope", help="an autograder zip for Gradescope (setup.sh, run_autograder)")
    s.add_argument("assignment", help="02, or 02_mlp_backprop")
    s.add_argument("--out", default="autograder.zip")
    s.add_argument("--course", default="course", help="the course whose grader secret seeds the inputs")
    s.add_argument("--timeout", type=float, default=60.0, help="seconds per cell (default 60)")
    s.add_argument("--memory-mb", type=int, default=2048, help="memory cap per submission (default 2048)")
    s.add_argument("--visibility", default=None,
                   help="top-level visibility of results (hidden, after_due_date, after_published, visible)")
    s.add_argument("--torch", default=None, help="the torch requirement setup.sh installs (default: the kit's)")
    s.add_argument("--torch-index", default=None,
                   help="the extra index of that torch build (default: PyTorch's CPU index; '' for none)")
    s.set_defaults(func=cmd_gradescope)

    s = sub.add_parser("demo", help="build, simulate a class, autograde it, print the gradebook")
    s.add_argument("--dir", default="demo-course")
    s.add_argument("--students", type=int, default=16)
    s.add_argument("--workers", type=int, default=None)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("release", help="write what students of ASSIGNMENT receive to DIR (nothing later)")
    s.add_argument("assignment", help="02, or 02_mlp_backprop")
    s.add_argument("--to", required=True, help="the folder to hand out")
    s.set_defaults(func=cmd_release)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dlhw", description="dlhw: build, check and grade the course")
    sub = p.add_subparsers(dest="command", required=True)
    add_instructor_commands(sub)
    add_check_command(sub)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
