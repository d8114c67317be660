"""Numbered SQL migrations of the state file (``NNN_name.sql``), applied in order."""
