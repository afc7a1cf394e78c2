"""Executed-looking sample submissions for the report export and the manual-answers pages.

Built from the solution notebooks: answers in the discussion cells, a PNG in every cell that
draws a figure, the report cell's printed text, as a student's saved notebook holds them.
"""

from __future__ import annotations

import base64
import copy
import io
import json
from pathlib import Path

import nbformat
from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HOSTILE_ANSWER = "<script>alert('pwned')</script> **bold** & <b>not bold</b>"


def png_base64(colour: tuple[int, int, int] = (200, 30, 30)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def executed(
    assignment: str, answers: dict[str, str] | None = None, report_text: str = "", folder: str = "solutions"
) -> nbformat.NotebookNode:
    """The `folder` notebook of `assignment` with answers and outputs filled in."""
    nb = nbformat.read(PROJECT_ROOT / folder / f"{assignment}.ipynb", as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if answers and grade_id in answers:
            cell.source = answers[grade_id]
        if cell.cell_type != "code":
            continue
        if "plot_history(" in cell.source or "plot_curves(" in cell.source or "show_images(" in cell.source:
            cell.outputs = [
                nbformat.v4.new_output("display_data", data={"image/png": png_base64(), "text/plain": "<Figure>"})
            ]
        if cell.get("id") == "report" and report_text:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=report_text)]
    return nb


def write(nb, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(nb, indent=1))
    return path


def copy_nb(nb):
    return copy.deepcopy(nb)
