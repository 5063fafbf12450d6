"""See tactics_tui.app."""
