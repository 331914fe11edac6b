"""How a check's verdict reads: short lines instead of a stack, one line per blocked function,
the hidden-tests note once, and NumPy 1 code named as such."""
from __future__ import annotations

import numpy as np
import pytest

from dlhw.checks.core import CheckFailed, check, message_lines, numpy1_note, report
from dlhw.nn import layers


def test_a_failing_check_renders_as_its_wrapped_message():
    exc = CheckFailed("affine_forward: " + "a long verdict " * 20)
    lines = exc._render_traceback_()          # what IPython shows instead of a traceback
    assert lines[0].startswith("\u2717 affine_forward: ")
    assert all(len(line) <= 80 for line in lines) and len(lines) > 2
    assert " ".join(line.strip() for line in lines) == "\u2717 " + str(exc).strip()
    assert message_lines("one\ntwo") == ["one", "two"]


def _unimplemented_forward(x, w, b):
    raise NotImplementedError()


def _unimplemented_backward(dout, cache):
    raise NotImplementedError()


_unimplemented_forward.__name__ = "affine_forward"
_unimplemented_backward.__name__ = "affine_backward"


def test_report_says_once_that_a_backward_waits_for_its_forward(capsys):
    with pytest.raises(CheckFailed, match="4 of 4 checks failed"):
        report(_unimplemented_forward, _unimplemented_backward)
    out = capsys.readouterr().out
    assert "affine_backward's 3 checks wait for affine_forward" in out
    assert out.count("is not implemented yet") == 1, out
    with pytest.raises(CheckFailed, match="3 of 4 checks failed"):
        report(layers.affine_forward, _unimplemented_backward)
    out = capsys.readouterr().out
    assert out.count("affine_backward is not implemented yet") == 1, out


def test_a_graded_check_of_a_backward_names_the_forward_it_waits_for():
    with pytest.raises(CheckFailed) as info:
        check("affine_backward.dx", _unimplemented_forward, _unimplemented_backward)
    assert "waits for affine_forward" in str(info.value) and "NotImplementedError" in str(info.value)


def test_the_hidden_tests_note_is_a_line_of_its_own_once(capsys):
    from dlhw.checks import core
    core._NOTE_SHOWN_IN[0] = object()         # as in a fresh cell
    check("affine_forward", layers.affine_forward)
    check("affine_forward", layers.affine_forward)
    out = capsys.readouterr().out.splitlines()
    assert out.count(core.HIDDEN_NOTE) == 1
    assert all(core.HIDDEN_NOTE not in line for line in out if line.startswith("\u2713"))


@pytest.mark.parametrize("code, says", [
    ("np.int(3)", "this is NumPy 1 code: np.int was removed in NumPy 1.24; use int"),
    ("np.float_(3)", "this is NumPy 1 code: np.float_ was removed in NumPy 2.0; use np.float64"),
    ("np.lib.pad(np.zeros(2), 1)", "this is NumPy 1 code: np.lib.pad was removed"),
    ("np.zeros(6).reshape(newshape=(2, 3))", "this is NumPy 1 code: reshape's keyword newshape="),
    ("np.reshape(np.zeros(6), newshape=(2, 3))", "this is NumPy 1 code: reshape's keyword newshape="),
])
def test_numpy1_code_is_named(code, says):
    with pytest.raises(Exception) as info:
        eval(code)
    assert says in numpy1_note(info.value)


def test_other_errors_are_not_called_numpy1_code():
    assert numpy1_note(AttributeError("'list' object has no attribute 'shape'")) == ""
    assert numpy1_note(TypeError("unsupported operand")) == ""


def test_a_crash_from_numpy1_code_says_so():
    def affine_forward(x, w, b):
        return x.reshape(x.shape[0], -1).astype(np.float) @ w + b, None
    with pytest.raises(CheckFailed) as info:
        check("affine_forward", affine_forward)
    msg = str(info.value)
    assert "this is NumPy 1 code: np.float was removed" in msg
    assert "in affine_forward, line" in msg        # the student's line, not numpy's __getattr__
