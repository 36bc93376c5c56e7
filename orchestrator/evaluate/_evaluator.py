"""Scoring a run's epochs: files in, :class:`EpochScore` objects and ``evaluation/*.json`` out.

An :class:`Evaluator` holds what stays the same across epochs and runs (the encoder, the caches, the
reference and style-anchor embeddings), so the hyperparameter search builds one and calls
:meth:`Evaluator.score_epoch` once per sample epoch: with the images' embeddings cached that costs
a folder scan and a few SQLite lookups.

Images that sd-scripts' validation split held out (``RunFacts.held_out_images``) are not training
images: a sample that resembles one shows the LoRA learned the character, not that it memorised a frame,
so the copying check never compares with them, and a reference that is one of them is no training
overlap (an image of the character the LoRA never saw is the fairest identity reference there is).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.common.errors import UserInputError
from orchestrator.evaluate._calibration import RunCalibration, build_calibration
from orchestrator.evaluate._config import METRICS, EvaluationConfig, load_evaluation_config
from orchestrator.evaluate._embedding import MeasuresCache, embed_texts_cached
from orchestrator.evaluate._evaluation_result import EvaluationResult
from orchestrator.evaluate._gates import loss_gate
from orchestrator.evaluate._metrics import EpochScore, SampleInputs, ScoringContext, score_samples
from orchestrator.evaluate._reference_overlap import find_training_overlap
from orchestrator.evaluate._results import read_scores, scores_path, write_results
from orchestrator.evaluate._rules import centroid
from orchestrator.evaluate._run_facts import RunFacts, gather_run_facts
from orchestrator.evaluate._samples import measure_samples
from orchestrator.evaluate._selection import choose_best
from orchestrator.kohya.outputs import SampleImage
from orchestrator.vision import (
    ClipEncoder,
    EmbeddingCache,
    EmbeddingTable,
    embed_files,
    list_image_files,
    load_clip,
    measure_image,
)


@dataclass(frozen=True)
class _References:
    """The references kept for one training set (those that are training images may be dropped)."""

    identity_rows: np.ndarray  # in the identity backbone's space
    inputs: list[SampleInputs]  # CLIP rows and measures, for the style/technical ceilings and the spread


class Evaluator:
    """Encoder + caches + reference embeddings, reused for every epoch of every run.

    ``references``: a folder of the character's reference images (searched recursively).
    ``encoder``: a loaded :class:`ClipEncoder` or any object with its interface (``identity``,
    ``preprocess``, ``embed_tensors``, ``embed_texts``, ``embedding_dim``: the seam tests use for an
    encoder built for the purpose); default: ``config.clip`` loaded on ``device``.
    ``cache_dir``: the embedding cache folder (default ``orchestrator.vision.default_cache_dir()``).
    ``identity_encoder``: with ``[identity] backbone = "dinov2"``, a loaded DINOv2 encoder (default: loaded
    from ``dino_weights``); identity is then measured in its space, everything else with CLIP.
    """

    def __init__(self, references: str | Path, *, encoder: Any = None,
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
        reference_paths = list_image_files(self.references)
        clip_table, reference_measures, failures = self._embed_and_measure(reference_paths)
        self._reference_clip = clip_table
        self._reference_measures = reference_measures
        self._reference_identity = (self._embed(clip_table.paths, self.identity_encoder).as_dict()
                                    if self.identity_encoder is not None else clip_table.as_dict())
        self.problems.extend(_failure_lines("reference", failures))
        if not self._reference_identity:
            self.fatal.append(f"reference folder {self.references} has no readable images: identity cannot "
                              "be scored and no epoch gets a total")
        style = self.config.style
        self.anchor_embeddings = embed_texts_cached(
            self.encoder, [style.target_anchor, *style.drift_anchors], self.cache)
        self._contexts: dict[tuple[tuple[Path, ...], tuple[Path, ...]],
                             tuple[ScoringContext, list[str], _References]] = {}
        self._calibrations: dict[tuple[object, ...], RunCalibration] = {}

    @property
    def reference_embeddings(self) -> np.ndarray:
        """Every readable reference's row in the identity space (before any overlap with training is dropped)."""
        return _rows(np.stack(list(self._reference_identity.values())) if self._reference_identity
                     else np.zeros((0, 0)), (self.identity_encoder or self.encoder).embedding_dim)

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
        context, _, _ = self._context(facts.training_image_dirs, facts.held_out_images)
        samples = facts.samples_by_epoch.get(epoch, [])
        if not samples:
            known = sorted(facts.samples_by_epoch)
            return EpochScore(epoch, {m: None for m in METRICS}, {}, None, [],
                              [f"no samples for epoch {epoch} (sample epochs: {known or 'none'})"])
        calibration = self.calibration_for(facts)
        inputs, failures = self._inputs(samples, facts)
        score = score_samples(epoch, inputs, context, calibration)
        score.warnings[:0] = _failure_lines("sample", failures)
        checkpoint = facts.checkpoints_by_epoch.get(epoch)
        score.checkpoint = str(checkpoint.path) if checkpoint else None
        first_bad = next((p for p in facts.record.losses if not math.isfinite(p.loss)), None)
        score.gates.append(loss_gate(first_bad.step if first_bad else None, first_bad.epoch if first_bad else None,
                                     first_bad.loss if first_bad else None, epoch, known=bool(facts.record.losses)))
        score.warnings.extend(_loss_warnings(facts, epoch))
        return score

    def calibration_for(self, facts: RunFacts) -> RunCalibration:
        """Floors and ceilings of the run (memoised by training set and epoch-0 sample files)."""
        context, _, references = self._context(facts.training_image_dirs, facts.held_out_images)
        key = (tuple(sorted(facts.training_image_dirs)), tuple(sorted(facts.held_out_images)),
               tuple(s.path for s in facts.base_samples))
        if key not in self._calibrations:
            base_inputs, _ = self._inputs(facts.base_samples, facts)
            base_images, _ = measure_samples(base_inputs, context, check_copying=False)
            reference_images, _ = measure_samples(references.inputs, context, check_copying=False)
            clip_rows = (np.stack([r.embedding for r in references.inputs]) if references.inputs
                         else np.zeros((0, self.encoder.embedding_dim)))
            self._calibrations[key] = build_calibration(
                self.config, base_images=base_images, base_inputs=base_inputs, reference_images=reference_images,
                reference_identity_rows=references.identity_rows, reference_clip_rows=clip_rows)
        return self._calibrations[key]

    def context_for(self, training_dirs: tuple[Path, ...],
                    held_out: tuple[Path, ...] = ()) -> tuple[ScoringContext, list[str]]:
        """The scoring context for a training set (memoised: a search reuses one dataset)."""
        context, problems, _ = self._context(training_dirs, held_out)
        return context, problems

    def _context(self, training_dirs: tuple[Path, ...],
                 held_out: tuple[Path, ...] = ()) -> tuple[ScoringContext, list[str], _References]:
        folders = tuple(sorted(training_dirs))
        key = (folders, tuple(sorted(held_out)))
        if key not in self._contexts:
            problems: list[str] = []
            paths: list[Path] = []
            for folder in folders:
                if folder.is_dir():
                    paths.extend(list_image_files(folder))
                else:
                    problems.append(f"training image folder {folder} not found: copying is not checked")
            excluded = {path.resolve() for path in held_out}
            paths = [path for path in paths if path.resolve() not in excluded]
            if not folders:
                problems.append("no training image folder (config/dataset.toml or --train-images): copying is "
                                "not checked and style compares with the references")
            table = self._embed(paths)
            problems.extend(_failure_lines("training", table.failures))
            references = self._kept_references(table, problems)
            training = _rows(table.vectors, self.encoder.embedding_dim)
            clip_rows = np.stack([r.embedding for r in references.inputs]) if references.inputs else training[:0]
            style_source = training if len(training) else clip_rows
            context = ScoringContext(
                config=self.config, reference_embeddings=references.identity_rows,
                training_embeddings=training,
                training_names=tuple(_relative(p, p.parents[1]) for p in table.paths),
                style_centroid=centroid(style_source) if len(style_source) else None,
                anchor_embeddings=self.anchor_embeddings)
            self._contexts[key] = (context, problems, references)
        return self._contexts[key]

    def _kept_references(self, training: EmbeddingTable, problems: list[str]) -> _References:
        settings = self.config.references
        clip = self._reference_clip
        overlaps = find_training_overlap(list(zip(clip.paths, clip.hashes, strict=True)),
                                         list(zip(training.paths, training.hashes, strict=True)),
                                         max_bits=settings.near_duplicate_bits)
        # A pHash match must be confirmed by the encoder: flat, low-detail images share pHashes by chance.
        overlaps = [o for o in overlaps if o.how == "same file content" or float(
            np.dot(clip[o.reference], training[o.training])) >= self.config.copying_similarity]
        dropped: set[Path] = set()
        if overlaps:
            listing = "; ".join(f"{o.reference.name} = {o.training} ({o.how})" for o in overlaps[:5])
            if settings.training_overlap == "refuse":
                raise UserInputError(f"{len(overlaps)} reference image(s) are training images: {listing}",
                                     path=self.references, key="references.training_overlap",
                                     hint="use references the LoRA never trained on (identity would reward "
                                          "copying), or set training_overlap = \"exclude\"")
            action = ("dropped from the identity references" if settings.training_overlap == "exclude"
                      else "kept (training_overlap = \"warn\"): identity rewards reproducing them")
            problems.append(f"{len(overlaps)} reference image(s) are training images, {action}: {listing}")
            if settings.training_overlap == "exclude":
                dropped = {o.reference for o in overlaps}
        kept = [p for p in clip.paths if p not in dropped and p in self._reference_identity]
        if clip.paths and not kept:
            problems.append("every reference is a training image: identity cannot be scored")
        inputs = [SampleInputs(name=str(p.name), prompt_index=-1, seed=None, embedding=clip[p], prompt_embedding=None,
                               measures=self._reference_measures[p]) for p in kept if p in self._reference_measures]
        identity_rows = _rows(np.stack([self._reference_identity[p] for p in kept]) if kept else np.zeros((0, 0)),
                              (self.identity_encoder or self.encoder).embedding_dim)
        return _References(identity_rows=identity_rows, inputs=inputs)

    def _inputs(self, samples: list[SampleImage], facts: RunFacts) -> tuple[list[SampleInputs], dict[Path, Exception]]:
        """Embeddings, measures and prompt rows of ``samples``; the unreadable ones in the failures."""
        table, measures, failures = self._embed_and_measure([s.path for s in samples])
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
        return inputs, failures

    # -- a whole run ------------------------------------------------------------------------------

    def evaluate(self, run_dir: str | Path, *, epochs: list[int] | None = None,
                 prompts_file: str | Path | None = None, train_images: str | Path | None = None,
                 write: bool = True) -> EvaluationResult:
        """Score ``epochs`` (default: every sample epoch), choose the best, write the result files.

        With ``epochs``, scores of other epochs already in ``scores.json`` (same encoder) are kept, so
        the best epoch is still chosen over the whole run. A result with ``fatal`` problems is written
        only where no ``scores.json`` exists yet: earlier results are never replaced by a failed run
        (``scores_path`` and ``best_path`` stay None then).
        """
        started = time.perf_counter()
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise UserInputError("run folder not found", path=run_dir)
        facts = gather_run_facts(run_dir, prompts_file=prompts_file, train_images=train_images)
        _, context_problems, _ = self._context(facts.training_image_dirs, facts.held_out_images)
        calibration = self.calibration_for(facts)
        problems = [*self.problems, *facts.problems, *context_problems]
        problems.extend(f"calibration of {m}: {c.fallback}" for m, c in calibration.metrics.items() if c.fallback)
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
                                  facts=facts, fatal=fatal, calibration=calibration)
        result.seconds = time.perf_counter() - started
        # A failed evaluation never replaces results: only a run with no results yet records its failure.
        if write and not (fatal and scores_path(run_dir).is_file()):
            result.scores_path, result.best_path = write_results(result, references=self.references)
        return result

    def _embed(self, paths: list[Path], encoder: Any = None) -> EmbeddingTable:
        return embed_files(encoder or self.encoder, paths, cache=self.cache,
                           batch_size=self.config.clip.batch_size, progress=self.progress)

    def _embed_and_measure(self, paths: list[Path]) -> tuple[EmbeddingTable, dict[Path, Any], dict[Path, Exception]]:
        """CLIP rows and technical measures from one decode of each new file (both cached by content)."""
        table = embed_files(self.encoder, paths, cache=self.cache, batch_size=self.config.clip.batch_size,
                            progress=self.progress, also=measure_image)
        measures, measure_failures = self.measures.measures_for(table.paths, table.hashes, measured=table.extras)
        return table, measures, {**table.failures, **measure_failures}


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
    first_bad = next((p for p in facts.record.losses if not math.isfinite(p.loss)), None)
    if first_bad is None or (first_bad.epoch is not None and first_bad.epoch > epoch):
        return []
    name = "NaN" if math.isnan(first_bad.loss) else "infinite"
    return [f"{name} loss from step {first_bad.step} (epoch {first_bad.epoch}): the weights of this checkpoint are "
            "broken; the epoch cannot be chosen while a clean one exists"]
