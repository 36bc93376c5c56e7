"""Helpers every stage shares: user-facing errors, atomic writes, TOML in and out, content hashes, CLI verbs."""

from orchestrator.common.atomic import atomic_folder, atomic_write_bytes, atomic_write_json, atomic_write_text
from orchestrator.common.errors import PipelineError, UserInputError
from orchestrator.common.hashing import file_sha256

__all__ = [
    "PipelineError",
    "UserInputError",
    "atomic_folder",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "file_sha256",
]
