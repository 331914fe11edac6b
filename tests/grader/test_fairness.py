"""Fairness of hidden tests: identical code gets identical grades, and hidden tests hold no surprise.

Every check runs a fixed list of cases (``dlhw.checks.core.Cases``): each case names the
properties of the contract it exercises (leading axes, N = 1, stride 2, absent running
statistics, logits of 1e3...), and only the values and sizes inside those classes are drawn per
student. So

* the cases of a check, and the properties of each, are the same whatever the seed (and where
  the check can recognize its properties in drawn inputs, ``measure``, they are really there);
* every property a hidden case exercises is exercised by a visible case: a student who passes
  the visible checks cannot lose hidden points on a rule no visible check showed;
* graded as several students (different per-student seeds), the same submission gets the same
  score on every test.
"""
from __future__ import annotations

import pytest

from dlhw.checks import catalog, core

# assignments whose checks all run fixed cases (09's ports run the cases of the numpy layers'
# checks they reuse); only get_device, which has no inputs, is left out
CONVERTED = tuple(catalog.ASSIGNMENT_OF)
NO_INPUTS = ("get_device",)
SEEDS = range(8)


def _checks():
    core._load_registry()
    return sorted(core.REGISTRY)


def _module(chk) -> str:
    spec = getattr(chk.inputs, "cases_spec", None)
    if spec is not None:
        return spec.visible[0].make.__module__
    return getattr(chk.inputs, "__module__", "")


def _with_cases():
    return [n for n in _checks() if core.case_listing(n, 0, False) is not None]


def test_converted_assignments_run_fixed_cases_only():
    missing = [n for n in _checks() if _module(core.get(n)) in CONVERTED and n not in NO_INPUTS
               and core.case_listing(n, 0, False) is None]
    assert not missing, f"checks without fixed cases (core.Cases) in converted assignments: {missing}"
    assert len(_with_cases()) >= 100


@pytest.mark.parametrize("name", _with_cases())
def test_case_properties_do_not_depend_on_the_seed(name):
    for hidden in (False, True):
        first = [(c, props) for c, props, _ in core.case_listing(name, 0, hidden)]
        assert first, f"{name} has no {'hidden' if hidden else 'visible'} cases"
        for seed in SEEDS:
            listing = core.case_listing(name, seed, hidden)
            assert [(c, props) for c, props, _ in listing] == first, f"{name}: the case list changes with the seed"
            for case, declared, measured in listing:
                assert measured is None or measured == declared, (
                    f"{name}, case {case!r} ({'hidden' if hidden else 'visible'}, seed {seed}): declares "
                    f"{sorted(declared)} but its inputs exercise {sorted(measured)}")


@pytest.mark.parametrize("name", _with_cases())
def test_hidden_properties_are_exercised_by_visible_cases(name):
    visible = set().union(*(props for _, props, _ in core.case_listing(name, 0, False)))
    hidden = set().union(*(props for _, props, _ in core.case_listing(name, 0, True)))
    assert hidden <= visible, (f"{name}: hidden cases exercise {sorted(hidden - visible)}, which no visible case "
                               "does (a surprise the student cannot fix)")


def test_a_failing_case_is_named():
    def flat(x, w, b):
        return x.reshape(len(x), -1) @ w + b, None

    def unflattened(x, w, b):
        return x @ w + b, None                 # no flattening: the (N, d1, d2) case fails

    chk = core.get("affine_forward")
    inputs = core.draw_inputs(chk, False)
    passed, message = core.judge(chk, inputs, core._run_probe(chk, (unflattened,), inputs))
    assert not passed and "[case '(N, d1, d2) input']" in message, message
    passed, message = core.judge(chk, inputs, core._run_probe(chk, (flat,), inputs))
    assert passed and "all 4 cases" in message, message


