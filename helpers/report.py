"""The parts of a notebook that are graded by hand: the homework's report, and their export to one file.

`print_settings` and `describe_optimizer` write the homework's report cell (its
hyperparameters and optimisers, as they were run).

Which cells those are is written in the notebooks themselves (one source, also read by the
instructors' ``python -m autograder manual-answers``):

- nbgrader's "manually graded answer" cells (markdown cells whose ``nbgrader`` metadata has
  ``grade`` and ``solution`` set): the student's text answers;
- cells whose metadata holds ``"ssl_lab": {"graded_by_hand": "<title>"}``: given cells whose
  *output* is graded (the homework's report and fine-tuning curves).

`export_report` keeps the notebook's title, each of those cells with the question (the
markdown cell just before it) and every figure the notebook drew, drops all code, and writes

- a PDF, when a PDF engine is installed (nbconvert's LaTeX route: ``xelatex``), or
- an HTML file otherwise (Colab, a bare laptop), and prints the exact steps to turn it into a
  PDF with the browser's print dialog.

Usage, in the last cell of a notebook (save the notebook first: the export reads the file)::

    from helpers.report import export_report
    export_report("simclr_homework.ipynb", missing_ok=True)
"""

from __future__ import annotations

import copy
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

#: What a student's browser needs to do with the HTML report (the steps are the same in
#: Chrome, Edge, Firefox and Safari; the names of the menu entries differ slightly).
PRINT_TO_PDF_STEPS = (
    "No PDF engine (xelatex) here, so the report was written as HTML. To make the PDF:\n"
    "  1. open {path} in a browser (Jupyter: right-click it in the file browser > Download, then open it;\n"
    "     Colab: Files panel > right-click > Download, then open it);\n"
    "  2. print it: Ctrl+P (Cmd+P on a Mac);\n"
    '  3. destination / printer: "Save as PDF" (Chrome, Edge, Firefox) or "PDF > Save as PDF" (Safari);\n'
    '  4. under More settings, turn on "Background graphics" so the plots keep their colours;\n'
    "  5. Save, and upload that PDF where your course asks for the report."
)


#: What the export prints instead of failing (`missing_ok`) when the notebook is not where it looked.
NOT_SAVED_HERE = (
    "{path} not found: save the notebook (File > Save) and run this cell again. If it is saved elsewhere "
    "(on Colab: in your Google Drive), run export_report with its path in a new cell, e.g. "
    'export_report("/content/drive/MyDrive/Colab Notebooks/{name}").'
)


def print_settings(title: str, settings: dict) -> None:
    """Print a title, then one aligned `key: value` line per setting (the report's tables)."""
    print(title)
    for key, value in settings.items():
        print(f"  {key:>20}: {value}")


def describe_optimizer(optimizer) -> str:
    """The optimiser as it was run: its type and every parameter group's base lr, momentum, weight decay.

    The base lr is the group's ``initial_lr`` when a schedule has set one (`fit` scales ``lr``
    during training), else its ``lr``.
    """
    groups = [
        f"group {i} ({sum(p.numel() for p in g['params']):,} parameters): lr {g.get('initial_lr', g['lr']):g}, "
        f"momentum {g.get('momentum', '-')}, weight_decay {g.get('weight_decay', '-')}"
        for i, g in enumerate(optimizer.param_groups)
    ]
    return f"{type(optimizer).__name__}; " + "; ".join(groups)


@dataclass(frozen=True)
class GradedByHand:
    """One cell graded by hand: where it is and how it is graded."""

    index: int  # cell index in the notebook
    id: str  # nbgrader grade_id, else the cell id
    title: str
    points: float | None  # nbgrader points; None: set by the course
    kind: str  # "text": a markdown answer; "output": what the cell printed and drew


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _heading(markdown: str) -> str:
    """'#### Task: Shortcomings of SimCLR (discussion, graded by hand)' -> 'Shortcomings of SimCLR'."""
    for line in markdown.splitlines():
        if line.strip().startswith("#"):
            title = re.sub(r"^Task:\s*", "", line.strip().lstrip("#").strip())
            return re.sub(r"\s*\([^)]*graded by hand\)\s*$", "", title)
    return ""


