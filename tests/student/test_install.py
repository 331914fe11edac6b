"""The student's install, for real: a fresh venv made by `bash notebooks/_kit/install.sh` only
(see conftest.py), then the released notebook run in it, unfilled and filled."""
from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from pathlib import Path

import nbformat
import pytest

from grader.build import KERNELSPEC, LANGUAGE_INFO
from grader.course import Course
from grader.kit import INSTRUCTOR_LAB_PLUGINS, INSTRUCTOR_SERVER_EXTENSIONS
from grader.simulate import make_submission, solution_answers
from tests.lab_server import free_port, wait_until_up
from tests.student.conftest import ASSIGNMENT

pytestmark = [pytest.mark.slow]


def _env(venv: Path, tmp_path: Path) -> dict:
    """An activated student venv, with no user-level Jupyter config of this machine."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
           and not k.startswith("JUPYTER")}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv), HOME=str(home),
               JUPYTER_CONFIG_DIR=str(home / ".jupyter"), JUPYTER_DATA_DIR=str(home / ".local/share/jupyter"))
    return env


def _run(venv, tmp_path, *args, cwd=None, timeout=600):
    return subprocess.run([str(a) for a in args], cwd=cwd, env=_env(venv, tmp_path), capture_output=True,
                          text=True, timeout=timeout)


def _plain(proc) -> str:
    """stdout and stderr without the terminal colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)


def _course(venv: Path) -> Path:
    return venv.parent / "course"


