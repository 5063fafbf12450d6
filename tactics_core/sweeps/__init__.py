"""Hyperparameter sweeps (`tactics sweep`): a search space over preset keys (`space.py`), each trial
a normal training run in its own run folder at an equal wall-clock budget, searched and pruned by
Optuna with its study kept in the workspace (`study.py`; read back by `record.py`), and the best trials optionally judged by
the real prover (`judge.py`). Only the CLI and the TUI import this part."""
