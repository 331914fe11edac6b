"""A student's session in a real browser: JupyterLab 4 in headless Chromium on a released notebook.

JupyterLab runs from the student environment (the student install command's venv) on a copy of
the release of assignment 02. In the browser: open the notebook, Run > Run All Cells (it stops at
the first self-check: nothing is implemented), type affine_forward into its answer cell and see
its self-check pass, type a mistake (the bias dropped) and see the diagnosis, press nbgrader's
Validate and read the dialog. A screenshot of every step goes to test-artifacts/browser/; a
failed wait names what it waited for, what it saw last, and its screenshot.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.browser.conftest import REPO

pytestmark = [pytest.mark.slow]
A = "02_mlp_backprop"
NOTEBOOK = REPO / "notebooks" / A / f"{A}.ipynb"

# typed line by line; CodeMirror indents the body itself after the colon
RIGHT = ["def affine_forward(x, w, b):",
         "out = x.reshape(x.shape[0], -1) @ w + b",
         "return out, (x, w)"]
WRONG = ["def affine_forward(x, w, b):",
         "out = x.reshape(x.shape[0], -1) @ w",
         "return out, (x, w)"]
PASS = re.compile(r"^\u2713 affine_forward\s.*matches PyTorch", re.M)
NOT_IMPLEMENTED = re.compile(r"^\u2717 affine_forward\s.*not implemented", re.M)
DIAGNOSIS = re.compile(r"^\u2717 affine_forward\s.*output.*relative error", re.M)

PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
RUN_MENU = "//div[contains(@class,'lm-MenuBar-itemLabel') and normalize-space()='Run']"
RUN_ALL_ITEM = ("//li[contains(@class,'lm-Menu-item')]"
                "[.//div[contains(@class,'lm-Menu-itemLabel') and normalize-space()='Run All Cells']]")

# JavaScript run in the page: what the i-th cell of the open notebook shows, and the kernel.
# textContent, not innerText: cells scrolled out of view are not laid out (content-visibility).
_JS_CELL = """
const cells = document.querySelectorAll('%s .jp-Notebook .jp-Cell');
const c = cells[arguments[0]];
if (!c) return {source: '', output: '', prompt: '', count: cells.length};
const lines = Array.from(c.querySelectorAll('.jp-InputArea-editor .cm-line')).map(l => l.textContent);
const out = c.querySelector('.jp-Cell-outputArea');
const prompt = c.querySelector('.jp-InputPrompt');
return {source: lines.join('\\n'), output: out ? out.textContent : '',
        prompt: prompt ? prompt.textContent.trim() : '', count: cells.length};
""" % PANEL
_JS_STATE = """
const panel = document.querySelector('%s');
if (!panel) return {cells: 0};
const ind = panel.querySelector('.jp-Notebook-ExecutionIndicator');
const prompts = Array.from(panel.querySelectorAll('.jp-InputPrompt')).map(p => p.textContent.trim());
return {cells: panel.querySelectorAll('.jp-Notebook .jp-Cell').length,
        kernel: ind ? ind.getAttribute('data-status') : null,
        running: prompts.filter(p => p.includes('*')).length};
