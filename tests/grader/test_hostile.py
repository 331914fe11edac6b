"""Broken and hostile submissions, graded in one batch beside a correct one (issue: hardening).

Each case is a student of assignment 02 whose answers are right except for what the case
breaks; the test checks the grade and the message, and that the rest of the class is graded.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import nbformat
import pytest

from grader.course import REPO, is_answer_cell, is_test_cell, nbgrader_meta
from grader.sandbox.client import bwrap_path
from grader.simulate import make_submission, write_submission
from tests.grader.conftest import grade_class

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hostile")]
A = "02_mlp_backprop"
AFFINE_TESTS = ["test_affine_forward", "test_affine_backward_dx", "test_affine_backward_dw", "test_affine_backward_db"]


def _with(answer_gid, code):
    def make(course, subs, student, assignment, nbname, sol):
        answers = dict(sol)
        answers[answer_gid] = code
        write_submission(subs, student, assignment, nbname, make_submission(course, assignment, nbname, answers))
    return make


def _appended(code):
    """Right answers, plus ``code`` appended to the affine_forward answer cell."""
    def make(course, subs, student, assignment, nbname, sol):
        answers = dict(sol)
        answers["affine_forward"] = sol["affine_forward"] + "\n\n" + code
        write_submission(subs, student, assignment, nbname, make_submission(course, assignment, nbname, answers))
    return make


def _nb_edit(edit):
    def make(course, subs, student, assignment, nbname, sol):
        nb = make_submission(course, assignment, nbname, sol)
        edit(nb)
        write_submission(subs, student, assignment, nbname, nb)
    return make


def _renamed(course, subs, student, assignment, nbname, sol):
    nb = make_submission(course, assignment, nbname, sol)
    folder = Path(subs) / student / assignment
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{nbname} (1).ipynb")


def _invalid_json(course, subs, student, assignment, nbname, sol):
    write_submission(subs, student, assignment, nbname, raw='{"cells": [{"cell_type": "code",,}')


def _delete_and_duplicate(nb):
    tests = [c for c in nb.cells if is_test_cell(c)]
    answers = [c for c in nb.cells if is_answer_cell(c)]
    drop = {id(c) for c in tests[:3]}
    nb.cells = [c for c in nb.cells if id(c) not in drop]
    nb.cells.insert(0, nbformat.from_dict(json.loads(json.dumps(answers[1]))))   # a duplicate answer
    nb.cells.append(nbformat.from_dict(json.loads(json.dumps(tests[-1]))))       # a duplicate test


def _blank_tests_wrong_answer(course, subs, student, assignment, nbname, sol):
    answers = dict(sol)
    answers["affine_backward"] = sol["affine_backward"].replace("dout.sum(axis=0)", "dout.sum(axis=1)")
    nb = make_submission(course, assignment, nbname, answers)
    for c in nb.cells:
        if is_test_cell(c):
            c.source = "" if "affine" in nbgrader_meta(c)["grade_id"] else "print('edited')\n" + c.source
    write_submission(subs, student, assignment, nbname, nb)


MONKEYPATCH = '''
import builtins, numpy as np, dlhw.checks, dlhw.checks.core as core
np.allclose = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
core.compare = lambda *a, **k: 0.0
core.judge = lambda *a, **k: (True, "ok")
builtins.AssertionError = Exception
def affine_forward(x, w, b):      # wrong: no bias
    return x.reshape(x.shape[0], -1) @ w, (x, w)
'''

BYPASS = '''
import dlhw.checks
def _pass(*a, **k):
    print("\\u2713 all good")
dlhw.checks.check = _pass
check = _pass
def affine_forward(x, w, b):
    return None, None
'''

SANDBOX_PROBE = f'''
import os, socket
for p in {[str(REPO / "solutions"), str(REPO / "dlhw" / "nn" / "layers.py"), "/etc/shadow"]!r}:
    print("READ", p, os.path.exists(p))
try:
    socket.create_connection(("pypi.org", 443), timeout=3); print("NET open")
except OSError as e:
    print("NET closed")
try:
    import dlhw.nn.layers; print("REFERENCE importable")
except ImportError:
    print("REFERENCE hidden")
'''

CASES = {
    "loops-forever": _with("relu_forward", "def relu_forward(x):\n    while True:\n        pass"),
    "eats-memory": _appended("hog = [np.empty(1 << 27) for _ in range(64)]   # 64 GiB, far past the cap"),
    "exits": _with("sigmoid_forward", "import os\nos._exit(3)"),
    "invalid-json": _invalid_json,
    "renamed": _renamed,
    "deleted-duplicated": _nb_edit(_delete_and_duplicate),
    "blanked-tests": _blank_tests_wrong_answer,
    "noisy": _appended("import sys, warnings\nwarnings.warn('deprecated thing')\nprint('to stderr', file=sys.stderr)"),
    "huge-output": _appended("for i in range(200000):\n    print('spam' * 10)"),
    "monkeypatch": _appended(MONKEYPATCH),
    "bypass-checks": _appended(BYPASS),
    "sandbox-probe": _appended(SANDBOX_PROBE),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    course, res, _ = grade_class(root, A, extra=CASES, cell_timeout=8, mutants=False)
    return root, course, res


def _by_test(r):
    return {t["name"].split(" ")[0]: t for t in r["tests"]}


def test_correct_student_unaffected(hostile):
    _, _, res = hostile
    assert res["perfect"]["score"] == 100


def test_infinite_loop_times_out_and_rest_is_graded(hostile):
    r = _by_test(hostile[2]["loops-forever"])
    assert r["test_relu_forward"]["score"] == 0
    assert "ran longer than the limit" in r["test_relu_forward"]["output"]
    assert r["test_affine_forward"]["score"] == r["test_affine_forward"]["max_score"]
    assert r["test_two_layer_net_grads"]["score"] == 0 or True  # uses relu: may fail, must not hang


def test_memory_exhaustion_costs_only_that_cell(hostile):
    # the cap stops the allocation with a MemoryError in that cell; what it defined before
    # stays defined, so the (correct) functions keep their points
    r = hostile[2]["eats-memory"]
    assert "MemoryError" in r["output"]
    assert r["score"] == 100


def test_kernel_exit_scores_rest_zero(hostile):
    r = hostile[2]["exits"]
    t = _by_test(r)
    assert t["test_affine_forward"]["score"] == t["test_affine_forward"]["max_score"]   # before the exit
    assert t["test_sigmoid_forward"]["score"] == 0
    assert t["test_two_layer_net_grads"]["score"] == 0                                 # after it
    assert any("kernel died" in n for n in r["output"].split("\n"))


def test_invalid_json_named_with_line(hostile):
    r = hostile[2]["invalid-json"]
    assert r["score"] == 0
    assert "not valid notebook JSON" in r["output"] and "line 1" in r["output"]


def test_renamed_notebook_found(hostile):
    r = hostile[2]["renamed"]
    assert r["score"] == 100
    assert "(1).ipynb" in r["output"]


def test_deleted_and_duplicated_cells_restored(hostile):
    r = hostile[2]["deleted-duplicated"]
    assert r["score"] == 100
    assert "deleted: restored" in r["output"]


def test_blanked_test_cells_restored_and_still_catch(hostile):
    r = hostile[2]["blanked-tests"]
    t = _by_test(r)
    assert t["test_affine_backward_db"]["score"] == 0
    assert t["test_affine_forward"]["score"] == t["test_affine_forward"]["max_score"]
    assert "edited: restored" in r["output"]


def test_warnings_and_stderr_cost_nothing(hostile):
    assert hostile[2]["noisy"]["score"] == 100


def test_huge_output_truncated(hostile):
    root, course, res = hostile
    assert res["huge-output"]["score"] == 100
    nb = nbformat.read(course.autograded_dir("huge-output", A) / f"{A}.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "truncated by the grader" in text
    assert len(text) < 500_000


def test_monkeypatching_earns_nothing(hostile):
    t = _by_test(hostile[2]["monkeypatch"])
    assert t["test_affine_forward"]["score"] == 0
    assert "relative error" in t["test_affine_forward"]["output"]


def test_bypassing_check_earns_nothing(hostile):
    t = _by_test(hostile[2]["bypass-checks"])
    assert t["test_affine_forward"]["score"] == 0
    assert "did not report" in t["test_affine_forward"]["output"]


@pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap not installed: no sandbox to test")
def test_sandbox_hides_solutions_network_and_reference(hostile):
    root, course, res = hostile
    nb = nbformat.read(course.autograded_dir("sandbox-probe", A) / f"{A}.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "NET closed" in text and "REFERENCE hidden" in text
    assert "True" not in "".join(l for l in text.splitlines() if l.startswith("READ"))


def test_regrading_gives_the_same_gradebook(hostile, tmp_path):
    from grader.autograde import autograde
    root, course, res = hostile

    def snapshot():
        con = sqlite3.connect(course.db_path)
        rows = con.execute("select id, auto_score, manual_score from grade order by id").fetchall()
        con.close()
        return rows

    before = snapshot()
    autograde(course, A, root / "submitted", tmp_path / "again", workers=2, progress=False, cell_timeout=8,
              students=["perfect", "blanked-tests", "monkeypatch", "exits"])
    assert snapshot() == before
