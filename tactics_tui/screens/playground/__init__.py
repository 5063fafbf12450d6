"""The Playground screen (5): ask a model for proof lines, the prover's way or freely.

`screen.py` is the screen (its jobs and their outcomes), `prover_pane.py` and
`candidates_pane.py` its two panes, `state.py` what it remembers (plain classes, no Textual),
`models.py` the models it offers.
"""

from .models import model_layout, model_options
from .screen import CandidatesReady, GoalsRead, LayoutRead, PlaygroundScreen, ProverStep
from .state import FREE_MODE, MODES, PROVER_MODE, PlaygroundState, Rollout

__all__ = [
    "FREE_MODE",
    "MODES",
    "PROVER_MODE",
    "CandidatesReady",
    "GoalsRead",
    "LayoutRead",
    "PlaygroundScreen",
    "PlaygroundState",
    "ProverStep",
    "Rollout",
    "model_layout",
    "model_options",
]