# ----------------------------------------------------------------------------- graded as a class
# The mutants whose outcome once depended on a drawn property (absent running statistics, width
# parity, leading axes, logits of 1e3...), each graded as three students with different seeds.
FAIRNESS = {
    "02_mlp_backprop": ("affine_forward", "affine_backward", "sigmoid_forward", "softmax_loss"),
    "05_training_deep_nets": ("batchnorm_forward", "batchnorm_backward", "layernorm_forward", "dropout_forward"),
    "06_cnn": ("max_pool_forward", "max_pool_backward", "spatial_batchnorm_forward", "spatial_batchnorm_backward"),
}
COPIES = 3


@pytest.mark.slow
@pytest.mark.parametrize("assignment", [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in FAIRNESS])
def test_identical_submissions_get_identical_scores(tmp_path, assignment):
    from grader.mutants import load, student_answers
    from grader.simulate import make_submission, write_submission
    from tests.grader.conftest import grade_class

    wrong, _right = load(assignment)
    chosen = [m for m in wrong if m.answer in FAIRNESS[assignment]]
    assert chosen, f"no mutants of {FAIRNESS[assignment]} in {assignment}"

    def writer(m):
        def make(course, subs, student, assignment, nbname, sol):
            write_submission(subs, student, assignment, nbname,
                             make_submission(course, assignment, nbname, student_answers(sol, m)))
        return make

    extra = {f"m{i:02d}{chr(ord('a') + k)}": writer(m) for i, m in enumerate(chosen) for k in range(COPIES)}
    _, res, _ = grade_class(tmp_path, assignment, extra=extra, mutants=False)
    uneven = []
    for i, m in enumerate(chosen):
        copies = [res[f"m{i:02d}{chr(ord('a') + k)}"] for k in range(COPIES)]
        scores = [{t["name"]: t["score"] for t in r["tests"]} for r in copies]
        if any(s != scores[0] for s in scores[1:]):
            diff = {t: [s.get(t) for s in scores] for t in scores[0] if len({s.get(t) for s in scores}) > 1}
            uneven.append(f"'{m.why}' ({m.answer}): {diff}")
    assert not uneven, "identical submissions graded differently:\n" + "\n".join(uneven)


# The overflow and log(0) mistakes are caught by a drawn case ("scores/logits of 1e3"): every
# student's draw must expose them, not only most draws (before the cases forced a +1500 score
# and a label 800 below its row's max, 28 of 400 draws let the log of a probability through).
_UNSTABLE = [("dlhw.linear", "softmax_regression_loss", "01_linear_models",
              ("softmax_regression_loss.loss", "softmax_regression_loss.grad")),
             ("dlhw.nn.losses", "softmax_loss", "02_mlp_backprop", ("softmax_loss.loss", "softmax_loss.dx"))]


@pytest.mark.parametrize("module, function, assignment, checks", _UNSTABLE, ids=[u[1] for u in _UNSTABLE])
def test_unstable_softmax_is_caught_for_every_student(module, function, assignment, checks):
    import importlib
    import inspect
    import textwrap
    import numpy as np
    from grader.mutants import load
    core._load_registry()
    mod = importlib.import_module(module)
    source = textwrap.dedent(inspect.getsource(getattr(mod, function)))
    wrong = [m for m in load(assignment)[0] if m.answer == function and m.replace
             and any(k in m.why for k in ("log of the prob", "max shift", "max subtraction"))]
    assert len(wrong) == 2, [m.why for m in wrong]

    def failures(fn, seeds=range(120)):
        missed = []
        for seed in seeds:
            verdicts = []
            for name in checks:
                chk = core.get(name)
                inp = core.draw_inputs(chk, hidden=True, seed=seed)
                with np.errstate(all="ignore"):
                    verdicts.append(core.judge(chk, inp, core._run_probe(chk, (fn,), inp))[0])
            if not all(verdicts):
                missed.append(seed)
        return missed

    assert failures(getattr(mod, function)) == [], "the reference fails a draw"
    for m in wrong:
        ns = dict(vars(mod))
        exec(m.apply(source), ns)
        passed = sorted(set(range(120)) - set(failures(ns[function])))
        assert passed == [], f"{m.why!r} passes every check for the seeds {passed[:10]}"
