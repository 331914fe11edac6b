"""A student's session in a real browser: JupyterLab 4 in headless Chromium on a released notebook.

Open assignment 02, Run All Cells (it stops at the first self-check: nothing is implemented),
type affine_forward into its answer cell and see its self-check pass, type a mistake (the bias
dropped) and see the diagnosis, press nbgrader's Validate and read the dialog. A screenshot of
every step goes to test-artifacts/browser/.
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

RIGHT = ["def affine_forward(x, w, b):",
         "out = x.reshape(x.shape[0], -1) @ w + b",
         "return out, (x, w)"]
WRONG = ["def affine_forward(x, w, b):",
         "out = x.reshape(x.shape[0], -1) @ w",
         "return out, (x, w)"]


RUN_ALL_ITEM = ("//li[contains(@class,'lm-Menu-item')]"
                "[.//div[contains(@class,'lm-Menu-itemLabel') and normalize-space()='Run All Cells']]")


def _typed(lines):
    """What the editor holds after typing ``lines`` with Enter between them (auto-indent adds 4 spaces)."""
    return "\n".join([lines[0]] + ["    " + line for line in lines[1:]])


# JavaScript run in the page: the i-th cell of the open notebook and what it shows.
_JS_CELL = """
const cells = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell');
const c = cells[arguments[0]];
if (!c) return null;
const lines = Array.from(c.querySelectorAll('.jp-InputArea-editor .cm-line')).map(l => l.textContent);
const out = c.querySelector('.jp-Cell-outputArea');
const prompt = c.querySelector('.jp-InputPrompt');
return {source: lines.join('\\n'), output: out ? out.textContent : '',
        prompt: prompt ? prompt.textContent.trim() : '', count: cells.length};
"""
_JS_STATE = """
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
if (!panel) return {cells: 0};
const ind = panel.querySelector('.jp-Notebook-ExecutionIndicator');
const prompts = Array.from(panel.querySelectorAll('.jp-InputPrompt')).map(p => p.textContent.trim());
return {cells: panel.querySelectorAll('.jp-Notebook .jp-Cell').length,
        kernel: ind ? ind.getAttribute('data-status') : null,
        running: prompts.filter(p => p.includes('*')).length};
"""


class Student:
    """The browser, with bounded waits that fail with what they waited for and a screenshot."""

    def __init__(self, driver, lab, artifacts: Path):
        self.d, self.lab, self.artifacts, self.step = driver, lab, artifacts, 0

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

    def wait(self, what: str, probe, timeout: float = 90, poll: float = 0.25):
        """Poll ``probe()`` until it returns (True, value), then return value.

        ``probe`` returns (done, what it saw); what it saw last goes into the failure message.
        """
        deadline, last = time.monotonic() + timeout, None
        while True:
            try:
                done, last = probe()
                if done:
                    return last
            except Exception as e:        # stale element, page between renders: poll again
                last = f"{type(e).__name__}: {e}"
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last!r}"[:4000])
            time.sleep(poll)

    def js(self, script: str, *args):
        return self.d.execute_script(script, *args)

    def cell(self, i: int) -> dict:
        return self.js(_JS_CELL, i)

    def state(self) -> dict:
        return self.js(_JS_STATE)

    def cell_element(self, i: int):
        from selenium.webdriver.common.by import By
        cells = self.d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")
        el = cells[i]
        self.js("arguments[0].scrollIntoView({block: 'start'});", el)
        return el

    def keys(self, *keys, modifier=None):
        from selenium.webdriver.common.action_chains import ActionChains
        chain = ActionChains(self.d)
        if modifier:
            chain.key_down(modifier)
        chain.send_keys(*keys)
        if modifier:
            chain.key_up(modifier)
        chain.perform()

    def idle(self, what: str, timeout: float = 90):
        """The kernel idle and no cell waiting to run."""
        def probe():
            s = self.state()
            return s.get("kernel") == "idle" and s.get("running") == 0, s
        return self.wait(what, probe, timeout)

    def type_into(self, i: int, lines):
        """Click into cell i's editor, select all, type ``lines`` key by key (Enter between lines)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        editor = self.cell_element(i).find_element(By.CSS_SELECTOR, ".jp-InputArea-editor .cm-content")
        editor.click()
        self.wait(f"cell {i}'s editor to have the keyboard focus",
                  lambda: (self.js("return arguments[0].contains(document.activeElement)", editor),
                          self.js("return document.activeElement.outerHTML.slice(0, 200)")), 20)
        self.keys("a", modifier=Keys.CONTROL)
        for n, line in enumerate(lines):
            if n:     # CodeMirror indents the new line itself (a level after the colon)
                self.keys(Keys.ENTER)
            self.keys(line)
        want = _typed(lines)
        self.wait(f"cell {i}'s editor to hold the typed code:\n{want}",
                  lambda: (lambda c: (c["source"].rstrip() == want, c["source"]))(self.cell(i)), 20)

    def run_cell(self, i: int):
        """Select cell i (click its prompt: command mode) and press Shift+Enter."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        self.cell_element(i).find_element(By.CSS_SELECTOR, ".jp-InputPrompt").click()
        self.keys(Keys.ENTER, modifier=Keys.SHIFT)

    def count(self, i: int) -> int:
        """Cell i's execution count (0 before it ran, or while it runs)."""
        m = re.fullmatch(r"\[(\d+)\]:", self.cell(i)["prompt"])
        return int(m.group(1)) if m else 0

    def output_of(self, i: int, what: str, *needles, after: int = 0, timeout: float = 90) -> str:
        """Wait for cell i to finish a run later than execution count ``after`` showing ``needles``."""
        def probe():
            c = self.cell(i)
            m = re.fullmatch(r"\[(\d+)\]:", c["prompt"])
            return bool(m) and int(m.group(1)) > after and all(n in c["output"] for n in needles), c
        return self.wait(f"cell {i} to run (again) and its output to show {what} ({' / '.join(needles)})",
                         probe, timeout)["output"]


