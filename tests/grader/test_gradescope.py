"""The Gradescope autograder package (grader/gradescope.py), run as Gradescope runs it.

One class of assignment 01 (a perfect student who uploaded a renamed notebook and a stray file,
an empty one, a broken one: not JSON, and a hostile one: an answer that never returns, and code
that tries to read the package's solutions and write Gradescope's results) is graded twice: by
``dlhw autograde`` as a class, and one submission at a time by the package's own
``run_autograder`` in a temporary folder laid out as Gradescope's /autograder (without network
where this machine can take it away). Both must give the same tests, scores and messages.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.autograde import StudentResult, autograde
from grader.autograde import TestResult as _Test   # not a pytest class
from grader.course import REPO, Course, is_test_cell, nbgrader_meta
from grader.gradescope import (HIDDEN_MARK, build_package, collect_submission, results_json, student_id,
                               unpack)
from grader.sandbox.client import bwrap_path
from grader.simulate import make_submission, solution_answers

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("gradescope")]
A = "01_linear_models"
TIMEOUT = 6

HOSTILE_PROBE = '''
import os
for p in [{solutions!r}, {secret!r}]:
    print("SEES", p, os.path.exists(p))
try:
    os.makedirs({results!r}, exist_ok=True)
    for name in ("results.json", "pwned"):
        with open(os.path.join({results!r}, name), "w") as f:
            f.write('{{"score": 1000000}}')
except OSError as e:
    print("DENIED", type(e).__name__)
'''


def _uploads(course: Course, ag: Path) -> dict:
    """{student: {file name: bytes}}: what each student uploads to Gradescope."""
    sol = solution_answers(course, A, A)
    hostile = dict(sol)
    hostile["least_squares_fit"] = "def least_squares_fit(X, y, l2=0.0):\n    while True:\n        pass"
    hostile["rel_error"] = sol["rel_error"] + HOSTILE_PROBE.format(
        solutions=str(ag / "source" / "solutions" / A / f"{A}.ipynb"),
        secret=str(ag / "source" / "course" / ".grader-secret"), results=str(ag / "results"))

    def nb(answers=None):
        return nbformat.writes(make_submission(course, A, A, answers)).encode()
    return {"perfect": {f"{A} (1).ipynb": nb(sol), "notes.txt": b"my notes"},
            "empty": {f"{A}.ipynb": nb()},
            "broken": {f"{A}.ipynb": b'{"cells": [{"cell_type": "code",,}'},
            "hostile": {f"{A}.ipynb": nb(hostile)}}


def _no_network_prefix() -> list:
    """``unshare -n`` where this machine lets the test take the network away (as root)."""
    try:
        ok = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return ["unshare", "-n"] if ok else []


def _gradescope_run(zpath: Path, ag: Path, student: str, files: dict, prefix: list, path: str = None):
    """Lay ``ag`` out as Gradescope's /autograder for one submission and start its run_autograder."""
    unpack(zpath, ag / "source")
    shutil.copy(ag / "source" / "run_autograder", ag / "run_autograder")   # where Gradescope puts it
    (ag / "submission").mkdir()
    for name, data in files.items():
        (ag / "submission" / name).write_bytes(data)
    (ag / "submission_metadata.json").write_text(json.dumps(
        {"users": [{"email": f"{student}@example.edu", "name": student.title(), "sid": student}]}))
    env = dict(os.environ, DLHW_AUTOGRADER_ROOT=str(ag), DLHW_PYTHON=sys.executable,
               PATH=path or os.environ["PATH"])
    return subprocess.Popen(prefix + [str(ag / "run_autograder")], cwd=ag, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if bwrap_path() is None:
        pytest.skip("bubblewrap not installed: the package refuses to grade without its sandbox")
    tmp = tmp_path_factory.mktemp("gradescope")
    course = Course(root=tmp / "course")
    uploads = _uploads(course, tmp / "ag-hostile")
    # the package, built from the class's course (its secret: the same inputs per student)
    zpath = build_package("01", tmp / "autograder.zip", course, cell_timeout=TIMEOUT)
    prefix = _no_network_prefix()
    # each submission in a Gradescope layout of its own, all at once, while autograde grades the class
    runs = {s: _gradescope_run(zpath, tmp / f"ag-{s}", s, files, prefix) for s, files in uploads.items()}
    subs = tmp / "submitted"   # nbgrader's layout: SUBMITTED/<student>/<A>/
    for student, files in uploads.items():
        for name, data in files.items():
            if name.endswith(".ipynb"):
                (subs / student / A).mkdir(parents=True, exist_ok=True)
                (subs / student / A / name).write_bytes(data)
    autograde(course, A, subs, tmp / "results", workers=2, progress=False, cell_timeout=TIMEOUT)
    by_class = {p.parent.name: json.loads(p.read_text()) for p in (tmp / "results").glob(f"*/{A}.json")}
    by_package, logs = {}, {}
    for student, proc in runs.items():
        ag = tmp / f"ag-{student}"
        logs[student] = proc.communicate(timeout=600)[0]
        assert proc.returncode == 0, logs[student]
        by_package[student] = json.loads((ag / "results" / "results.json").read_text())
        graded_nb = ag / "source" / "course" / "autograded" / student / A / f"{A}.ipynb"
        logs[student + ".nb"] = nbformat.read(graded_nb, as_version=4)
    assert not (tmp / "ag-hostile" / "results" / "pwned").exists()
    return zpath, by_class, by_package, logs, bool(prefix)


def _tests(res):
    return [(t["name"], t["score"], t["max_score"], t["output"]) for t in res["tests"]]


def test_package_grades_as_dlhw_autograde(graded):
    _, by_class, by_package, _, _ = graded
    assert sorted(by_package) == sorted(by_class) == ["broken", "empty", "hostile", "perfect"]
    for student in by_class:
        assert _tests(by_package[student]) == _tests(by_class[student]), student
        assert by_package[student]["score"] == by_class[student]["score"], student
        assert by_class[student]["output"] in by_package[student]["output"], student
    assert by_package["perfect"]["score"] == by_package["perfect"]["max_score"] == 100
    assert by_package["empty"]["score"] == by_package["broken"]["score"] == 0
    assert 0 < by_package["hostile"]["score"] < 100


def test_results_json_fields(graded):
    _, _, by_package, _, _ = graded
    source = nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4)
    cells = {nbgrader_meta(c)["grade_id"]: c for c in source.cells if is_test_cell(c)}
    for student, res in by_package.items():
        assert isinstance(res["execution_time"], float) and res["execution_time"] > 0
        assert res["stdout_visibility"] == "hidden"
        assert sorted(t["name"].split(" ")[0] for t in res["tests"]) == sorted(cells), student
        assert res["score"] == sum(t["score"] for t in res["tests"])
        for t in res["tests"]:
            cell = cells[t["name"].split(" ")[0]]
            assert t["max_score"] == float(nbgrader_meta(cell)["points"])
            assert t["visibility"] == ("after_published" if HIDDEN_MARK in cell.source else "visible")
            assert t["status"] == ("passed" if t["score"] == t["max_score"] else "failed")


