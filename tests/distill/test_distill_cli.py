"""`edgesep distill`: output checkpoint, resume checkpoint, exit codes."""

from __future__ import annotations

import json

from edgesep.cli.main import main


def _teacher_file(tmp_path, *, num_classes: int = 10) -> str:
    path = tmp_path / "teacher.py"
    path.write_text(
        f"from edgesep.distill.teacher import StandardCNN\ndef make():\n    return StandardCNN(width=4, num_classes={num_classes})\n"
    )
    return f"{path}:make"


def test_cli_distills_and_writes_loadable_student(tmp_path, capsys):
    from edgesep.models.loading import load_weights
    from edgesep.models.sepcnn import sepcnn

    out = tmp_path / "student.pt"
    TEACHER = _teacher_file(tmp_path)
    code = main(["distill", "-o", str(out), "--teacher", TEACHER, "--epochs", "1", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["epochs"] == 1 and len(report["losses"]) == 1
    assert 0.0 <= report["student_accuracy"] <= 1.0
    assert (tmp_path / "student.pt.ckpt").is_file()  # per-epoch resume checkpoint
    load_weights(sepcnn(), out)  # a plain factory + weights load works for unpruned students
    # a rerun with --force resumes from the finished checkpoint instead of training again
    assert main(["distill", "-o", str(out), "--teacher", TEACHER, "--epochs", "1", "--json", "--force"]) == 0
    assert json.loads(capsys.readouterr().out)["resumed_from_epoch"] == 1


def test_cli_teacher_shape_mismatch_exits_2_without_output(tmp_path, capsys):
    out = tmp_path / "student.pt"
    assert main(["distill", "-o", str(out), "--teacher", _teacher_file(tmp_path, num_classes=3), "--epochs", "1"]) == 2
    assert "teacher output shape (2, 3) differs from student output shape (2, 10)" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "student.pt.ckpt").exists()


def test_cli_bad_alpha_exits_2(tmp_path, capsys):
    assert main(["distill", "-o", str(tmp_path / "s.pt"), "--alpha", "2"]) == 2
    assert "alpha must be in [0, 1]" in capsys.readouterr().err