""" % PANEL


def _typed(lines):
    """What the editor holds after typing ``lines`` with Enter between them."""
    return "\n".join([lines[0]] + ["    " + line for line in lines[1:]])


def _execution_count(prompt: str) -> int:
    m = re.fullmatch(r"\[(\d+)\]:", prompt)
    return int(m.group(1)) if m else 0


class Student:
    """The browser, with bounded waits that fail with what they waited for and a screenshot."""

    def __init__(self, driver, lab, artifacts: Path):
        self.d, self.lab, self.artifacts, self.step = driver, lab, artifacts, 0

    # -- evidence ---------------------------------------------------------------------------
    def shot(self, name: str) -> Path:
        self.step += 1
        path = self.artifacts / f"{self.step:02d}-{name}.png"
        self.d.save_screenshot(str(path))
        return path

    def fail(self, message: str):
        path = self.artifacts / f"FAILED-after-step-{self.step:02d}.png"
        try:
            self.d.save_screenshot(str(path))
            where = f"screenshot: {path}"
        except Exception as e:          # the browser itself is gone
            where = f"no screenshot ({e})"
        pytest.fail(f"{message}\n{where}\njupyter lab log (tail):\n{self.lab.log_tail(2500)}", pytrace=False)

    def check(self, ok, message: str):
        if not ok:
            self.fail(message)

    def wait(self, what: str, probe, timeout: float = 90, poll: float = 0.25):
        """Poll ``probe()`` until it returns (True, value), then return value.

        ``probe`` returns (done, what it saw); what it saw last goes into the failure message.
        An exception (a stale element, a click on an element still covered) counts as not done.
        """
        deadline, last = time.monotonic() + timeout, None
        while True:
            try:
                done, last = probe()
                if done:
                    return last
            except Exception as e:
                last = f"{type(e).__name__}: {str(e)[:500]}"
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last!r}"[:4000])
            time.sleep(poll)

    # -- the page ---------------------------------------------------------------------------
    def js(self, script: str, *args):
        return self.d.execute_script(script, *args)

    def cell(self, i: int) -> dict:
        return self.js(_JS_CELL, i)

    def state(self) -> dict:
        return self.js(_JS_STATE)

    def find(self, by: str, selector: str):
        return [e for e in self.d.find_elements(by, selector) if e.is_displayed()]

    def cell_element(self, i: int):
        from selenium.webdriver.common.by import By
        el = self.d.find_elements(By.CSS_SELECTOR, f"{PANEL} .jp-Notebook .jp-Cell")[i]
        self.js("arguments[0].scrollIntoView({block: 'start'});", el)
        return el

    def click(self, what: str, locate, timeout: float = 30):
        """Click what ``locate()`` returns, retrying while it is missing or covered."""
        return self.wait(what, lambda: (True, locate().click()), timeout)

    def keys(self, *keys, modifier=None):
        from selenium.webdriver.common.action_chains import ActionChains
        chain = ActionChains(self.d)
        if modifier:
            chain.key_down(modifier)
        chain.send_keys(*keys)
        if modifier:
            chain.key_up(modifier)
        chain.perform()

    def dialogs(self) -> list[str]:
        return self.js("return Array.from(document.querySelectorAll('.jp-Dialog')).map(d => d.textContent)")

    # -- a student's actions ----------------------------------------------------------------
    def idle(self, what: str, timeout: float = 90):
        """The kernel idle and no cell running or queued."""
        def probe():
            s = self.state()
            return s.get("kernel") == "idle" and s.get("running") == 0, s
        return self.wait(what, probe, timeout)

    def type_into(self, i: int, lines):
        """Click into cell i's editor, select all (Ctrl+A), type ``lines`` key by key."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        editor = lambda: self.cell_element(i).find_element(By.CSS_SELECTOR, ".jp-InputArea-editor .cm-content")
        self.click(f"cell {i}'s editor", editor)
        self.wait(f"cell {i}'s editor to have the keyboard focus",
                  lambda: (self.js("return arguments[0].contains(document.activeElement)", editor()),
                           self.js("return document.activeElement && document.activeElement.outerHTML.slice(0, 200)")),
                  20)
        self.keys("a", modifier=Keys.CONTROL)
        for n, line in enumerate(lines):
            if n:
                self.keys(Keys.ENTER)
            self.keys(line)
        want = _typed(lines)
        self.wait(f"cell {i}'s editor to hold the typed code:\n{want}\n",
                  lambda: (lambda c: (c["source"].rstrip() == want, c["source"]))(self.cell(i)), 20)

    def run_cell(self, i: int):
        """Select cell i (a click on its prompt: command mode) and press Shift+Enter."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        self.click(f"cell {i}'s prompt",
                   lambda: self.cell_element(i).find_element(By.CSS_SELECTOR, ".jp-InputPrompt"))
        self.keys(Keys.ENTER, modifier=Keys.SHIFT)

    def output_of(self, i: int, what: str, pattern: re.Pattern, after: int = 0, timeout: float = 90) -> str:
        """Wait for cell i to have finished a run later than execution count ``after``, its output
        matching ``pattern``; returns the output."""
        def probe():
            c = self.cell(i)
            return _execution_count(c["prompt"]) > after and bool(pattern.search(c["output"])), c
        return self.wait(f"cell {i} to run and show {what} (/{pattern.pattern}/)", probe, timeout)["output"]


def _find(cells, pred, what):
    for i, c in enumerate(cells):
        if pred(c):
            return i
    raise AssertionError(f"the released notebook has no {what}")


def test_student_session_in_jupyterlab(lab, driver, artifacts):
    from selenium.webdriver.common.by import By

    cells = json.loads(NOTEBOOK.read_text())["cells"]
    src = lambda c: "".join(c["source"])
    nbg = lambda c: c["metadata"].get("nbgrader", {})
    answer = _find(cells, lambda c: nbg(c).get("solution") and src(c).startswith("def affine_forward"),
                   "answer cell for affine_forward")
    selfcheck = _find(cells, lambda c: src(c).strip().startswith("report(affine_forward"), "self-check of affine_forward")
    first_test = _find(cells, lambda c: nbg(c).get("grade"), "graded test cell")
    s = Student(driver, lab, artifacts)

    # 1. open the released notebook; its kernel starts
    driver.get(lab.url(f"lab/tree/{A}/{A}.ipynb"))
    s.wait(f"JupyterLab to show all {len(cells)} cells of {A}.ipynb",
           lambda: (lambda st: (st["cells"] == len(cells), st))(s.state()), 120)
    s.idle("the kernel to start and be idle", 120)
    s.shot("opened")

    # 2. Run > Run All Cells: execution stops at the first self-check (nothing is implemented yet)
    s.click("the menu bar's Run menu", lambda: s.find(By.XPATH, RUN_MENU)[0])
    s.click("the Run menu's 'Run All Cells' item", lambda: s.find(By.XPATH, RUN_ALL_ITEM)[0])
    s.output_of(selfcheck, "the self-check failing on affine_forward, not implemented", NOT_IMPLEMENTED, timeout=120)
    s.idle("Run All Cells to stop after the failing self-check")
    s.check(_execution_count(s.cell(first_test)["prompt"]) == 0,
            f"Run All should stop at the failing self-check, but the graded test after it ran: {s.cell(first_test)}")
    s.cell_element(selfcheck)
    s.shot("run-all-stops-at-first-self-check")

    # 3. type a correct affine_forward, run it and its self-check: the check passes
    s.type_into(answer, RIGHT)
    s.shot("typed-affine-forward")
    before = _execution_count(s.cell(selfcheck)["prompt"])
    s.run_cell(answer)
    s.run_cell(selfcheck)
    out = s.output_of(selfcheck, "affine_forward's check passing", PASS, after=before)
    s.check(not DIAGNOSIS.search(out) and not NOT_IMPLEMENTED.search(out), f"affine_forward should pass:\n{out}")
    s.idle("the self-check to finish")
    s.cell_element(answer)
    s.shot("self-check-passes")

    # 4. a deliberate mistake (the bias dropped): the self-check names the output and its error
    s.type_into(answer, WRONG)
    before = _execution_count(s.cell(selfcheck)["prompt"])
    s.run_cell(answer)
    s.run_cell(selfcheck)
    out = s.output_of(selfcheck, "the diagnosis of the dropped bias", DIAGNOSIS, after=before)
    s.check(not PASS.search(out), f"a forward pass without the bias should not pass:\n{out}")
    s.idle("the self-check to finish")
    s.cell_element(answer)
    s.shot("self-check-diagnosis")

    # 5. nbgrader's Validate button: the dialog lists the failing graded tests
    s.click("nbgrader's Validate button", lambda: s.find(By.CSS_SELECTOR, f"{PANEL} .validate-button")[0])
    text = s.wait("nbgrader's 'Validation Results' dialog",
                  lambda: (lambda ds: (any("Validation Results" in d for d in ds), ds))(s.dialogs()), 240)[0]
    s.shot("validate-dialog")
    s.check("The following cell failed:" in text, f"Validate should report failing tests; the dialog says:\n{text}")
    s.check('check("affine_backward.dx"' in text and "NotImplementedError" in text,
            f"the dialog should list affine_backward's test, not implemented:\n{text}")
    s.check('check("affine_forward", affine_forward)' in text,
            f"the dialog should list affine_forward's graded test (the mistake is still in):\n{text}")
    s.click("the dialog's Ok button", lambda: s.find(By.CSS_SELECTOR, ".jp-Dialog .jp-Dialog-button.jp-mod-accept")[0])
    s.wait("the dialog to close", lambda: (not s.dialogs(), s.dialogs()), 20)
    s.shot("validate-dialog-closed")