def graded_by_hand(notebook) -> list[GradedByHand]:
    """The cells of a notebook (a dict or nbformat node) that are graded by hand, in order."""
    found = []
    cells = notebook.get("cells", [])
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            continue
        metadata = cell.get("metadata", {}) if isinstance(cell.get("metadata"), dict) else {}
        nbgrader = metadata.get("nbgrader", {}) if isinstance(metadata.get("nbgrader"), dict) else {}
        ssl_lab = metadata.get("ssl_lab", {}) if isinstance(metadata.get("ssl_lab"), dict) else {}
        before = _source(cells[index - 1]) if index and cells[index - 1].get("cell_type") == "markdown" else ""
        if cell.get("cell_type") == "markdown" and nbgrader.get("grade") and nbgrader.get("solution"):
            grade_id = str(nbgrader.get("grade_id", cell.get("id", index)))
            found.append(
                GradedByHand(index, grade_id, _heading(before) or grade_id, float(nbgrader.get("points", 0)), "text")
            )
        elif ssl_lab.get("graded_by_hand"):
            cell_id = str(nbgrader.get("grade_id") or cell.get("id") or index)
            found.append(GradedByHand(index, cell_id, str(ssl_lab["graded_by_hand"]), None, "output"))
    return found


def _has_figure(cell) -> bool:
    return cell.get("cell_type") == "code" and any(
        output.get("output_type") in ("display_data", "execute_result")
        and any(mime.startswith("image/") for mime in output.get("data", {}))
        for output in cell.get("outputs", [])
    )


def report_notebook(notebook):
    """The notebook reduced to its report: title, graded-by-hand cells with their questions, figures.

    Code cells keep only their outputs (the exporter hides every input).
    """
    import nbformat

    nb = copy.deepcopy(notebook)
    keep: set[int] = set()
    if nb.cells and nb.cells[0].cell_type == "markdown":
        keep.add(0)
    for item in graded_by_hand(nb):
        keep.add(item.index)
        if item.index and nb.cells[item.index - 1].cell_type == "markdown":
            keep.add(item.index - 1)
    keep |= {i for i, cell in enumerate(nb.cells) if _has_figure(cell)}
    cells = []
    for i in sorted(keep):
        cell = nb.cells[i]
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if o.get("output_type") != "error"]
        cells.append(cell)
    nb.cells = cells
    nbformat.validate(nb)
    return nb


def pdf_engine() -> str | None:
    """The LaTeX engine nbconvert's PDF export needs, if installed."""
    return shutil.which("xelatex")


def export_report(
    notebook_path: str | Path, out: str | Path | None = None, pdf: bool | None = None, missing_ok: bool = False
) -> Path | None:
    """Write the notebook's report (see the module docstring) as PDF, or as HTML with print steps.

    Args:
        notebook_path: the saved notebook (save it first: unsaved answers are not in the file).
        out: the file to write, without or with suffix; default ``<notebook>-report.pdf`` /
            ``.html`` beside the notebook.
        pdf: force PDF (True; fails without a PDF engine) or HTML (False); default: PDF when
            `pdf_engine()` finds one.
        missing_ok: when the notebook is not at `notebook_path`, print what to do and return
            None instead of raising (the notebooks' read-only export cell, which must not stop
            a run-all before the cells after it).

    Returns:
        The path written (None when the notebook is missing and `missing_ok`).

    Raises:
        FileNotFoundError: the notebook is not at `notebook_path` (with the folder searched).
    """
    import nbformat
    from nbconvert import HTMLExporter, PDFExporter

    path = Path(notebook_path)
    if not path.is_file() and missing_ok:
        print(NOT_SAVED_HERE.format(path=path.resolve(), name=path.name))
        return None
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found (looked in {Path.cwd()}). Save the notebook (File > Save), then pass its path; "
            "on Colab, open it from Google Drive, mount Drive and pass e.g. "
            "'/content/drive/MyDrive/Colab Notebooks/<name>.ipynb'."
        )
    reduced = report_notebook(nbformat.read(path, as_version=4))
    use_pdf = pdf_engine() is not None if pdf is None else pdf
    exporter = (PDFExporter if use_pdf else HTMLExporter)(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(reduced, resources={"metadata": {"name": f"{path.stem} report"}})
    suffix = ".pdf" if use_pdf else ".html"
    target = Path(out) if out is not None else path.with_name(f"{path.stem}-report{suffix}")
    target = target.with_suffix(suffix)
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(body, bytes):
        target.write_bytes(body)
    else:
        target.write_text(body, encoding="utf-8")
    answers = sum(1 for item in graded_by_hand(reduced))
    figures = sum(1 for cell in reduced.cells if _has_figure(cell))
    print(f"wrote {target} ({answers} parts graded by hand, {figures} cells with figures)")
    if not use_pdf:
        print(PRINT_TO_PDF_STEPS.format(path=target))
    return target
