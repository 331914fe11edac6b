"""``python -m grader``: the full package's ``dlhw`` command (instructor commands and ``check``),
for shells where the ``dlhw`` script is not on the PATH."""
import sys

from grader.cli import main

sys.exit(main())
