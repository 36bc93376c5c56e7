"""Toy inputs that let the whole chain run with no downloads: random-weight models of the real
architectures, the CLIP tokenizer built from open_clip's BPE file, and a procedurally drawn character."""

from orchestrator.toy.character_dataset import (
    FRAME_KINDS,
    ToyDataset,
    ToyDatasetSpec,
    ToyFrame,
    generate_toy_dataset,
    generate_toy_references,
    load_toy_dataset,
)
from orchestrator.toy.random_sd15 import build_random_sd15, is_random_sd15
from orchestrator.vision.clip_tokenizer import TOKENIZER_FOLDER_NAME, build_clip_tokenizer_dir

__all__ = [
    "FRAME_KINDS",
    "TOKENIZER_FOLDER_NAME",
    "ToyDataset",
    "ToyDatasetSpec",
    "ToyFrame",
    "build_clip_tokenizer_dir",
    "build_random_sd15",
    "generate_toy_dataset",
    "generate_toy_references",
    "is_random_sd15",
    "load_toy_dataset",
]

from orchestrator.toy.film import FILM_TRUTH_NAME, ToyFilm, ToyFilmSpec, generate_toy_film  # noqa: E402

__all__ += ["FILM_TRUTH_NAME", "ToyFilm", "ToyFilmSpec", "generate_toy_film"]
