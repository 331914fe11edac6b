"""Tests of the tests: every assignment graded as a class of simulated students.

For each assignment: the perfect submission gets full marks, the unfilled release gets zero
with NotImplementedError messages on every test, each realistic wrong implementation
(grader.mutants.aNN.WRONG) loses the points of the tests it names, and each correct but
differently written one (RIGHT) gets full marks.
"""
import pytest

from tests.grader.conftest import ASSIGNMENTS

pytestmark = pytest.mark.slow
PARAMS = [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in ASSIGNMENTS]


@pytest.mark.parametrize("assignment", PARAMS)
def test_perfect_submission_gets_full_marks(graded_class, assignment):
    _, res, _ = graded_class(assignment)
    r = res["perfect"]
    assert r["max_score"] == 100, f"{assignment} is worth {r['max_score']} points, not 100"
    lost = [(t["name"], t["output"]) for t in r["tests"] if t["score"] < t["max_score"]]
    assert not lost, f"the solution loses points: {lost}"


@pytest.mark.parametrize("assignment", PARAMS)
def test_unfilled_release_scores_zero_with_clear_messages(graded_class, assignment):
    _, res, _ = graded_class(assignment)
    r = res["empty"]
    assert r["score"] == 0
    for t in r["tests"]:
        assert "NotImplementedError" in t["output"], f"{t['name']}: {t['output'][:300]}"


@pytest.mark.parametrize("assignment", PARAMS)
def test_every_wrong_implementation_loses_points(graded_class, assignment):
    _, res, who = graded_class(assignment)
    wrong = {s: m for s, m in who.items() if s.startswith("wrong")}
    assert len(wrong) >= 5, f"{assignment} needs realistic wrong implementations in grader/mutants"
    for student, m in wrong.items():
        r = res[student]
        scores = {t["name"].split(" ")[0]: t for t in r["tests"]}
        assert r["score"] < 100, f"{m.answer}: '{m.why}' gets full marks"
        for gid in m.fails:
            assert gid in scores, f"mutant '{m.why}' names an unknown test {gid}"
            assert scores[gid]["score"] == 0, f"{gid} does not catch '{m.why}': {scores[gid]['output'][:200]}"


@pytest.mark.parametrize("assignment", PARAMS)
def test_hints_name_the_real_cause(graded_class, assignment):
    """A wrong implementation with a stated ``hint`` is told that cause, in every test it fails."""
    _, res, who = graded_class(assignment)
    hinted = {s: m for s, m in who.items() if s.startswith("wrong") and m.hint}
    for student, m in hinted.items():
        scores = {t["name"].split(" ")[0]: t for t in res[student]["tests"]}
        for gid in m.fails:
            # on single spaces: a message may be wrapped onto several lines
            output = " ".join(scores[gid]["output"].split())
            assert m.hint in output, f"{gid} does not tell '{m.why}' that {m.hint!r}: {output[:600]}"


@pytest.mark.parametrize("assignment", PARAMS)
def test_every_correct_alternative_gets_full_marks(graded_class, assignment):
    _, res, who = graded_class(assignment)
    right = {s: m for s, m in who.items() if s.startswith("right")}
    assert len(right) >= 2, f"{assignment} needs correct alternative implementations in grader/mutants"
    for student, m in right.items():
        r = res[student]
        lost = [(t["name"], t["output"][:200]) for t in r["tests"] if t["score"] < t["max_score"]]
        assert not lost, f"the correct variant '{m.why}' ({m.answer}) loses points: {lost}"


@pytest.mark.parametrize("assignment", PARAMS)
def test_gradebook_agrees_with_results_and_feedback_hides_hidden_tests(graded_class, assignment):
    from grader.feedback import feedback
    course, res, _ = graded_class(assignment)
    with course.gradebook() as gb:
        scores = {s.student.id: s.score for s in gb.assignment_submissions(assignment)}
    assert scores == {s: r["score"] for s, r in res.items()}
    out = feedback(course, assignment, quiet=True)
    pages = list(out.glob(f"*/{assignment}/*.html"))
    assert len(pages) == len(res)
    for page in pages:
        html = page.read_text()
        assert "hidden=True" not in html and "HIDDEN TESTS" not in html, f"{page} shows hidden test code"
    wrong = next((s for s in res if s.startswith("wrong")), None)
    if wrong:
        html = (out / wrong / assignment / f"{course.source_notebooks(assignment)[0].stem}.html").read_text()
        assert "[grader] \u2717" in html, "feedback must show the failed verdicts and their messages"


def _defined(code: str) -> set:
    import ast
    return {n.name for n in ast.walk(ast.parse(code)) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


@pytest.mark.parametrize("assignment", PARAMS)
def test_a_mistake_costs_only_its_own_functions_points(graded_class, assignment):
    """A wrong function loses only tests whose checks grade it (a layer's backward is graded with
    its own forward, the contract's cache; every other dependency is evaluated by the judge's
    reference during the dependent function's check: dlhw/checks/deps.py)."""
    import nbformat
    from dlhw.checks import core
    from dlhw.checks.deps import IN_PROCESS
    from grader.assemble import check_calls
    from grader.course import is_test_cell, nbgrader_meta
    from grader.mutants import student_answers
    from grader.simulate import solution_answers
    course, res, who = graded_class(assignment)
    core._load_registry()
    graded = {}
    for src in course.source_notebooks(assignment):
        for cell in nbformat.read(src, as_version=4).cells:
            if is_test_cell(cell):
                functions = {f for name, _ in check_calls(cell) for f in core.get(name).functions}
                graded[nbgrader_meta(cell)["grade_id"]] = functions | {d for f in functions
                                                                       for d in IN_PROCESS.get(f, ())}
    sol = solution_answers(course, assignment, course.source_notebooks(assignment)[0].stem)
    collateral = []
    for student, m in who.items():
        if not student.startswith("wrong"):
            continue
        changed = _defined(student_answers(sol, m)[m.answer]) or {m.answer}
        for t in res[student]["tests"]:
            gid = t["name"].split(" ")[0]
            if t["score"] < t["max_score"] and not (graded.get(gid, set()) & changed):
                collateral.append(f"{m.answer} ('{m.why}') costs {gid} {t['max_score']:g} points: {t['output'][:150]}")
    assert not collateral, "\n".join(collateral)
