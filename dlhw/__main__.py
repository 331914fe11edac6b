"""``python -m dlhw``: the student's ``dlhw`` command (``check``), for shells where the script is
not on the PATH (JupyterLab's terminal, a notebook's ``!python -m dlhw check NAME``). The
instructor commands are ``python -m grader ...`` (or the full package's ``dlhw`` script)."""
import sys

from dlhw.cli import main

sys.exit(main())
