"""``python -m dlhw check NOTEBOOK``: a student's dry run of the grading, before submitting.

It runs the notebook as saved on disk, top to bottom in a fresh kernel (nbclient, the engine
behind ``jupyter nbconvert --execute``), continuing after errors, and lists every graded test
cell with its points and verdict. Only the visible tests run here; hidden tests with other
shapes and seeds run at grading time, so a function that only fits the visible example loses
points. The kernel's own stderr (ZeroMQ transport warnings and the like) stays out of the
report; it is shown only when the kernel dies.
"""
from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path
from typing import Optional

from dlhw.checks.core import HIDDEN_NOTE

# set in the kernel that runs the notebook: a `!python -m dlhw check` cell saved in the
# notebook would otherwise start the check again, inside itself, without end
NESTED = "DLHW_CHECK_RUNNING"


def find_notebook(name: Optional[str], cwd: Optional[Path] = None) -> Path:
    """The notebook a student means, from where they are.

    ``name`` may be a path (relative to ``cwd``), with or without ``.ipynb``, or an assignment's
    bare name (``02_mlp_backprop``), looked up as ``NAME.ipynb``, ``NAME/NAME.ipynb`` and
    ``notebooks/NAME/NAME.ipynb`` in ``cwd`` and then in each folder above it. None: the one
    notebook in ``cwd`` (a JupyterLab terminal or a notebook's ``!`` command in its folder).
    Raises FileNotFoundError saying where it looked.
    """
    cwd = Path(cwd or os.getcwd()).resolve()
    if name is None:
        found = sorted(p for p in cwd.glob("*.ipynb") if not p.name.startswith("."))
        if len(found) == 1:
            return found[0]
        raise FileNotFoundError(f"{'several' if found else 'no'} notebooks in {cwd}: name one "
                                f"(python -m dlhw check 02_mlp_backprop)")
    given = Path(name).expanduser()
    stem = given.name[:-len(".ipynb")] if given.name.endswith(".ipynb") else given.name
    tries = [given, given.with_name(given.name + ".ipynb")] if given.suffix != ".ipynb" else [given]
    if len(given.parts) == 1:   # a bare name: also its assignment folder, here or above
        for folder in (cwd, *cwd.parents):
            tries += [folder / f"{stem}.ipynb", folder / stem / f"{stem}.ipynb",
                      folder / "notebooks" / stem / f"{stem}.ipynb"]
    for path in tries:
        path = path if path.is_absolute() else cwd / path
        if path.is_file():
            return path
    raise FileNotFoundError(f"no notebook {name!r} from {cwd} (looked for {stem}.ipynb here, in "
                            f"{stem}/ and notebooks/{stem}/, here and in the folders above)")


def selfgrade(path: Path, timeout: float = 120.0, quiet: bool = False) -> int:
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    if os.environ.get(NESTED):
        print(f"dlhw check: skipped here (this cell runs inside `dlhw check` of {os.environ[NESTED]})")
        return 0
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        print(f"error: {path} is not a readable notebook ({exc})")
        return 2
    client = NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    stopped = None
    with tempfile.TemporaryFile(mode="w+") as kernel_stderr:
        try:
            client.execute(stderr=kernel_stderr, env=dict(os.environ, **{NESTED: path.name}))
        except Exception as exc:   # the kernel died, or a cell ran past the timeout
            kernel_stderr.seek(0)
            tail = kernel_stderr.read()[-2000:].strip()
            stopped = (f"running {path.name} stopped: {type(exc).__name__}: {str(exc).strip()[:400]}"
                       + (f"\nthe kernel said:\n{tail}" if tail else ""))
    earned = total = 0.0
    lines = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        points = float(meta.get("points", 0))
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        total += points
        if stopped and cell.get("execution_count") is None:
            lines.append(f"\u2717 {meta.get('grade_id')} (0/{points:g}): not run (the run stopped before it)")
        elif errors:
            ename, evalue = errors[0].get("ename", ""), str(errors[0].get("evalue", ""))
            # a check's verdict is the message itself; anything else keeps its exception's name
            msg = evalue if ename in ("CheckFailed", "NotImplementedYet") else f"{ename}: {evalue}".strip()
            lines.append("\n".join(textwrap.wrap(f"\u2717 {meta.get('grade_id')} (0/{points:g}): {msg[:600]}",
                                                  width=100, subsequent_indent="    ", break_long_words=False,
                                                  break_on_hyphens=False)))
        else:
            earned += points
            lines.append(f"\u2713 {meta.get('grade_id')} ({points:g}/{points:g})")
    if not quiet:
        if stopped:
            print(f"error: {stopped}\n")
        print("\n".join(lines))
        print(f"\nvisible tests: {earned:g} / {total:g} points. {HIDDEN_NOTE}")
    return 2 if stopped else 0 if earned == total else 1
