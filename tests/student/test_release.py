"""`dlhw release A --to DIR`: what the students of A receive, and nothing of later assignments."""
from __future__ import annotations

import pytest

from dlhw.cli import main
from grader.course import REPO
from grader.curriculum import ASSIGNMENTS
from grader.release import release


def test_release_writes_the_assignment_the_kit_and_the_install_files(tmp_path):
    written = release("04", tmp_path / "handout")
    top = {"/".join(p.split("/")[:2]) if p.startswith("notebooks/") else p for p in written}
    assert top == {"environment.yml", "notebooks/04_optimization", "notebooks/_kit"}
    out = tmp_path / "handout"
    assert (out / "notebooks" / "04_optimization" / "04_optimization.ipynb").is_file()
    assert (out / "notebooks" / "04_optimization" / "blocks.py").is_file()
    assert (out / "notebooks" / "_kit" / "install.sh").read_text() == (REPO / "notebooks" / "_kit" / "install.sh").read_text()
    assert (out / "environment.yml").read_text() == (REPO / "environment.yml").read_text()
    assert not [p for p in written if "__pycache__" in p or ".egg-info" in p or "/build/" in p]
    later = [name for number, name in ASSIGNMENTS.items() if number > 4]
    for path in out.rglob("*"):
        assert not any(name in str(path.relative_to(out)) for name in later), path
    # the next release adds to the same folder
    release("05_training_deep_nets", out)
    assert (out / "notebooks" / "05_training_deep_nets").is_dir() and (out / "notebooks" / "04_optimization").is_dir()


def test_release_command(tmp_path, capsys):
    assert main(["release", "2", "--to", str(tmp_path / "h")]) == 0
    assert "notebooks/02_mlp_backprop/" in capsys.readouterr().out
    assert (tmp_path / "h" / "notebooks" / "02_mlp_backprop" / "02_mlp_backprop.ipynb").is_file()
    with pytest.raises(SystemExit, match="no assignment '42'"):
        main(["release", "42", "--to", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="folder of its own"):
        release("02", REPO)


def test_find_notebook_from_where_the_student_is(tmp_path, monkeypatch):
    from dlhw.selfgrade import find_notebook
    nb = tmp_path / "course" / "notebooks" / "02_mlp_backprop" / "02_mlp_backprop.ipynb"
    nb.parent.mkdir(parents=True)
    nb.write_text("{}")
    for cwd in (tmp_path / "course", tmp_path / "course" / "notebooks", nb.parent):
        assert find_notebook("02_mlp_backprop", cwd) == nb
        assert find_notebook("02_mlp_backprop.ipynb", cwd) == nb
    assert find_notebook(None, nb.parent) == nb
    assert find_notebook("notebooks/02_mlp_backprop/02_mlp_backprop.ipynb", tmp_path / "course") == nb
    assert find_notebook(str(nb), tmp_path) == nb
    with pytest.raises(FileNotFoundError, match="no notebook '03_autodiff'"):
        find_notebook("03_autodiff", tmp_path / "course")
    with pytest.raises(FileNotFoundError, match="no notebooks in"):
        find_notebook(None, tmp_path)
