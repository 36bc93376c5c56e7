"""The import layers of ``orchestrator``, from the ground up: a module imports only its own layer or lower.

Each entry names packages (or top-level modules) of ``orchestrator``. Inside a layer, imports may run either
way between packages but never in a circle; ``tests/foundation/test_import_layers.py`` walks every import
(function-level and ``TYPE_CHECKING`` ones too) and fails on a circle, an upward import, or a package that
is in no layer.

A stage's ``cli.py`` belongs to the ``commands`` layer rather than to its stage: the command line of one
stage may call on another stage (``config render`` uses ``kohya/``), while the stages stay unaware of the
command line. Packages above ``commands`` keep their ``cli.py``.

A new package goes where what it imports lies below it and what imports it lies above: a stage that turns
video into frames or crops frames sits with ``dataset``; one that judges checkpoints sits with ``evaluate``.
"""

from __future__ import annotations

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("_layers", "common")),          # errors, atomic writes, TOML, hashing, progress
    ("settings", ("config",)),                       # presets, machine paths, --set overrides
    ("sd-scripts", ("kohya",)),                      # the only package that knows sd-scripts
    ("shared models", ("vision",)),                  # image opening, CLIP embeddings, identity rule
    ("data stages", ("extract", "crop", "dataset", "captions")),  # frames in, kohya dataset out
    ("training", ("runner",)),                       # tmux, launching, monitoring, pre-flight
    ("judging", ("evaluate", "verdict")),            # scores per checkpoint, human votes
    ("searching", ("search",)),                      # Optuna over training + judging
    ("queueing", ("queue",)),                        # trainings and searches in turn on free GPUs
    ("commands", ("cli", "__main__", "doctor")),     # `lora-pipeline` and every stage's cli.py
    ("whole chain", ("project", "quickstart", "toy")),  # a project folder run end to end; the toy one
)

COMMAND_MODULE = "cli"  # a stage's command-line module; it sits in the "commands" layer
COMMANDS_LAYER = "commands"
