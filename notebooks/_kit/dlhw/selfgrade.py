"""``dlhw check NOTEBOOK``: a student's dry run of the grading, before submitting.

It runs the notebook top to bottom in a fresh kernel (nbclient, the engine behind
``jupyter nbconvert --execute``), continuing after errors, and lists every graded test cell
with its points and verdict. Only the visible tests run here; hidden tests with other shapes
and seeds run at grading time, so a function that only fits the visible example loses points.
"""
from __future__ import annotations

from pathlib import Path

HIDDEN_NOTE = "Hidden tests with other shapes and seeds run at grading time."


def selfgrade(path: Path, timeout: float = 120.0, quiet: bool = False) -> int:
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        print(f"error: {path} is not a readable notebook ({exc})")
        return 2
    client = NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    client.execute()
    earned = total = 0.0
    lines = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        points = float(meta.get("points", 0))
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        total += points
        if errors:
            msg = f"{errors[0].get('ename')}: {errors[0].get('evalue', '')}".strip()
            lines.append(f"\u2717 {meta.get('grade_id')} (0/{points:g}): {msg[:400]}")
        else:
            earned += points
            lines.append(f"\u2713 {meta.get('grade_id')} ({points:g}/{points:g})")
    if not quiet:
        print("\n".join(lines))
        print(f"\nvisible tests: {earned:g} / {total:g} points. {HIDDEN_NOTE}")
    return 0 if earned == total else 1
