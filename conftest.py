"""Every pytest session (the controller and each xdist worker) first brings the build outputs up to
date: each assignment's blocks.py and the student kit in notebooks/_kit, which the repository does
not commit (grader/build.py, BUILD_OUTPUTS). It takes about a second, writes only what changed
(atomically, under a lock), and so no test or notebook (nbval runs solutions/) ever sees a
missing or stale copy of dlhw's code."""


def pytest_configure(config):
    from grader.build import build_outputs
    build_outputs()
