"""Training runs as folders on disk: how a run is started, recorded, found and resumed.

- `run_folder`: one run's folder (lock, `run.json`, the `Recorder` the trainer emits events
  through, a detached training process, stop / attach);
- `run_events`: the run-event schema of `metrics.jsonl`, its one writer and its readers, `RunView`;
- `workspace_runs`: the runs of a workspace (naming, the current run, the best model, listing,
  diff, removal);
- `launch`: the one way a run is started (`LaunchRequest`: attached, detached, under torchrun);
- `checkpoints`: saving, listing and loading checkpoints (`torch.load` lives only there).

Import the modules themselves: this package re-exports nothing, so that the TUI can read a run
folder without loading the training loop (which `launch` imports) or torch.
"""
