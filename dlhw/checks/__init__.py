"""Checks that students run in their notebooks and that graded test cells call.

    from dlhw.checks import check
    check("affine_forward", affine_forward)
    check("affine_backward.dw", affine_forward, affine_backward)

Every check compares with independent oracles (PyTorch in float64 and its autograd), never
with dlhw's own reference, and says precisely what is wrong when it fails.
"""
from dlhw.checks.core import CheckFailed, NotImplementedYet, check, report

__all__ = ["check", "report", "CheckFailed", "NotImplementedYet"]
