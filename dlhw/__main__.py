"""``python -m dlhw``: the ``dlhw`` command, for shells where the script is not on the PATH
(JupyterLab's terminal, a notebook's ``!python -m dlhw check NAME``)."""
import sys

from dlhw.cli import main

sys.exit(main())
