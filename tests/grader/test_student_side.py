"""The student's side: JupyterLab 4 serves the release, nbgrader's validate and `dlhw check` work."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import nbformat
import pytest

from grader.course import REPO, Course
from grader.simulate import make_submission, solution_answers
from tests.lab_server import free_port, wait_until_up

pytestmark = [pytest.mark.slow]
A = "02_mlp_backprop"


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    root = tmp_path_factory.mktemp("student")
    course = Course(root=root / "course")
    sol = solution_answers(course, A, A)
    paths = {}
    for who, answers in (("perfect", sol), ("empty", None)):
        d = root / who
        d.mkdir()
        nbformat.write(make_submission(course, A, A, answers), d / f"{A}.ipynb")
        paths[who] = d / f"{A}.ipynb"
    return paths


def test_nbgrader_validate(submissions):
    from nbgrader.validator import Validator
    v = Validator()
    v.validate_all = True
    good = v.validate(str(submissions["perfect"]))
    assert not good.get("failed") and not good.get("passed_tests")
    bad = v.validate(str(submissions["empty"]))
    assert bad.get("failed"), "validate should report the unfilled answers"
    assert any("NotImplementedError" in json.dumps(f) for f in bad["failed"])
    # a failing check reads as its verdict, in short lines, not as a stack into the kit's source
    # (the dialog cuts lines at 90 characters)
    checked = [f for f in bad["failed"] if "check(" in f["source"] or "report(" in f["source"]]
    assert checked
    for f in checked:
        error = f.get("error", "")
        assert error.startswith("\u2717 ") and "core.py" not in error and "Traceback" not in error, error
        assert max(len(line) for line in error.splitlines()) <= 82, error


def test_dlhw_check_reports_each_graded_test(submissions, capsys):
    from dlhw.selfgrade import selfgrade
    assert selfgrade(submissions["perfect"]) == 0
    out = capsys.readouterr().out
    assert "visible tests: 100 / 100 points" in out and "Hidden tests" in out
    assert selfgrade(submissions["empty"]) == 1
    out = capsys.readouterr().out
    assert "\u2717 test_affine_forward (0/4)" in out and "not implemented" in out


def test_jupyterlab4_serves_the_release():
    port, token = free_port(), "dlhw-test"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(REPO / ".pytest-jupyter"))
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
                             f"--ServerApp.token={token}", "--ServerApp.ip=127.0.0.1",
                             f"--ServerApp.root_dir={REPO / 'notebooks'}", "--allow-root"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, base, token, timeout_s=60)
        with urllib.request.urlopen(f"{base}/api/contents/{A}/{A}.ipynb?token={token}", timeout=10) as r:
            model = json.loads(r.read())
        assert model["type"] == "notebook"
        assert any(c["metadata"].get("nbgrader", {}).get("grade") for c in model["content"]["cells"])
        with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10) as r:
            page = r.read().decode()
        assert r.status == 200 and "JupyterLab" in page
        import jupyterlab
        assert int(jupyterlab.__version__.split(".")[0]) == 4
        ext = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"],
                             capture_output=True, text=True)
        assert "nbgrader" in ext.stdout + ext.stderr, "nbgrader's JupyterLab extension (validate button) is missing"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
