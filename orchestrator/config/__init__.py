"""Presets, machine paths and ``--set`` overrides: our own typed view of a training configuration."""
