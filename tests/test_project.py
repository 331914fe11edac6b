"""The project's promises about itself: one environment, fresh generated files, no leaks."""
from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=1)
def _kit() -> dict:
    """{path: text} of the student kit, as `dlhw build` and `dlhw release` write it."""
    from grader.kit import kit_files
    return {rel: data.decode() for rel, data in kit_files().items()}


def test_environment_yml_mirrors_the_student_install():
    """conda's environment.yml is install.sh's install: the same torch and index, then the kit."""
    from grader.kit import CPU_INDEX, INSTALL_SH, TORCH
    conda, pip = _environment_yml()
    assert conda == ["python>=3.10", "pip"], "everything else comes from the kit's requirements"
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert f">={meta['requires-python'].lstrip('>=')}" == conda[0].replace("python", "")
    assert pip == [f"--extra-index-url {CPU_INDEX}", TORCH, "./notebooks/_kit"]
    script = _kit()["install.sh"]
    assert script == INSTALL_SH
    assert f'torch_req="${{DLHW_TORCH:-{TORCH}}}"' in script and f'index="${{DLHW_TORCH_INDEX-{CPU_INDEX}}}"' in script
    assert f'torch_req="${{DLHW_TORCH:-{TORCH}}}"' in (REPO / ".ci" / "setup").read_text(), \
        "students and CI take the same torch"
    torch_range = [d for d in meta["dependencies"] if d.startswith("torch")]
    assert torch_range and TORCH.split("==")[1].startswith("2."), "the pin must satisfy the package's range"


def test_the_kit_requires_what_students_use_and_no_test_tools():
    from grader.kit import kit_dependencies
    kit = tomllib.loads(_kit()["pyproject.toml"])["project"]
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
    kit = _kit()
    assert not [rel for rel in kit if rel.startswith("dlhw/nn/")]
    for rel, text in kit.items():
        assert "### BEGIN SOLUTION" not in text, f"the kit's {rel} ships a solution"


# ----------------------------------------------------------- generated files: no copy to forget
def _git_files(*paths):
    import shutil
    import subprocess
    if not shutil.which("git") or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z", *paths], cwd=REPO, capture_output=True, text=True, check=True)
    return [p for p in out.stdout.split("\0") if p]


def test_build_outputs_are_not_committed_and_are_ignored():
    """blocks.py and the kit are copies of dlhw's code: built wherever they are needed
    (grader.build.BUILD_OUTPUTS), never committed, so no committed copy can go stale."""
    import subprocess
    from grader.build import is_build_output
    committed = _git_files("solutions", "notebooks")
    assert committed and not [p for p in committed if is_build_output(p)], "commit only the notebooks"
    assert {p.split("/")[0] for p in committed} == {"solutions", "notebooks"}
    assert all(p.endswith(".ipynb") for p in committed), [p for p in committed if not p.endswith(".ipynb")]
    # what the build writes is ignored by git, so `git add` cannot pick it up either
    outputs = ["notebooks/_kit/install.sh", "notebooks/_kit/dlhw/checks/core.py",
               *(f"{top}/{a}/blocks.py" for top in ("solutions", "notebooks") for a in ASSIGNMENTS.values())]
    assert all(is_build_output(p) for p in outputs)
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *outputs], cwd=REPO, capture_output=True,
                             text=True).stdout.split()
    assert sorted(ignored) == sorted(outputs), f"not git-ignored: {sorted(set(outputs) - set(ignored))}"


def test_build_outputs_in_the_working_tree_are_current():
    """conftest.py rebuilt them for this session; here, they must equal a build from dlhw."""
    import nbformat
    from grader.build import blocks_text
    assert {rel: (REPO / "notebooks" / "_kit" / rel).read_text() for rel in _kit()} == _kit()
    with_blocks = 0
    for number, name in ASSIGNMENTS.items():
        for src in sorted((REPO / "solutions" / name).glob("*.ipynb")):
            text = blocks_text(name, nbformat.read(src, as_version=4))
            for top in ("solutions", "notebooks"):
                path = REPO / top / name / "blocks.py"
                assert (path.read_text() if path.exists() else None) == text, path
            with_blocks += text is not None
    assert with_blocks == 7          # 04-09 and 12 build on earlier assignments


def test_committed_notebooks_do_not_drift():
    """The fast check (seconds, in memory): every solution notebook's generated cells (answer
    cells from dlhw, test cells from their metadata) and every release notebook (nbgrader's
    preprocessors on the solution) are byte for byte what `dlhw build` writes."""
    import time
    from grader.build import check_drift
    start = time.perf_counter()
    drift = check_drift()
    assert not drift, "committed notebooks differ from a build (run `dlhw build` and commit):\n" + \
        "\n".join(f"{p}: {why}" for p, why in drift.items())
    assert time.perf_counter() - start < 60


