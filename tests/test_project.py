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


# ----------------------------------------------------------- solutions in other clothes
# A solution ported to another framework or renamed (np.sin -> torch.sin, angle -> angles)
# is still a solution. Lines are compared in a canonical form: no comments, no framework
# prefix (np., torch., math., F., nn.), no dtype=/device=/axis=-style keywords, every plain
# variable name written `v` (calls, attributes, keywords and string literals kept).
_FRAMEWORKS = {"np", "numpy", "torch", "math", "F", "nn"}
_TOKEN = re.compile(r"\"[^\"]*\"|'[^']*'|[A-Za-z_]\w*|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+|\*\*|//|->"
                    r"|[-+*/@%<>=!]=?|[()\[\]{},:.;~&|^]")


def _canonical(line: str) -> str:
    import builtins
    import keyword
    keep = set(keyword.kwlist) | set(dir(builtins))
    code = re.sub(r",\s*(dtype|device|out|keepdims?|axis|dim)\s*=\s*[^,()\[\]]+", "", line.split("#")[0].strip())
    toks, out = _TOKEN.findall(code), []
    for i, t in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if t in _FRAMEWORKS and nxt == ".":
            continue
        if t == "." and out and out[-1] == "" :
            continue
        if re.match(r"[A-Za-z_]", t) and t not in keep and (not out or out[-1] != ".") and nxt != "(":
            t = "v"
        out.append(t)
    return "".join(out).replace("..", ".")


def _region_fingerprints() -> dict:
    """{canonical line: (assignment, function)} of the solution regions of every graded function
    (numpy and torch), minus lines the reference also writes outside its solutions (common code:
    loops over minibatches, argument unpacking)."""
    import importlib
    import inspect
    from grader.kit import PACKAGE_DIR, kit_modules
    fps = {}
    for number, refs in GRADED.items():
        for ref in refs:
            module, name = ref.split(":")
            src = inspect.getsource(getattr(importlib.import_module(module), name))
            for region in SOLUTION_REGION.findall(src):
                for line in region.splitlines():
                    fp = _canonical(line)
                    if len(fp) >= 16:
                        fps.setdefault(fp, (number, name))
    kit = {p.resolve() for p in kit_modules().values()}
    for path in PACKAGE_DIR.rglob("*.py"):
        if path.resolve() not in kit and "__pycache__" not in path.parts:
            for line in SOLUTION_REGION.sub("", path.read_text()).splitlines():
                fps.pop(_canonical(line), None)
    return fps


def _leaks(source: str, fps: dict) -> list:
    """Functions of ``source`` that share two canonical lines with one solution, or one long one."""
    import ast
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        shared = {}
        for line in lines[node.lineno - 1:node.end_lineno]:
            fp = _canonical(line)
            if fp in fps:
                shared.setdefault(fps[fp], []).append(line.strip())
        for (number, name), hits in shared.items():
            if len(set(hits)) >= 2 or any(len(_canonical(h)) >= 28 for h in hits):
                found.append(f"{node.name} (line {node.lineno}) holds assignment {number:02d}'s {name}: {hits[:3]}")
    return found


def test_kit_holds_no_solution_in_any_framework():
    fps = _region_fingerprints()
    files = sorted((REPO / "notebooks" / "_kit" / "dlhw").rglob("*.py"))
    assert len(files) > 10
    leaks = [f"{p.relative_to(REPO)}: {leak}" for p in files for leak in _leaks(p.read_text(), fps)]
    assert not leaks, "the kit ships solutions:\n" + "\n".join(leaks)


def test_the_leak_check_sees_a_ported_solution():
    # assignment 08's positional encoding as the kit once shipped it, in torch
    port = """
def sinusoidal_encoding(T, D, dtype=torch.float32, device=None):
    position = torch.arange(T, dtype=torch.float64, device=device)[:, None]
    rates = torch.exp(-math.log(10000.0) * torch.arange(0, D, 2, dtype=torch.float64, device=device) / D)
    angles = position * rates
    pe = torch.zeros(T, D, dtype=torch.float64, device=device)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles[:, : D // 2])
    return pe.to(dtype)
"""
    leaks = _leaks(port, _region_fingerprints())
    assert leaks and "positional_encoding" in leaks[0]
    assert not _leaks("def f(x):\n    return x.reshape(x.shape[0], -1)\n", _region_fingerprints())
