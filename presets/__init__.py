"""Built-in presets (TOML). Installed as the package tactics_core.builtin_presets."""
