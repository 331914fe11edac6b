"""The student install path, for real: a fresh environment made by the student install command."""
