"""Training a model: the loop and what it is made of.

- `loop`: the training loop (`train` or `run_training(TrainRequest)`, `LoopState`, schedule, evaluation, early stop, exact resume);
- `model_kind`: the seam between the loop and a model kind (`TrainingKind`, `Evaluation`);
- `kinds`: the kinds by name (`training_kind`: the GPT, the scorer; `export_checkpoint`);
- `presets`: the preset files (TOML) that say what to train and how, `PresetError`;
- `distributed`: data-parallel runs under torchrun (`DistHandle`, `on_main`, `main_first`);
- `muon`: the Muon + AdamW optimizer.

Import the modules themselves: this package re-exports nothing, so that `tactics --help` and
the presets form do not load the loop or torch.
"""