def _find(cells, pred, what):
    for i, c in enumerate(cells):
        if pred(c):
            return i
    raise AssertionError(f"the released notebook has no {what}")


def test_student_session_in_jupyterlab(lab, driver, artifacts):
    from selenium.webdriver.common.by import By

    nb = json.loads(NOTEBOOK.read_text())
    cells = nb["cells"]
    src = lambda c: "".join(c["source"])
    answer = _find(cells, lambda c: c["metadata"].get("nbgrader", {}).get("solution") and src(c).startswith("def affine_forward"),
                   "answer cell for affine_forward")
    selfcheck = _find(cells, lambda c: src(c).strip().startswith("report(affine_forward"), "self-check of affine_forward")
    first_test = _find(cells, lambda c: c["metadata"].get("nbgrader", {}).get("grade"), "graded test cell")
    s = Student(driver, lab, artifacts)

    # 1. open the released notebook; its kernel starts
    driver.get(lab.url(f"lab/tree/{A}/{A}.ipynb"))
    s.wait(f"JupyterLab to render all {len(cells)} cells of {A}.ipynb",
           lambda: (lambda st: (st["cells"] == len(cells), st))(s.state()), 120)
    s.idle("the kernel to start and be idle", 120)
    s.shot("opened")

    # 2. Run > Run All Cells: execution stops at the first self-check (nothing is implemented yet)
    driver.find_element(By.XPATH, "//div[contains(@class,'lm-MenuBar-itemLabel') and normalize-space()='Run']").click()
    item = s.wait("the Run menu's 'Run All Cells' item",
                  lambda: (lambda es: (bool(es), es))([e for e in driver.find_elements(By.XPATH, RUN_ALL_ITEM)
                                                          if e.is_displayed()]), 20)[0]
    item.click()
    out = s.output_of(selfcheck, "the self-check failing on the unimplemented functions",
                      "\u2717 affine_forward ", "not implemented", timeout=120)
    s.idle("Run All Cells to stop after the failing self-check")
    assert s.cell(first_test)["prompt"] in ("[ ]:", ""), \
        f"Run All should have stopped at the self-check, but the graded test cell ran: {s.cell(first_test)}"
    s.cell_element(selfcheck)
    s.shot("run-all-stops-at-first-self-check")

    # 3. type a correct affine_forward, run it and its self-check: the check passes
    s.type_into(answer, RIGHT)
    s.shot("typed-affine-forward")
    before = s.count(selfcheck)
    s.run_cell(answer)
    s.run_cell(selfcheck)
    out = s.output_of(selfcheck, "affine_forward's check passing", "\u2713 affine_forward ", "matches PyTorch",
                      after=before)
    assert "\u2717 affine_forward " not in out, out
    s.idle("the self-check to finish")
    s.cell_element(answer)
    s.shot("self-check-passes")

    # 4. a deliberate mistake (the bias dropped): the self-check names the output and its error
    s.type_into(answer, WRONG)
    before = s.count(selfcheck)
    s.run_cell(answer)
    s.run_cell(selfcheck)
    out = s.output_of(selfcheck, "the diagnosis of the dropped bias", "\u2717 affine_forward ",
                      "output", "relative error", after=before)
    assert "\u2713 affine_forward " not in out, out
    s.idle("the self-check to finish")
    s.cell_element(answer)
    s.shot("self-check-diagnosis")

    # 5. nbgrader's Validate button: the dialog lists the failing graded tests
    driver.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .validate-button").click()
    dialog = s.wait("nbgrader's 'Validation Results' dialog",
                    lambda: (lambda ds: (bool(ds), ds))([d for d in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")
                                                         if "Validation Results" in d.text]), 240)[0]
    text = driver.execute_script("return arguments[0].textContent", dialog)
    s.shot("validate-dialog")
    assert "The following cell failed:" in text, f"Validate should report failing tests; the dialog says:\n{text}"
    assert 'check("affine_backward.dx"' in text and "NotImplementedError" in text, \
        f"the dialog should list affine_backward's test, not implemented:\n{text}"
    assert 'check("affine_forward", affine_forward)' in text, \
        f"the dialog should list affine_forward's graded test (the mistake is still in):\n{text}"
    dialog.find_element(By.CSS_SELECTOR, ".jp-Dialog-button.jp-mod-accept").click()
    s.wait("the dialog to close", lambda: (lambda ds: (not ds, [d.text for d in ds]))(driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")), 20)
    s.shot("validate-dialog-closed")
