"""Figures that live outside pyplot and still show up in notebooks (`helpers.plots` builds on them).

`new_figure` makes a `LabFigure` (no pyplot, so it works with the Agg backend on a headless
grader and in threads, and leaves no open pyplot figures behind) unless a script asked to
see it in a window; `finish` displays it when asked: inline in Jupyter, a pyplot window in a
script.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure

__all__ = ["LabFigure", "finish", "in_notebook", "new_figure"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where `IPython.display.display` renders figures)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class LabFigure(Figure):
    """A matplotlib Figure that Jupyter renders as a PNG even when pyplot was never imported.

    Figures built outside pyplot have no inline-backend formatter until pyplot's inline
    backend is loaded; `_repr_png_` makes the returned figure show up as the cell's output
    either way (once: it is not registered with pyplot, so there is no second copy).
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()


def new_figure(figsize: tuple[float, float], show: bool) -> Figure:
    """A figure outside pyplot, unless it must open in a window (`show=True` in a script)."""
    if show and not in_notebook():
        import matplotlib.pyplot as plt  # only here: a script asked for a window

        return plt.figure(figsize=figsize, layout="constrained")
    return LabFigure(figsize=figsize, layout="constrained")


def finish(fig: Figure, show: bool) -> Figure:
    """Display the figure now if asked (notebook: inline; script: a pyplot window)."""
    if show:
        if in_notebook():
            from IPython.display import display

            display(fig)
        else:
            import matplotlib.pyplot as plt

            plt.show()
    return fig