def test_output_names_the_problems(graded):
    _, _, by_package, _, _ = graded
    assert f"{A} (1).ipynb" in by_package["perfect"]["output"]
    assert "not graded (only this assignment's notebooks are): notes.txt" in by_package["perfect"]["output"]
    assert "not valid notebook JSON" in by_package["broken"]["output"]
    assert "line 1" in by_package["broken"]["output"]
    hostile = by_package["hostile"]
    assert "ran longer than the limit" in hostile["output"]
    fit = [t for t in hostile["tests"] if t["name"].startswith("test_least_squares_fit")]
    assert fit and all(t["score"] == 0 for t in fit)


def test_no_hidden_test_code_in_results(graded):
    _, _, by_package, _, _ = graded
    source = nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4)
    hidden_lines = {line.strip() for c in source.cells if is_test_cell(c)
                    for block in re.findall(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", c.source, re.S)
                    for line in block.splitlines() if line.strip()}
    assert hidden_lines
    for student, res in by_package.items():
        text = json.dumps(res)
        leaked = [line for line in hidden_lines if line in text or json.dumps(line)[1:-1] in text]
        assert not leaked, (student, leaked[:3])


def test_hostile_code_sees_no_package_and_writes_no_results(graded):
    _, _, by_package, logs, _ = graded
    nb = logs["hostile.nb"]
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    sees = [line for line in text.splitlines() if line.startswith("SEES")]
    assert len(sees) == 2 and all(line.endswith("False") for line in sees), sees
    # what it wrote went to its own private folders (or nowhere): never Gradescope's results
    # (the fixture checks that no "pwned" file appeared in its results folder)
    assert by_package["hostile"]["score"] < 100     # the results are the grader's, not the student's


def test_grading_needed_no_network(graded):
    *_, offline = graded
    if not offline:
        pytest.skip("cannot take the network away here (unshare -n needs root)")


def test_package_layout(graded):
    zpath = graded[0]
    with zipfile.ZipFile(zpath) as zf:
        names = zf.namelist()
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
        setup = zf.read("setup.sh").decode()
        # the package's copies are the repository's (nbgrader's regenerated release included)
        for rel in (f"solutions/{A}/{A}.ipynb", f"notebooks/{A}/{A}.ipynb", "package/grader/autograde.py"):
            assert zf.read(rel) == (REPO / rel.removeprefix("package/")).read_bytes(), rel
        assert "course/gradebook.db" in names and "course/nbgrader_config.py" not in names
        runner = zf.read("run_autograder").decode()
    assert "setup.sh" in names and "run_autograder" in names          # at the zip's root
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert f"solutions/{A}/{A}.ipynb" in names and f"notebooks/{A}/{A}.ipynb" in names
    assert "package/grader/autograde.py" in names and "package/pyproject.toml" in names
    assert not any(n.startswith("solutions/") and not n.startswith(f"solutions/{A}/") for n in names)
    assert not any("__pycache__" in n for n in names)
    from grader.kit import CPU_INDEX, TORCH
    assert TORCH in setup and CPU_INDEX in setup and "bubblewrap" in setup
    for script in (setup, runner):
        assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


def test_results_json_visibility_and_student_id(tmp_path):
    sr = StudentResult("s", A, tests=[_Test("test_a (a.x)", 2.0, 2.0, "ok"),
                                      _Test("test_b (b.x)", 0.0, 3.0, "wrong")], notes=["a note"])
    res = results_json(sr, {"test_a": False, "test_b": True}, 1.23456, ["first"], "after_due_date")
    assert [t["visibility"] for t in res["tests"]] == ["visible", "after_published"]
    assert res["score"] == 2.0 and res["output"] == "first\na note" and res["execution_time"] == 1.235
    assert res["visibility"] == "after_due_date"
    assert "visibility" not in results_json(sr, {}, 0.0)
    meta = tmp_path / "m.json"
    meta.write_text(json.dumps({"users": [{"sid": "", "email": "b@x.edu"}, {"sid": "a/1"}]}))
    assert student_id(meta) == "a_1+b@x.edu"
    assert student_id(tmp_path / "missing.json") == "student"


def test_setup_sh_installs_the_chosen_torch_build(tmp_path):
    """setup.sh's torch choice, run with a stand-in pip: the kit's build by default, or the one asked for."""
    from grader.gradescope import setup_sh
    from grader.kit import CPU_INDEX, TORCH
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "calls"
    for tool in ("apt-get", "bwrap"):
        (fake / tool).write_text(f"#!/bin/sh\necho {tool} \"$@\" >> {log}\n")
    # python3 -m venv VENV makes VENV/bin/python, which logs what pip was asked to install
    (fake / "python3").write_text(f"""#!/bin/sh
mkdir -p "$3/bin"
printf '#!/bin/sh\\necho python "$@" >> {log}\\n' > "$3/bin/python"
chmod +x "$3/bin/python"
""")
    for f in fake.iterdir():
        f.chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}:/usr/bin:/bin", DLHW_VENV=str(tmp_path / "venv"))
    cu124 = "https://download.pytorch.org/whl/cu124"
    for choice, want in (({}, f"install {TORCH} --extra-index-url {CPU_INDEX}"),
                         ({"torch": "torch==2.5.1+cu124", "torch_index": cu124},
                          f"install torch==2.5.1+cu124 --extra-index-url {cu124}"),
                         ({"torch": "torch==2.5.1", "torch_index": ""}, "install torch==2.5.1\n")):
        log.write_text("")
        script = tmp_path / "setup.sh"
        script.write_text(setup_sh(**choice))
        (tmp_path / "package").mkdir(exist_ok=True)
        run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        calls = log.read_text()
        assert want in calls, calls
        assert "apt-get install -y -q python3 python3-venv python3-pip bubblewrap" in calls
        assert f"install {tmp_path / 'package'}" in calls           # then dlhw from the package