def test_the_student_environment_is_the_kit_with_cpu_torch_and_no_dev_tools(student_venv, tmp_path):
    probe = textwrap.dedent("""
        import importlib.util, json, torch, dlhw, nbgrader, jupyterlab
        found = {m: importlib.util.find_spec(m) is not None
                 for m in ("pytest", "hypothesis", "nbval", "xdist", "grader", "dlhw.nn", "dlhw.checks")}
        print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "dlhw": dlhw.__file__,
                          "found": found}))
    """)
    out = _run(student_venv, tmp_path, student_venv / "bin" / "python", "-c", probe, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["torch"].startswith("2.13.0") and info["cuda"] is None, f"not the CPU build: {info}"
    assert str(student_venv) in info["dlhw"], "dlhw must come from the installed kit"
    assert info["found"] == {"pytest": False, "hypothesis": False, "nbval": False, "xdist": False,
                             "grader": False, "dlhw.nn": False, "dlhw.checks": True}, info["found"]
    for script in ("jupyter-lab", "dlhw"):
        assert (student_venv / "bin" / script).exists(), script


def test_jupyter_shows_students_their_tools_only(student_venv, tmp_path):
    jupyter = student_venv / "bin" / "jupyter"
    lab = _run(student_venv, tmp_path, jupyter, "labextension", "list")
    text = _plain(lab)
    assert "@jupyter/nbgrader" in text, "nbgrader's JupyterLab extension (Validate) is missing"
    disabled = text.split("Disabled extensions:")[1].split()
    assert set(disabled) >= set(INSTRUCTOR_LAB_PLUGINS), text
    assert not {"@jupyter/nbgrader:validate-assignment", "@jupyter/nbgrader:assignment-list",
                "@jupyter/nbgrader:menu"} & set(disabled)
    server = _run(student_venv, tmp_path, jupyter, "server", "extension", "list")
    states = {}
    for line in _plain(server).splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("nbgrader.server_extensions.") and \
                parts[1].endswith(("enabled", "disabled")):
            states[parts[0]] = "disabled" not in parts[1]
    assert states == {"nbgrader.server_extensions.validate_assignment": True,
                      "nbgrader.server_extensions.assignment_list": True,
                      **{name: False for name in INSTRUCTOR_SERVER_EXTENSIONS}}, _plain(server)


def _execute(venv, tmp_path, notebook: Path, allow_errors: bool) -> list:
    """Run ``notebook`` with nbclient in the student venv; per code cell: [solution?, ran?, error
    and the cell's printed output, or None]."""
    script = textwrap.dedent(f"""
        import json, sys, nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
        nb = nbformat.read({str(notebook)!r}, as_version=4)
        try:
            NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors={allow_errors!r},
                           resources={{"metadata": {{"path": {str(notebook.parent)!r}}}}}).execute()
        except CellExecutionError:
            pass
        cells = []
        for c in nb.cells:
            if c.cell_type != "code":
                continue
            outs = c.get("outputs", [])
            errs = [o for o in outs if o.get("output_type") == "error"]
            text = " ".join(o.get("text", "") if o.get("output_type") == "stream" else
                            str(o.get("data", {{}}).get("text/plain", "")) for o in outs if o.get("output_type") != "error")
            cells.append([bool(c.metadata.get("nbgrader", {{}}).get("solution")), c.get("execution_count") is not None,
                          (errs[0]["ename"] + ": " + errs[0]["evalue"] + " " + text) if errs else None])
        print(json.dumps(cells))
    """)
    out = _run(venv, tmp_path, venv / "bin" / "python", "-c", script, cwd=notebook.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_released_notebook_runs_up_to_its_first_unimplemented_function(student_venv, tmp_path):
    notebook = _course(student_venv) / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    cells = _execute(student_venv, tmp_path, notebook, allow_errors=False)
    first_error = next(i for i, (_, _, err) in enumerate(cells) if err)
    first_answer = next(i for i, (solution, _, _) in enumerate(cells) if solution)
    assert first_error > first_answer, "a cell before the first answer failed"
    assert all(ran and not err for _, ran, err in cells[:first_error]), cells[:first_error]
    assert "not implemented" in cells[first_error][2].lower(), cells[first_error]


def _filled(tmp_path: Path) -> Path:
    course = Course(root=tmp_path / "gradebook")
    folder = tmp_path / "filled" / ASSIGNMENT
    folder.mkdir(parents=True)
    nb = make_submission(course, ASSIGNMENT, ASSIGNMENT, solution_answers(course, ASSIGNMENT, ASSIGNMENT))
    nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
    return folder / f"{ASSIGNMENT}.ipynb"


def test_a_filled_notebook_runs_to_the_end(student_venv, tmp_path):
    cells = _execute(student_venv, tmp_path, _filled(tmp_path), allow_errors=False)
    assert all(ran and not err for _, ran, err in cells), [c for c in cells if c[2] or not c[1]][:3]


def test_python_m_dlhw_check_from_where_the_student_is(student_venv, tmp_path):
    python = student_venv / "bin" / "python"
    course = _course(student_venv)
    # JupyterLab's terminal in the course folder: a bare name, and the README's path
    out = _run(student_venv, tmp_path, python, "-m", "dlhw", "check", ASSIGNMENT, cwd=course)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "visible tests: 0 / 100 points" in out.stdout and "not implemented" in out.stdout
    assert out.stderr == "", f"the kernel's stderr leaks into the report: {out.stderr[:500]}"
    # a notebook's `!python -m dlhw check NAME` runs in the notebook's folder; the filled one passes
    filled = _filled(tmp_path)
    out = _run(student_venv, tmp_path, python, "-m", "dlhw", "check", ASSIGNMENT, cwd=filled.parent)
    assert out.returncode == 0 and "visible tests: 100 / 100 points" in out.stdout, out.stdout + out.stderr
    assert out.stderr == ""
    out = _run(student_venv, tmp_path, python, "-m", "dlhw", "check", "no_such_assignment", cwd=course)
    assert out.returncode == 2 and "no notebook 'no_such_assignment'" in out.stdout


def test_a_check_cell_in_the_notebook_does_not_recurse(student_venv, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("out = !python -m dlhw check probe"),
                nbformat.v4.new_code_cell("assert 'skipped here' in out.n, out.n",
                                          metadata={"nbgrader": {"grade": True, "grade_id": "probe_test",
                                                                 "points": 1, "solution": False}})]
    (tmp_path / "probe.ipynb").write_text(nbformat.writes(nb))
    # the venv not activated (jupyter lab from a launcher): the kernel's `!python` is still its own
    env = dict(_env(student_venv, tmp_path), PATH="/usr/local/bin:/usr/bin:/bin")
    env.pop("VIRTUAL_ENV")
    out = subprocess.run([str(student_venv / "bin" / "python"), "-m", "dlhw", "check", "probe"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0 and "visible tests: 1 / 1 points" in out.stdout, out.stdout + out.stderr


def test_released_notebooks_open_unmodified_in_the_student_kernel(student_venv, tmp_path):
    """JupyterLab rewrites kernelspec and language_info from the kernel; the release has them."""
    script = textwrap.dedent("""
        import json
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import start_new_kernel
        km, kc = start_new_kernel(kernel_name="python3")
        try:
            reply = kc.kernel_info(reply=True, timeout=60)
        finally:
            kc.stop_channels(); km.shutdown_kernel(now=True)
        spec = KernelSpecManager().get_kernel_spec("python3")
        print(json.dumps({"language_info": reply["content"]["language_info"],
                          "kernelspec": {"name": "python3", "display_name": spec.display_name,
                                         "language": spec.language}}))
    """)
    out = _run(student_venv, tmp_path, student_venv / "bin" / "python", "-c", script, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    kernel = json.loads(out.stdout.strip().splitlines()[-1])
    assert kernel["kernelspec"] == KERNELSPEC
    info = dict(kernel["language_info"])
    if info.get("version") != LANGUAGE_INFO["version"]:
        pytest.skip(f"this Python is {info.get('version')}, the release's language_info says "
                    f"{LANGUAGE_INFO['version']}: JupyterLab updates that field here")
    assert info == LANGUAGE_INFO
    from grader.course import REPO
    for path in sorted((REPO / "notebooks").glob("*/*.ipynb")) + sorted((REPO / "solutions").glob("*/*.ipynb")):
        meta = json.loads(path.read_text())["metadata"]
        assert meta["kernelspec"] == KERNELSPEC and meta["language_info"] == LANGUAGE_INFO, path


TERMINAL_PROBE = r'''
import asyncio, json, sys, urllib.request
from tornado.websocket import websocket_connect
base, token = sys.argv[1], sys.argv[2]
req = urllib.request.Request(f"{base}/api/terminals?token={token}", method="POST", data=b"")
name = json.loads(urllib.request.urlopen(req, timeout=30).read())["name"]
async def main():
    ws = await websocket_connect(f"ws{base[4:]}/terminals/websocket/{name}?token={token}")
    await ws.write_message(json.dumps(["stdin", "python -m dlhw check --help; dlhw check --help; echo DLHW''DONE\r"]))
    out = ""
    while "DLHWDONE" not in out:
        msg = await asyncio.wait_for(ws.read_message(), 60)
        if msg is None:
            break
        kind, *rest = json.loads(msg)
        if kind == "stdout":
            out += rest[0]
    print(json.dumps(out))
asyncio.run(main())
'''


def test_dlhw_runs_in_jupyterlabs_terminal(student_venv, tmp_path):
    """`jupyter lab` started without a tty and without activating the venv (a launcher): its
    terminal still finds the environment's python and dlhw."""
    port = free_port()
    token, base = "dlhw-test", f"http://127.0.0.1:{port}"
    env = _env(student_venv, tmp_path)
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env.pop("VIRTUAL_ENV")
    proc = subprocess.Popen([str(student_venv / "bin" / "jupyter"), "lab", "--no-browser", f"--port={port}",
                             f"--ServerApp.token={token}", "--ServerApp.ip=127.0.0.1",
                             f"--ServerApp.root_dir={_course(student_venv)}", "--allow-root"],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_up(proc, base, token, timeout_s=120)
        out = _run(student_venv, tmp_path, student_venv / "bin" / "python", "-c", TERMINAL_PROBE, base, token,
                   timeout=180)
        assert out.returncode == 0, out.stderr[-2000:]
        text = json.loads(out.stdout.strip().splitlines()[-1])
        assert "not found" not in text and "No module named" not in text, text[-1500:]
        assert text.count("usage: dlhw check") >= 2, text[-1500:]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
