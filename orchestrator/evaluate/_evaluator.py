"""Scoring a run's epochs: files in, :class:`EpochScore` objects and ``evaluation/*.json`` out.

An :class:`Evaluator` holds what stays the same across epochs and runs (the encoder, the caches, the
reference and style-anchor embeddings), so the hyperparameter search builds one and calls
:meth:`Evaluator.score_epoch` once per sample epoch: with the images' embeddings cached that costs
a folder scan and a few SQLite lookups.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.common.errors import UserInputError
from orchestrator.evaluate._config import METRICS, EvaluationConfig, load_evaluation_config
from orchestrator.evaluate._embedding import MeasuresCache, embed_texts_cached
from orchestrator.evaluate._metrics import EpochScore, SampleInputs, ScoringContext, score_samples
from orchestrator.evaluate._results import read_scores, write_results
from orchestrator.evaluate._rules import centroid
from orchestrator.evaluate._run_facts import RunFacts, gather_run_facts
from orchestrator.evaluate._selection import BestChoice, choose_best
from orchestrator.vision import (
    ClipEncoder,
    EmbeddingCache,
    EmbeddingTable,
    embed_files,
    list_image_files,
    load_clip,
)


@dataclass
class EvaluationResult:
    run_dir: Path
    epochs: dict[int, EpochScore]
    best: BestChoice | None
    problems: list[str]
    config: EvaluationConfig
    encoder_identity: str
    facts: RunFacts | None = None
    scores_path: Path | None = None
    best_path: Path | None = None
    seconds: float = 0.0
    fatal: list[str] = field(default_factory=list)  # problems that leave the objective undefined


class Evaluator:
    """Encoder + caches + reference embeddings, reused for every epoch of every run.

    ``references``: a folder of the character's reference images (searched recursively).
    ``encoder``: a loaded :class:`ClipEncoder`; default: ``config.clip`` loaded on ``device``.
    ``cache_dir``: the embedding cache folder (default ``orchestrator.vision.default_cache_dir()``).
    ``identity_encoder``: with ``[identity] backbone = "dinov2"``, a loaded DINOv2 encoder (default: loaded
    from ``dino_weights``); identity is then measured in its space, everything else with CLIP.
    """

    def __init__(self, references: str | Path, *, encoder: ClipEncoder | None = None,
                 config: EvaluationConfig | None = None, cache_dir: str | Path | None = None,
                 device: str = "cpu", progress: bool = False, identity_encoder: Any = None) -> None:
        self.config = config or load_evaluation_config()
        self.encoder = encoder or load_clip(self.config.clip.model, self.config.clip.weights, device=device)
        self.identity_encoder = identity_encoder
        if self.identity_encoder is None and self.config.identity.backbone == "dinov2":
            from orchestrator.evaluate._dino import load_dino

            self.identity_encoder = load_dino(self.config.identity.dino_weights, device=device)
        self.cache = EmbeddingCache(cache_dir)
        self.measures = MeasuresCache(self.cache.cache_dir)
        self.progress = progress
        self.problems: list[str] = []
        self.fatal: list[str] = []  # problems that leave every total undefined
        self.references = Path(references)
        if not self.references.is_dir():
            raise UserInputError("reference folder not found", path=self.references,
                                 hint="pass --references DIR with images of the character")
        identity_encoder = self.identity_encoder or self.encoder
        reference_table = self._embed(list_image_files(self.references), identity_encoder)
        self.reference_embeddings = _rows(reference_table.vectors, identity_encoder.embedding_dim)
        self.problems.extend(_failure_lines("reference", reference_table.failures))
        if len(reference_table) == 0:
            self.fatal.append(f"reference folder {self.references} has no readable images: identity cannot "
                                 "be scored and no epoch gets a total")
        style = self.config.style
        self.anchor_embeddings = embed_texts_cached(
            self.encoder, [style.target_anchor, *style.drift_anchors], self.cache)
        self._contexts: dict[tuple[Path, ...], tuple[ScoringContext, list[str]]] = {}

    @property
    def scoring_identity(self) -> str:
        """The models behind the numbers: scores from different ones are not comparable (nor merged)."""
        if self.identity_encoder is None:
            return self.encoder.identity
        return f"{self.encoder.identity} + identity {self.identity_encoder.identity}"

    def close(self) -> None:
        self.cache.close()
        self.measures.close()

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one epoch --------------------------------------------------------------------------------

    def score_epoch(self, run_dir: str | Path, epoch: int, *, facts: RunFacts | None = None,
                    prompts_file: str | Path | None = None, train_images: str | Path | None = None) -> EpochScore:
        """Score the samples of ``epoch`` in ``run_dir`` (no files written)."""
        facts = facts or gather_run_facts(run_dir, prompts_file=prompts_file, train_images=train_images)
        context, _ = self.context_for(facts.training_image_dirs)
        samples = facts.samples_by_epoch.get(epoch, [])
        if not samples:
            known = sorted(facts.samples_by_epoch)
            return EpochScore(epoch, {m: None for m in METRICS}, {}, None, [],
                              [f"no samples for epoch {epoch} (sample epochs: {known or 'none'})"])
        table = self._embed([s.path for s in samples])
        measures, measure_failures = self.measures.measures_for(table.paths, table.hashes)
        failures = {**table.failures, **measure_failures}
        identity_rows: dict[Path, np.ndarray] = {}
        if self.identity_encoder is not None:
            identity_table = self._embed(table.paths, self.identity_encoder)
            identity_rows = identity_table.as_dict()
            failures.update(identity_table.failures)
        by_path = {s.path: s for s in samples}
        prompt_texts = {p.index: p.text for p in facts.prompts}
        texts = sorted({prompt_texts[s.prompt_index] for s in samples if s.prompt_index in prompt_texts})
        text_rows = dict(zip(texts, embed_texts_cached(self.encoder, texts, self.cache), strict=True))
        inputs = []
        for path, vector in zip(table.paths, table.vectors, strict=True):
            if path not in measures or (self.identity_encoder is not None and path not in identity_rows):
                continue  # unreadable for one of the models: already listed in the failures
            sample = by_path[path]
            text = prompt_texts.get(sample.prompt_index)
            inputs.append(SampleInputs(
                name=_relative(path, facts.run_dir), prompt_index=sample.prompt_index, seed=sample.seed,
                embedding=vector, prompt_embedding=text_rows[text] if text is not None else None,
                measures=measures[path], identity_embedding=identity_rows.get(path)))
        score = score_samples(epoch, inputs, context)
        score.warnings[:0] = _failure_lines("sample", failures)
        checkpoint = facts.checkpoints_by_epoch.get(epoch)
        score.checkpoint = str(checkpoint.path) if checkpoint else None
        score.warnings.extend(_loss_warnings(facts, epoch))
        return score

    def context_for(self, training_dirs: tuple[Path, ...]) -> tuple[ScoringContext, list[str]]:
        """The scoring context for a training set (memoised: a search reuses one dataset)."""
        key = tuple(sorted(training_dirs))
        if key not in self._contexts:
            problems: list[str] = []
            paths: list[Path] = []
            for folder in key:
                if folder.is_dir():
                    paths.extend(list_image_files(folder))
                else:
                    problems.append(f"training image folder {folder} not found: copying is not checked")
            if not key:
                problems.append("no training image folder (config/dataset.toml or --train-images): copying is "
                                "not checked and style compares with the references")
            table = self._embed(paths)
            problems.extend(_failure_lines("training", table.failures))
            training = _rows(table.vectors, self.encoder.embedding_dim)
            style_source = training if len(training) else self.reference_embeddings
            context = ScoringContext(
                config=self.config, reference_embeddings=self.reference_embeddings,
                training_embeddings=training,
                training_names=tuple(_relative(p, p.parents[1]) for p in table.paths),
                style_centroid=centroid(style_source) if len(style_source) else None,
                anchor_embeddings=self.anchor_embeddings)
            self._contexts[key] = (context, problems)
        return self._contexts[key]

    # -- a whole run ------------------------------------------------------------------------------

    def evaluate(self, run_dir: str | Path, *, epochs: list[int] | None = None,
                 prompts_file: str | Path | None = None, train_images: str | Path | None = None,
                 write: bool = True) -> EvaluationResult:
        """Score ``epochs`` (default: every sample epoch), choose the best, write the result files.

        With ``epochs``, scores of other epochs already in ``scores.json`` (same encoder) are kept, so
        the best epoch is still chosen over the whole run.
        """
        started = time.perf_counter()
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise UserInputError("run folder not found", path=run_dir)
        facts = gather_run_facts(run_dir, prompts_file=prompts_file, train_images=train_images)
        _, context_problems = self.context_for(facts.training_image_dirs)
        problems = [*self.problems, *facts.problems, *context_problems]
        wanted = sorted(facts.samples_by_epoch) if epochs is None else sorted(set(epochs))
        fatal = list(self.fatal)
        if not facts.samples_by_epoch:
            fatal.append(f"no sample images in {run_dir / 'sample'} (set sample_every_n_epochs and "
                         "sample_prompts for the run, or run `lora-pipeline test-checkpoints`)")
        scores = read_scores(run_dir, self.scoring_identity) if epochs is not None else {}
        for epoch in wanted:
            scores[epoch] = self.score_epoch(run_dir, epoch, facts=facts)
        best = choose_best(scores, self.config.weights, require_checkpoint=self.config.require_checkpoint)
        if best is None and not fatal:
            fatal.append("no epoch has a complete score (see the warnings per epoch)")
        result = EvaluationResult(run_dir=run_dir, epochs=dict(sorted(scores.items())), best=best,
                                  problems=problems, config=self.config, encoder_identity=self.scoring_identity,
                                  facts=facts, fatal=fatal)
        result.seconds = time.perf_counter() - started
        if write:
            result.scores_path, result.best_path = write_results(result, references=self.references)
        return result

    def _embed(self, paths: list[Path], encoder: Any = None) -> EmbeddingTable:
        return embed_files(encoder or self.encoder, paths, cache=self.cache,
                           batch_size=self.config.clip.batch_size, progress=self.progress)


def evaluate_run(run_dir: str | Path, *, references: str | Path, epochs: list[int] | None = None,
                 encoder: ClipEncoder | None = None, config: EvaluationConfig | None = None,
                 prompts_file: str | Path | None = None, train_images: str | Path | None = None,
                 cache_dir: str | Path | None = None, device: str = "cpu", write: bool = True,
                 progress: bool = False) -> EvaluationResult:
    """Score a run's sample epochs and write ``RUN_DIR/evaluation/{scores,best}.json``.

    Example::

        encoder = load_clip("ViT-L-14", "openai", device="cuda")   # once
        result = evaluate_run("outputs/luca_v1", references="data/references", encoder=encoder)
        print(result.best.epoch, result.best.reason)
    """
    with Evaluator(references, encoder=encoder, config=config, cache_dir=cache_dir, device=device,
                   progress=progress) as evaluator:
        return evaluator.evaluate(run_dir, epochs=epochs, prompts_file=prompts_file,
                                  train_images=train_images, write=write)


def score_epoch(run_dir: str | Path, epoch: int, *, evaluator: Evaluator | None = None,
                references: str | Path | None = None, encoder: ClipEncoder | None = None,
                config: EvaluationConfig | None = None, cache_dir: str | Path | None = None) -> EpochScore:
    """Score one epoch. Pass a long-lived ``evaluator`` in a loop; otherwise one is built (and closed)."""
    if evaluator is not None:
        return evaluator.score_epoch(run_dir, epoch)
    if references is None:
        raise UserInputError("score_epoch needs an evaluator or references")
    with Evaluator(references, encoder=encoder, config=config, cache_dir=cache_dir) as built:
        return built.score_epoch(run_dir, epoch)


def _rows(vectors: np.ndarray, dim: int) -> np.ndarray:
    return vectors if vectors.size else np.zeros((0, dim), dtype=np.float32)


def _failure_lines(kind: str, failures: dict[Path, Exception]) -> list[str]:
    return [f"unreadable {kind} image skipped: {error}" for error in failures.values()]


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _loss_warnings(facts: RunFacts, epoch: int) -> list[str]:
    first_nan = next((p for p in facts.record.losses if math.isnan(p.loss)), None)
    if first_nan is None or (first_nan.epoch is not None and first_nan.epoch > epoch):
        return []
    return [f"NaN loss from step {first_nan.step} (epoch {first_nan.epoch}): the weights of this checkpoint are "
            "likely broken"]