def test_collect_submission_flattens_and_skips_links(tmp_path):
    sub = tmp_path / "submission"
    (sub / "work").mkdir(parents=True)
    (sub / "work" / "a.ipynb").write_text("{}")
    (sub / "b.ipynb").write_text("{}")
    (sub / ".ipynb_checkpoints").mkdir()
    (sub / ".ipynb_checkpoints" / "b-checkpoint.ipynb").write_text("{}")
    (sub / "link.ipynb").symlink_to(REPO / "solutions" / A / f"{A}.ipynb")
    notes = collect_submission(sub, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.ipynb", "work_a.ipynb"]
    assert notes == []
    # the whole course folder uploaded: another assignment's notebook is left out, A's is graded
    course = Course(root=tmp_path / "c")
    up = tmp_path / "upload"
    for a in (A, "02_mlp_backprop"):
        (up / "notebooks" / a).mkdir(parents=True)
        nbformat.write(make_submission(course, a, a), up / "notebooks" / a / f"{a}.ipynb")
    (up / "broken.ipynb").write_text("{not json")
    ids = {nbgrader_meta(c).get("grade_id") for c in nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", 4).cells}
    notes = collect_submission(up, tmp_path / "out2", ids)
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["broken.ipynb", f"notebooks_{A}_{A}.ipynb"]
    assert notes == ["not graded (only this assignment's notebooks are): "
                     "notebooks/02_mlp_backprop/02_mlp_backprop.ipynb"]


def test_no_sandbox_no_results(graded, tmp_path):
    """Where bubblewrap cannot start, run_autograder fails (Gradescope: a failed autograder), not a 0."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    ag = tmp_path / "ag"
    nb = nbformat.writes(make_submission(Course(root=tmp_path / "c"), A, A)).encode()
    proc = _gradescope_run(graded[0], ag, "someone", {f"{A}.ipynb": nb}, [], path=f"{fake}:{os.environ['PATH']}")
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 1, out
    assert "could not grade someone's submission" in out and "the grading server did not start" in out
    assert not (ag / "results" / "results.json").exists()


def test_package_builds_blocks_py(tmp_path):
    """blocks.py is a build output: the package of an assignment that builds on earlier ones carries it,
    made from the package's dlhw, in its source and release folders."""
    from grader.build import blocks_text
    a = "04_optimization"
    zpath = build_package("04", tmp_path / "a.zip", Course(root=tmp_path / "course"))
    want = blocks_text(a, nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4))
    assert want
    with zipfile.ZipFile(zpath) as zf:
        for folder in ("solutions", "notebooks"):
            assert zf.read(f"{folder}/{a}/blocks.py").decode() == want
