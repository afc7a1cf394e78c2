"""helpers.report: the students' export of what is graded by hand (answers, plots, report)."""

from __future__ import annotations

import nbformat
import pytest
import report_samples as S

from helpers import report


def test_graded_by_hand_cells_come_from_the_notebooks_markup():
    """The discussion answers (nbgrader) of ssl_methods and the report cells of the homework are found."""
    ssl = [(c.id, c.points, c.kind) for c in report.graded_by_hand(S.executed("ssl_methods"))]
    assert ssl == [
        ("simclr_shortcomings", 2.0, "text"),
        ("byol_predictor_role", 2.0, "text"),
        ("barlow_terms_collapse", 2.0, "text"),
    ]
    hw = [(c.id, c.kind) for c in report.graded_by_hand(S.executed("simclr_homework"))]
    assert hw == [("finetune-curves", "output"), ("report", "output")]
    student = [
        c.id
        for c in report.graded_by_hand(nbformat.read(S.PROJECT_ROOT / "notebooks" / "ssl_methods.ipynb", as_version=4))
    ]
    assert student == [c[0] for c in ssl], "the student notebook keeps the markup"


@pytest.mark.parametrize("assignment", ["ssl_methods", "simclr_homework"])
def test_html_export_holds_answers_plots_and_report_without_code(assignment, tmp_path, monkeypatch, capsys):
    """Without a PDF engine: one HTML file with every answer, plot and the report, no code, plus print steps."""
    monkeypatch.setattr(report, "pdf_engine", lambda: None)
    answers = (
        {
            "simclr_shortcomings": "Needs large batches: ANSWER-ONE.",
            "byol_predictor_role": "ANSWER-TWO",
            "barlow_terms_collapse": "ANSWER-THREE",
        }
        if assignment == "ssl_methods"
        else None
    )
    nb = S.executed(assignment, answers, report_text="Final test accuracy: REPORT-LINE 81.20 %\n")
    path = S.write(nb, tmp_path, f"{assignment}.ipynb")
    written = report.export_report(path)
    out = capsys.readouterr().out
    assert written == tmp_path / f"{assignment}-report.html" and written.is_file()
    page = written.read_text()
    figures = sum(
        1 for c in nb.cells if c.cell_type == "code" and c.outputs and "image/png" in c.outputs[0].get("data", {})
    )
    assert figures >= 2 and page.count(S.png_base64()) == figures
    if answers:
        assert all(text.split(":")[-1].strip(" .") in page for text in answers.values())
        assert "Shortcomings of SimCLR" in page  # the question comes with the answer
    else:
        assert "REPORT-LINE 81.20 %" in page
    assert "def nt_xent" not in page and "plot_curves(" not in page and "plot_history(" not in page  # no code
    assert "print to PDF" not in out and "Save as PDF" in out and str(written) in out


def test_pdf_export_when_a_pdf_engine_exists(tmp_path):
    """With xelatex installed the same export writes a PDF."""
    if report.pdf_engine() is None:
        pytest.skip("no xelatex on this machine (the HTML route is tested above)")
    path = S.write(S.executed("simclr_homework", report_text="REPORT\n"), tmp_path, "simclr_homework.ipynb")
    written = report.export_report(path)
    assert written.suffix == ".pdf" and written.read_bytes().startswith(b"%PDF")


def test_missing_notebook_says_to_save_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="Save the notebook"):
        report.export_report(tmp_path / "ssl_methods.ipynb")


def test_missing_notebook_with_missing_ok_prints_what_to_do(tmp_path, capsys):
    """The notebooks' read-only export cell: a missing notebook is a message (with the Colab way), not an error."""
    assert report.export_report(tmp_path / "ssl_methods.ipynb", missing_ok=True) is None
    out = capsys.readouterr().out
    assert f"{tmp_path / 'ssl_methods.ipynb'} not found" in out and "File > Save" in out
    assert 'export_report("/content/drive/MyDrive/Colab Notebooks/ssl_methods.ipynb")' in out
    assert list(tmp_path.iterdir()) == []


def test_report_settings_and_optimizer_as_run(capsys):
    """The homework's report lists the optimiser's base learning rate per group (not the scheduled one)."""
    import torch

    weights, bias = torch.nn.Parameter(torch.zeros(3, 2)), torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.SGD([{"params": [weights], "lr": 0.01}, {"params": [bias]}], lr=0.1, momentum=0.9)
    for group in optimizer.param_groups:  # what fit's schedule leaves behind: initial_lr kept, lr scaled
        group["initial_lr"], group["lr"] = group["lr"], group["lr"] * 0.5
    assert report.describe_optimizer(optimizer) == (
        "SGD; group 0 (6 parameters): lr 0.01, momentum 0.9, weight_decay 0; "
        "group 1 (3 parameters): lr 0.1, momentum 0.9, weight_decay 0"
    )
    del optimizer.param_groups[1]["initial_lr"]  # never scheduled: its lr is the base lr
    assert "group 1 (3 parameters): lr 0.05," in report.describe_optimizer(optimizer)
    report.print_settings("Settings", {"epochs": 3, "optimizer": "SGD"})
    assert capsys.readouterr().out == "Settings\n                epochs: 3\n             optimizer: SGD\n"
