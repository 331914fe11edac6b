"""A JupyterLab 4 server on a copy of the release, and headless Chromium driven by Selenium.

Everything comes from the machine: Debian's ``chromium`` and ``chromium-driver`` (installed by
``.ci/setup``) and the ``selenium`` package of the dev extra; nothing is downloaded at run time.
Screenshots of every step go to ``test-artifacts/browser/`` (git-ignored; CI keeps them).
Every wait is bounded and says, when it runs out, what it waited for and where the screenshot is.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.lab_server import free_port, wait_until_up
from tests.student.conftest import cached_student_venv

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Chromium as root in a closed network: no sandbox, no GPU, and none of its background traffic.
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000")
SERVER_START_S = 90


@pytest.fixture(scope="session")
def lab_venv() -> Path:
    """The student's environment, whose JupyterLab, nbgrader extensions and kernel the browser uses:
    the one the student install command makes (tests/student), without dlhw's reference package."""
    return cached_student_venv()


class Lab:
    """A running ``jupyter lab`` (no browser, a token, a free port) serving ``root``."""

    def __init__(self, venv: Path, root: Path, home: Path):
        self.root, self.token, self.port = root, "dlhw-browser-test", free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "jupyterlab.log"
        cfg = home / "jupyter-config"
        # a fresh user config: default settings, no saved workspace, no news toast
        settings = cfg / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        env.update(JUPYTER_CONFIG_DIR=str(cfg), JUPYTER_DATA_DIR=str(home / "jupyter-data"),
                   JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"), IPYTHONDIR=str(home / "ipython"),
                   PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
        python = venv / "bin" / "python"
        if not python.exists():
            pytest.fail(f"no Python in the student environment {venv}")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(python), "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={self.port}",
             "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=root)
        try:
            self._wait_up()
        except BaseException:
            self.stop()
            raise

    def _wait_up(self):
        wait_until_up(self.proc, self.base, self.token, SERVER_START_S, log_tail=self.log_tail)

    def url(self, path: str) -> str:
        return f"{self.base}/{path}?token={self.token}"

    def log_tail(self, n: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._log.close()


@pytest.fixture
def lab(lab_venv, tmp_path):
    """JupyterLab serving a temporary copy of the released assignment 02."""
    root = tmp_path / "course"
    shutil.copytree(REPO / "notebooks" / "02_mlp_backprop", root / "02_mlp_backprop")
    server = Lab(lab_venv, root, tmp_path)
    yield server
    server.stop()


@pytest.fixture
def artifacts() -> Path:
    """test-artifacts/browser/, emptied of the previous run's screenshots."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS


@pytest.fixture
def driver(tmp_path, monkeypatch):
    """Headless Debian Chromium through Debian's chromedriver (never Selenium Manager's downloads)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: run `bash .ci/setup` as root "
                    "(it installs Debian's chromium and chromium-driver)")
    monkeypatch.setenv("SE_OFFLINE", "true")     # Selenium Manager, should anything call it: no network
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    log = tmp_path / "chromedriver.log"
    service = Service(CHROMEDRIVER, log_output=str(log))
    try:
        d = webdriver.Chrome(service=service, options=options)
    except Exception as e:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        pytest.fail(f"could not start headless {CHROMIUM} through {CHROMEDRIVER}: {e}\n{tail}", pytrace=False)
    d.set_page_load_timeout(60)
    d.set_script_timeout(30)
    yield d
    try:
        d.quit()
    finally:
        if service.process and service.process.poll() is None:
            service.process.kill()
