"""``dlhw release A --to DIR``: what the students of assignment A receive, and nothing more.

It writes, laid out as in the repository so that the README's student commands work as they
are:

    DIR/notebooks/A/          A's release (its notebook and blocks.py: reference code of
                              earlier assignments only, whose deadlines have passed)
    DIR/notebooks/_kit/       the student kit (checks, data, models; no solution of any
                              assignment) with its install script, notebooks/_kit/install.sh
    DIR/environment.yml       the same install for conda

Nothing of later assignments: hand out one assignment at a time, each after the deadline of
the one before (its blocks.py holds the earlier assignments' reference code). Releasing into
a DIR that holds earlier releases adds A and refreshes the kit and the install files.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import List

from grader.course import REPO
from grader.curriculum import ASSIGNMENTS

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "build", "*.egg-info")


def resolve_assignment(name: str) -> str:
    """``02``, ``2`` or ``02_mlp_backprop`` -> ``02_mlp_backprop``."""
    if name in ASSIGNMENTS.values():
        return name
    if name.isdigit() and int(name) in ASSIGNMENTS:
        return ASSIGNMENTS[int(name)]
    raise SystemExit(f"error: no assignment {name!r}; the assignments are {', '.join(ASSIGNMENTS.values())}")


def release(assignment: str, dest: Path, root: Path = REPO) -> List[str]:
    """Write the release of ``assignment`` for students to ``dest``; returns the paths written."""
    assignment = resolve_assignment(assignment)
    root, dest = Path(root), Path(dest)
    notebooks = root / "notebooks"
    source = notebooks / assignment
    if not any(source.glob("*.ipynb")):
        raise SystemExit(f"error: {source} holds no released notebook: run `dlhw build` first")
    kit = notebooks / "_kit"
    if not (kit / "pyproject.toml").is_file():
        raise SystemExit(f"error: {kit} holds no kit: run `dlhw build` first")
    if dest.resolve() in (root.resolve(), notebooks.resolve()):
        raise SystemExit("error: --to must be a folder of its own, not the repository")
    for sub, src in ((assignment, source), ("_kit", kit)):
        out = dest / "notebooks" / sub
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(src, out, ignore=_IGNORE)
    shutil.copyfile(root / "environment.yml", dest / "environment.yml")
    return sorted(str(p.relative_to(dest)) for p in
                  [*(dest / "notebooks" / assignment).rglob("*"), *(dest / "notebooks" / "_kit").rglob("*"),
                   dest / "environment.yml"] if p.is_file())
