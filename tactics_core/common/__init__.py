"""The common ground every part of the core stands on, and that imports no other part.

- `errors`: `TacticsError` (every user-facing failure, one line) and `Cancelled`;
- `progress`: the progress callback type, `CancelToken`, the console progress line;
- `atomic`: atomic file and folder writes;
- `workspace`: the workspace layout, every file and folder name of it in one place;
- `formatting`: how sizes and durations are written;
- `system`: what the machine is and how busy (the TUI's system pane);
- `device`: what `device = "auto"` and `precision = "auto"` mean.

Nothing here imports torch; import the modules themselves (this package re-exports nothing,
so that importing one of them stays as cheap as the module).
"""
