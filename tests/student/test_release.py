"""`dlhw release A --to DIR`: what the students of A receive, and nothing of later assignments."""
from __future__ import annotations

import pytest

from grader.cli import main
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
    # blocks.py and the kit are built from dlhw for the handout, whatever the working tree holds
    from grader.build import blocks_text
    from grader.kit import kit_files
    import nbformat
    source = nbformat.read(REPO / "solutions" / "04_optimization" / "04_optimization.ipynb", as_version=4)
    assert (out / "notebooks" / "04_optimization" / "blocks.py").read_text() == blocks_text("04_optimization", source)
    kit = {str(p.relative_to(out / "notebooks" / "_kit")): p.read_bytes()
           for p in (out / "notebooks" / "_kit").rglob("*") if p.is_file()}
    assert kit == kit_files()
    assert (out / "notebooks" / "04_optimization" / "04_optimization.ipynb").read_bytes() == \
        (REPO / "notebooks" / "04_optimization" / "04_optimization.ipynb").read_bytes()
    assert (out / "environment.yml").read_text() == (REPO / "environment.yml").read_text()
    assert not [p for p in written if "__pycache__" in p or ".egg-info" in p or "/build/" in p]
    later = [name for number, name in ASSIGNMENTS.items() if number > 4]
    for path in out.rglob("*"):
        assert not any(name in str(path.relative_to(out)) for name in later), path
    assert sorted(p.name for p in (out / "notebooks" / "04_optimization").iterdir()) == ["04_optimization.ipynb",
                                                                                         "blocks.py"]
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


def test_release_does_not_need_a_build_of_the_working_tree(tmp_path):
    """A fresh clone holds no blocks.py and no kit (build outputs, not committed): the release
    builds them from dlhw; a stale blocks.py left in the working tree never ships."""
    import shutil
    from grader.build import blocks_text
    import nbformat
    root = tmp_path / "clone"
    for top in ("solutions", "notebooks"):
        (root / top / "06_cnn").mkdir(parents=True)
        shutil.copy2(REPO / top / "06_cnn" / "06_cnn.ipynb", root / top / "06_cnn")
    shutil.copy2(REPO / "environment.yml", root)
    (root / "notebooks" / "06_cnn" / "blocks.py").write_text("STALE = True\n")
    written = release("06", tmp_path / "handout", root=root)
    assert "notebooks/_kit/install.sh" in written and "notebooks/06_cnn/blocks.py" in written
    source = nbformat.read(root / "solutions" / "06_cnn" / "06_cnn.ipynb", as_version=4)
    assert (tmp_path / "handout" / "notebooks" / "06_cnn" / "blocks.py").read_text() == blocks_text("06_cnn", source)


def test_the_grader_writes_the_blocks_it_hands_to_submissions(tmp_path):
    """`dlhw autograde` hands each submission its assignment's blocks.py (Course.ensure_released):
    a build output, so it is written then, from dlhw, where a fresh clone has none."""
    import shutil
    from grader.course import Course
    source = tmp_path / "solutions"
    (source / "04_optimization").mkdir(parents=True)
    shutil.copy2(REPO / "solutions" / "04_optimization" / "04_optimization.ipynb", source / "04_optimization")
    course = Course(root=tmp_path / "course", source=source, release=tmp_path / "notebooks")
    course.ensure_released("04_optimization")
    for top in ("solutions", "notebooks"):
        blocks = tmp_path / top / "04_optimization" / "blocks.py"
        assert blocks.read_text() == (REPO / "solutions" / "04_optimization" / "blocks.py").read_text(), top
