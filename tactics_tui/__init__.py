"""tactics_tui: the Textual training console. It only drives tactics_core."""
