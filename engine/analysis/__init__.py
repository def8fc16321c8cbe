"""Measurements on sound and picture that the engine reports with its takes (onsets, sync)."""
