"""The app's screens, listed once: mode name, title, key and class of each.

The app makes its modes, its 1-8 key bindings and its "Go to" commands from
`SCREENS`; the top line (`widgets/nav.NavBar`) shows it and marks the screen
it is on by class. A new screen is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.screen import Screen

from .screens.checkpoints import CheckpointsScreen
from .screens.corpus import CorpusScreen
from .screens.playground import PlaygroundScreen
from .screens.presets import PresetsScreen
from .screens.runs import RunsScreen
from .screens.sweeps import SweepsScreen
from .screens.tokenizer import TokenizerScreen
from .screens.training import TrainingScreen


@dataclass(frozen=True)
class ScreenEntry:
    mode: str  # the app mode (`App.switch_mode`)
    title: str  # in the top line and the command palette
    key: str  # the key that shows it
    screen: type[Screen]
    short: str = ""  # the top line's title when the full ones do not fit (80 columns)


SCREENS: tuple[ScreenEntry, ...] = (
    ScreenEntry("corpus", "Corpus", "1", CorpusScreen),
    ScreenEntry("tokenizer", "Tokenizer", "2", TokenizerScreen),
    ScreenEntry("training", "Training", "3", TrainingScreen),
    ScreenEntry("checkpoints", "Checkpoints", "4", CheckpointsScreen, short="Ckpts"),
    ScreenEntry("playground", "Playground", "5", PlaygroundScreen, short="Play"),
    ScreenEntry("presets", "Presets", "6", PresetsScreen),
    ScreenEntry("runs", "Runs", "7", RunsScreen),
    ScreenEntry("sweeps", "Sweeps", "8", SweepsScreen),
)
