"""dlhw's grading side: building the course, autograding, feedback and export on nbgrader.

Modules: ``course`` (the nbgrader course directory), ``build`` (generated files), ``kit``
(the student kit), ``assemble`` (the notebook to grade), ``sandbox`` (warm, sandboxed
execution with an out-of-process judge), ``autograde``, ``feedback``, ``demo``, and ``cli``
(the ``dlhw`` command).
"""
import os
import sys

# nbgrader's Gradebook runs the `alembic` command of its own environment; make sure that
# environment's bin folder is on PATH even when Python was started by its full path.
_bin = os.path.dirname(sys.executable)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")