def test_the_drift_check_sees_each_kind_of_drift(tmp_path):
    import json
    import shutil
    from grader.build import check_drift
    name = ASSIGNMENTS[2]
    for top in ("solutions", "notebooks"):
        (tmp_path / top / name).mkdir(parents=True)
        shutil.copy2(REPO / top / name / f"{name}.ipynb", tmp_path / top / name)
    assert check_drift(tmp_path) == {}
    sol, rel = (tmp_path / top / name / f"{name}.ipynb" for top in ("solutions", "notebooks"))
    original = sol.read_text()

    def edit(path, change):
        nb = json.loads(path.read_text())
        change(nb)
        path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")

    def points(nb):   # the points of a test cell changed, its code not regenerated
        cell = next(c for c in nb["cells"] if c["metadata"].get("dlhw", {}).get("test"))
        cell["metadata"]["nbgrader"]["points"] += 1
    edit(sol, points)
    assert "solutions/02_mlp_backprop/02_mlp_backprop.ipynb" in check_drift(tmp_path)
    sol.write_text(original)

    def answer(nb):   # an answer cell edited by hand instead of in dlhw
        cell = next(c for c in nb["cells"] if c["metadata"].get("dlhw", {}).get("source"))
        cell["source"] = "".join(cell["source"]) + "\n# edited"
    edit(sol, answer)
    assert "solutions/02_mlp_backprop/02_mlp_backprop.ipynb" in check_drift(tmp_path)
    sol.write_text(original)

    def release(nb):  # the release edited, or left behind by the solution
        nb["cells"][0]["source"] = "edited"
    edit(rel, release)
    assert list(check_drift(tmp_path)) == ["notebooks/02_mlp_backprop/02_mlp_backprop.ipynb"]


def test_the_kit_builder_rejects_a_lazy_import_of_a_module_it_leaves_out(tmp_path):
    """A kit module that imports the reference only when a function runs (dlhw.train once looked
    up update rules in dlhw.optim) would break in a student's environment far from the build."""
    from grader.kit import KitImportError, check_kit_imports
    pkg = tmp_path / "dlhw"
    (pkg / "nn").mkdir(parents=True)
    for rel in ("__init__.py", "data.py", "optim.py", "nn/__init__.py", "nn/layers.py"):
        (pkg / rel).write_text("")
    cases = {
        "import dlhw.optim": "import dlhw.optim needs dlhw.optim",
        "from dlhw.nn.layers import affine_forward": "from dlhw.nn.layers import ... needs dlhw.nn.layers",
        "from .optim import sgd": "from .optim import ... needs dlhw.optim",
        "from . import optim": "from . import optim needs dlhw.optim",
        "importlib.import_module('dlhw.nn')": "the string 'dlhw.nn' (for importlib) needs dlhw.nn",
        "ref = 'dlhw.optim:adam'": "the string 'dlhw.optim:adam' (for importlib) needs dlhw.optim",
    }
    every = {"dlhw": pkg / "__init__.py", "dlhw.data": pkg / "data.py", "dlhw.optim": pkg / "optim.py",
             "dlhw.nn": pkg / "nn" / "__init__.py", "dlhw.nn.layers": pkg / "nn" / "layers.py",
             "dlhw.train": pkg / "train.py"}
    kit = {m: every[m] for m in ("dlhw", "dlhw.data", "dlhw.train")}
    for code, message in cases.items():
        (pkg / "train.py").write_text("import importlib\nfrom dlhw.data import load\nfrom . import data\n\n\n"
                                      f"def rule(name):\n    if name:\n        {code}\n")
        with pytest.raises(KitImportError) as err:
            check_kit_imports(kit, every, root=tmp_path)
        assert f"dlhw/train.py:8: {message}, which the student kit leaves out" in str(err.value), str(err.value)
    # what the kit ships may be imported anywhere, and names of a shipped module are not modules
    (pkg / "train.py").write_text("def f():\n    import dlhw.data\n    from dlhw.data import load\n"
                                  "    return __import__('dlhw.data')\n")
    check_kit_imports(kit, every, root=tmp_path)


def test_the_kit_ships_no_module_that_imports_the_reference():
    from grader.kit import _all_modules, check_kit_imports, kit_modules
    kit = kit_modules()          # raises KitImportError on any such import
    check_kit_imports(kit, _all_modules())
    assert "dlhw.train" in kit and "dlhw.models" in kit and "dlhw.optim" not in kit


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
    for rel, text in _kit().items():
        leaked = [line for line in forbidden if line in text]
        assert not leaked, f"the kit's {rel} contains solution code: {leaked[:3]}"


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
    files = {rel: text for rel, text in _kit().items() if rel.endswith(".py")}
    assert len(files) > 10
    leaks = [f"notebooks/_kit/{rel}: {leak}" for rel, text in files.items() for leak in _leaks(text, fps)]
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
