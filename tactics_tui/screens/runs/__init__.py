"""The Runs screen (7): every training run of the workspace, their curves overlaid, what differs.

`screen.py` is the screen (its jobs and actions), `table.py` the runs table, `details.py` the
side box's text (a run's details, a diff), `selection.py` the runs chosen for the chart and
the baseline (a plain class, no Textual).
"""

from .details import diff_text, run_details
from .screen import CurvesRead, RunsListed, RunsScreen
from .selection import RunSelection

__all__ = ["CurvesRead", "RunSelection", "RunsListed", "RunsScreen", "diff_text", "run_details"]
