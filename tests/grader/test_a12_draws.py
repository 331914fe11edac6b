"""Assignment 12's mutants on many draws, in process: a wrong implementation must fail every test it
names on every seed, visible and hidden alike, and a right one pass them all (the class test in
test_mutants.py grades one draw per student; a case that catches a slip only on some draws gives
identical code different grades, as a dx without the transpose of A_hat once did)."""
from __future__ import annotations

import warnings

import pytest

import dlhw.nn.graphs as G
from dlhw.checks import core
from grader.build import source_of
from grader.mutants import load

SEEDS = range(12)
WRONG, RIGHT = load("12_graph_neural_networks")
REFS = {"message_passing_forward": ["dlhw.nn.graphs:init_message_passing_params",
                                    "dlhw.nn.graphs:message_passing_forward"]}


def _functions(m):
    src = "\n\n".join(source_of(r) for r in REFS.get(m.answer, [f"dlhw.nn.graphs:{m.answer}"]))
    space = dict(vars(G))          # the reference's other functions (as the judge's dependencies)
    exec(compile(m.apply(src), f"<mutant {m.why}>", "exec"), space)
    return space


def _checks_of(test_ids):
    core._load_registry()
    return [n for n in core.REGISTRY if "test_" + n.replace(".", "_") in test_ids]


def _verdicts(m, names):
    space = _functions(m)
    for name in names:
        chk = core.get(name)
        fns = tuple(space[f] if f == m.answer else getattr(G, f) for f in chk.functions)
        for seed in SEEDS:
            for hidden in (False, True):
                inputs = core.draw_inputs(chk, hidden, seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    outputs = core._run_probe(chk, fns, inputs)
                yield name, seed, hidden, core.judge(chk, inputs, outputs)


@pytest.mark.parametrize("m", WRONG, ids=[m.why for m in WRONG])
def test_wrong_fails_on_every_draw(m):
    for name, seed, hidden, (passed, message) in _verdicts(m, _checks_of(set(m.fails))):
        assert not passed, f"'{m.why}' passes {name} (seed {seed}, hidden={hidden}): {message[:200]}"


@pytest.mark.parametrize("m", RIGHT, ids=[m.why for m in RIGHT])
def test_right_passes_on_every_draw(m):
    core._load_registry()
    names = [n for n in core.REGISTRY if m.answer in core.get(n).functions]
    assert names
    for name, seed, hidden, (passed, message) in _verdicts(m, names):
        assert passed, f"'{m.why}' fails {name} (seed {seed}, hidden={hidden}): {message[:300]}"
