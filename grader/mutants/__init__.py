"""Tests of the tests: realistic wrong implementations and correct alternatives.

Each assignment's module ``grader.mutants.aNN`` lists ``WRONG`` and ``RIGHT``, both lists of
:class:`Mutant`. A mutant is one answer cell changed: either a replacement of a snippet of the
reference answer (so that it stays a one-line slip, like a real student's) or a whole new
answer cell. The test suite grades them through the real pipeline as a class of students:
every wrong one must lose the points of the tests it names, every right one must get full
marks.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple


@dataclass
class Mutant:
    answer: str                                    # grade_id of the answer cell it changes
    why: str                                       # the mistake (or the alternative) in words
    replace: Sequence[Tuple[str, str]] = ()        # (old, new) snippets applied to the reference answer
    code: Optional[str] = None                     # or: the whole answer cell
    fails: Sequence[str] = field(default_factory=list)   # grade_ids of the tests that must lose points
    hint: str = ""                                 # text each failing test's message must contain:
                                                   # the hint that names the real cause

    def apply(self, reference: str) -> str:
        if self.code is not None:
            return self.code
        src = reference
        for old, new in self.replace:
            if old not in src:
                raise ValueError(f"mutant {self.why!r}: {old!r} is not in the reference answer {self.answer}")
            src = src.replace(old, new)
        if src == reference:
            raise ValueError(f"mutant {self.why!r} changes nothing")
        return src


def load(assignment: str) -> Tuple[List[Mutant], List[Mutant]]:
    """(WRONG, RIGHT) of an assignment (``02_mlp_backprop`` -> ``grader.mutants.a02``)."""
    try:
        mod = importlib.import_module(f"grader.mutants.a{assignment[:2]}")
    except ImportError:
        return [], []
    return list(getattr(mod, "WRONG", [])), list(getattr(mod, "RIGHT", []))


def student_answers(solution: Dict[str, str], mutant: Mutant) -> Dict[str, str]:
    """A perfect student's answers with ``mutant`` applied."""
    answers = dict(solution)
    answers[mutant.answer] = mutant.apply(solution[mutant.answer])
    return answers
