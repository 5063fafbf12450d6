"""Sample sweep space files (`tactics sweep scorer-sizes`, docs/sweeps.md). Installed as the package tactics_core.builtin_presets.sweeps."""
