"""The student's ``dlhw`` command (``python -m dlhw ...`` where the script is not on the PATH):

    dlhw check [NOTEBOOK]        run a notebook and report every graded test cell's verdict;
                                 NOTEBOOK: a path from here or a bare name (02_mlp_backprop)

This module ships in the student kit, which has no ``grader``; so dlhw never imports grader.
The instructor commands (build, release, autograde, feedback, export, gradescope, demo) live in
``grader/cli.py``, which builds the same ``dlhw`` parser with this module's ``check`` added to
it; the full package's ``dlhw`` script is ``grader.cli:main`` (``python -m grader`` there),
the kit's is this ``main``.
"""
from __future__ import annotations

import argparse
import sys

# Only to answer `python -m dlhw build` (or a kit's `dlhw build`) with where the command is,
# instead of argparse's "invalid choice"; grader/cli.py defines them (a test keeps both lists equal).
INSTRUCTOR_COMMANDS = ("build", "autograde", "feedback", "export", "gradescope", "demo", "release")


def cmd_check(args) -> int:
    from dlhw.selfgrade import find_notebook, selfgrade
    try:
        path = find_notebook(args.notebook)
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 2
    return selfgrade(path, timeout=args.timeout)


def add_check_command(sub) -> None:
    """Add ``check`` to the subcommands ``sub`` (of ``ArgumentParser.add_subparsers``)."""
    s = sub.add_parser("check", help="run a notebook and report its graded tests (for students)")
    s.add_argument("notebook", nargs="?", default=None,
                   help="a path from here, or a bare name like 02_mlp_backprop (default: the notebook here)")
    s.add_argument("--timeout", type=float, default=120.0)
    s.set_defaults(func=cmd_check)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in INSTRUCTOR_COMMANDS:
        raise SystemExit(f"error: `{argv[0]}` is an instructor command of the full dlhw package: run "
                         f"`dlhw {argv[0]}` or `python -m grader {argv[0]}` in the instructor install "
                         "(pip install -e . in the dlhw repository); the student kit only has `dlhw check`")
    p = argparse.ArgumentParser(prog="dlhw", description="dlhw: check a notebook before submitting it")
    sub = p.add_subparsers(dest="command", required=True)
    add_check_command(sub)
    args = p.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
