"""``dlhw release A --to DIR``: what the students of assignment A receive, and nothing more.

It writes, laid out as in the repository so that the README's student commands work as they
are:

    DIR/notebooks/A/          A's release (its notebook, committed in notebooks/A/, and
                              blocks.py: reference code of earlier assignments only, whose
                              deadlines have passed, built now from dlhw)
    DIR/notebooks/_kit/       the student kit (checks, data, models; no solution of any
                              assignment) with its install script, notebooks/_kit/install.sh,
                              built now from dlhw
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
    """Write the release of ``assignment`` for students to ``dest``; returns the paths written.

    The notebooks come from the committed release (``notebooks/A/``); blocks.py and the kit,
    build outputs that the repository does not commit, are built here from dlhw itself, so a
    handout is never staler than the code it is released from."""
    import nbformat
    from grader.build import blocks_text, is_build_output
    from grader.kit import build_kit
    assignment = resolve_assignment(assignment)
    root, dest = Path(root), Path(dest)
    notebooks = root / "notebooks"
    source = notebooks / assignment
    if not any(source.glob("*.ipynb")):
        raise SystemExit(f"error: {source} holds no released notebook: run `dlhw build` first")
    if dest.resolve() in (root.resolve(), notebooks.resolve()):
        raise SystemExit("error: --to must be a folder of its own, not the repository")
    out = dest / "notebooks" / assignment
    kit = dest / "notebooks" / "_kit"
    for folder in (out, kit):
        if folder.exists():
            shutil.rmtree(folder)
    # what is committed, less the build outputs a working tree may hold (rebuilt just below)
    shutil.copytree(source, out, ignore=lambda d, names: set(_IGNORE(d, names)) | {
        n for n in names if is_build_output(str((Path(d) / n).relative_to(root)))})
    for path in sorted((root / "solutions" / assignment).glob("*.ipynb")):
        text = blocks_text(assignment, nbformat.read(path, as_version=4))
        if text is not None:
            (out / "blocks.py").write_text(text)
    build_kit(kit)
    shutil.copyfile(root / "environment.yml", dest / "environment.yml")
    return sorted(str(p.relative_to(dest)) for p in
                  [*out.rglob("*"), *kit.rglob("*"), dest / "environment.yml"] if p.is_file())
