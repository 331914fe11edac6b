"""The project's promises about itself: one environment, fresh generated files, no leaks."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from grader.course import REPO
from grader.curriculum import ASSIGNMENTS, GRADED

SOLUTION_REGION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


def _reqs(lines):
    out = {}
    for line in lines:
        line = line.split(";")[0].strip()
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", line)
        if m:
            out[m.group(1).lower()] = m.group(2).replace(" ", "")
    return out


def _environment_yml():
    conda, pip = [], []
    section = None
    for raw in (REPO / "environment.yml").read_text().splitlines():
        line = raw.split("#")[0].rstrip()
        if re.match(r"^[a-z]+:", line):
            section = line.split(":")[0]
            continue
        if section != "dependencies":
            continue
        m = re.match(r"^\s{2}- (.+)$", line)
        if m and m.group(1) != "pip:" and not m.group(1).startswith("pip:"):
            conda.append(m.group(1))
        m = re.match(r"^\s{6}- (.+)$", line)
        if m:
            pip.append(m.group(1))
    return conda, pip


TEST_TOOLS = ("pytest", "pytest-xdist", "hypothesis", "nbval")


def test_environment_yml_mirrors_the_student_install():
    """conda's environment.yml is install.sh's install: the same torch and index, then the kit."""
    from grader.kit import CPU_INDEX, INSTALL_SH, TORCH
    conda, pip = _environment_yml()
    assert conda == ["python>=3.10", "pip"], "everything else comes from the kit's requirements"
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert f">={meta['requires-python'].lstrip('>=')}" == conda[0].replace("python", "")
    assert pip == [f"--extra-index-url {CPU_INDEX}", TORCH, "./notebooks/_kit"]
    script = (REPO / "notebooks" / "_kit" / "install.sh").read_text()
    assert script == INSTALL_SH
    assert f'torch_req="${{DLHW_TORCH:-{TORCH}}}"' in script and f'index="${{DLHW_TORCH_INDEX-{CPU_INDEX}}}"' in script
    assert f'torch_req="${{DLHW_TORCH:-{TORCH}}}"' in (REPO / ".ci" / "setup").read_text(), \
        "students and CI take the same torch"
    torch_range = [d for d in meta["dependencies"] if d.startswith("torch")]
    assert torch_range and TORCH.split("==")[1].startswith("2."), "the pin must satisfy the package's range"


def test_the_kit_requires_what_students_use_and_no_test_tools():
    from grader.kit import kit_dependencies
    kit = tomllib.loads((REPO / "notebooks" / "_kit" / "pyproject.toml").read_text())["project"]
    assert kit["dependencies"] == kit_dependencies()[0]
    reqs = _reqs(kit["dependencies"])
    assert len(reqs) == len(kit["dependencies"]), "a requirement is listed twice"
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert reqs == {k: v for k, v in _reqs(meta["dependencies"]).items() if k != "tomli"}
    for name in ("nbgrader", "jupyterlab", "torch", "ipykernel", "nbclient"):
        assert name in reqs, name
    assert not set(reqs) & set(TEST_TOOLS)
    assert kit["scripts"] == {"dlhw": "dlhw.cli:main"}


def test_student_environment_installs_the_kit_not_the_reference():
    _, pip = _environment_yml()
    assert [p for p in pip if "notebooks" in p] == ["./notebooks/_kit"]
    kit = REPO / "notebooks" / "_kit" / "dlhw"
    assert not (kit / "nn").exists()
    for path in kit.rglob("*.py"):
        assert "### BEGIN SOLUTION" not in path.read_text(), f"{path} ships a solution"


@pytest.mark.slow
def test_generated_files_are_fresh():
    from grader.build import check_stale
    stale = check_stale()
    assert not stale, "stale generated files (run `dlhw build` and commit):\n" + \
        "\n".join(f"{p}: {why}" for p, why in stale.items())


def _solution_lines(number: int) -> set:
    """Distinctive code lines inside the solution regions of an assignment's graded functions."""
    import importlib
    import inspect
    lines = set()
    for ref in GRADED[number]:
        module, name = ref.split(":")
        src = inspect.getsource(getattr(importlib.import_module(module), name))
        for region in SOLUTION_REGION.findall(src):
            for line in region.splitlines():
                code = line.split("#")[0].strip()
                if len(code) >= 24:   # long enough to be this solution's, not any code's
                    lines.add(code)
    return lines


@pytest.mark.parametrize("number", [n for n, a in ASSIGNMENTS.items() if (REPO / "notebooks" / a).is_dir()])
def test_release_leaks_no_solution_of_this_or_later_assignments(number):
    folder = REPO / "notebooks" / ASSIGNMENTS[number]
    # earlier assignments' solutions may ship (blocks.py), so a line they share is not a leak
    earlier = set().union(*(_solution_lines(n) for n in GRADED if n < number))
    forbidden = set().union(*(_solution_lines(n) for n in GRADED if n >= number)) - earlier
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_text(errors="replace")
        assert "### BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, path
        assert "hidden=True" not in text, f"{path} shows a hidden test"
        leaked = [line for line in forbidden if line in text]
        assert not leaked, f"{path.relative_to(REPO)} contains solution code: {leaked[:3]}"


def test_kit_leaks_no_solution():
    forbidden = set().union(*(_solution_lines(n) for n in GRADED))
    for path in (REPO / "notebooks" / "_kit").rglob("*.py"):
        text = path.read_text()
        leaked = [line for line in forbidden if line in text]
        assert not leaked, f"{path} contains solution code: {leaked[:3]}"
