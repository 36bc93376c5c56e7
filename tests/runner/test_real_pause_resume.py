"""THE PROOF that a paused trial continues as if it had never stopped, on the REAL sd-scripts (CPU, a
random-weight SD1.5 model, 64 px, 2 images, batch 1, 4 epochs = 8 steps, a cosine schedule with warm-up
so that a restarted schedule would show in the weights).

Through ``KohyaExecutor`` (render, runner in tmux, the pause at ``until_epoch`` and the resume from the
state), with the scores left out (a stub evaluator: scoring is not what is proved here). One straight
4-epoch run and one paused after epoch 2 and resumed to epoch 4, same configuration and seed. The resumed
run must have the straight run's step count and epochs in its record, the same checkpoints and samples,
and LoRA weights within :data:`RELATIVE_TOLERANCE` of the straight run's.

The preset asks for ``max_data_loader_n_workers = 0`` (as our quickstart preset does); a pausable run is
rendered with one non-persistent worker instead (``kohya.train_state.pausable_arguments``), and this test
proves that it has to be.

Measured (2026-12-07, this machine, pinned sd-scripts 48d368fa, torch 2.14 CPU, two identical images):

- Two straight runs with one seed are bit-identical (max |a - b| = 0.0 for every tensor, at epoch 2 and at
  the end): the noise floor on this machine is zero.
- With no data loader worker (as the preset asks), the resumed run is bit-identical at epoch 2 and has the
  same steps, epochs, checkpoints and samples, but at epoch 4 its worst tensor differs by 0.19 of its norm
  (max |a - b| = 1.7e-3; epochs 3-4 themselves change the weights by 0.61 of the norm) and its epoch-4
  sample differs. The cause: with no worker sd-scripts' collator reshuffles the *main process's* dataset,
  which carries its bucket order from epoch to epoch, and an epoch's first batch is drawn before the
  collator sets the epoch -- so the first batch after a resume comes from epoch 0's order in the resumed
  process and from epoch 2's in the straight one. Identical images do not hide it: the cached latents
  are VAE samples, so the two images are two different latents.
- With one non-persistent worker (each epoch's worker forked from a main dataset that stays at epoch 0,
  in both runs), the resumed run's per-step losses of epochs 3-4 equal the straight run's to the last bit
  (0.989097535610199, 0.9510743618011475, 0.9777651429176331, 0.7711262702941895), and its final LoRA and
  every sample are bit-identical (max |a - b| = 0.0, worst relative norm 0.0, sample pixels 0).

So :data:`RELATIVE_TOLERANCE` is far below the defect (0.19) and only leaves room for float
reassociation should another machine's thread count change a reduction order (~1e-7 relative in fp32).

Two real runs: ~25 min on this shared 2-core machine, ~2 min alone (marker ``sd_scripts`` + ``slow``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.common.tomlfile import dumps_toml
from orchestrator.config.paths import ProjectPaths
from orchestrator.kohya.outputs import find_samples
from orchestrator.search.executor import TrialRequest
from orchestrator.search.kohya_executor import KohyaExecutor
from tests.runner.conftest import make_dataset

pytestmark = [pytest.mark.sd_scripts, pytest.mark.slow, pytest.mark.timeout(3000)]

EPOCHS, PAUSE_AT, STEPS_PER_EPOCH = 4, 2, 2
#: The largest |straight - resumed| / |straight| over the LoRA tensors (Frobenius norms): measured 0.0
#: (bit-identical), 0.19 with the defect; see the module docstring.
RELATIVE_TOLERANCE = 1e-6

PRESET = {
    "preset": {"name": "real_pause_resume", "family": "sd15", "min_vram_gb": 0.0},
    "dataset": {"resolution": 64, "batch_size": 1, "enable_bucket": False, "caption_extension": ".txt",
                "shuffle_caption": False, "num_repeats": 1},
    "network": {"network_module": "networks.lora", "network_dim": 4, "network_alpha": 4.0},
    "optimizer": {"optimizer_type": "AdamW", "learning_rate": 1e-3, "lr_scheduler": "cosine",
                  "lr_warmup_steps": 2},
    "training": {"max_train_epochs": EPOCHS, "seed": 42, "mixed_precision": "no", "cache_latents": True,
                 "max_data_loader_n_workers": 0},
    "saving": {"save_model_as": "safetensors", "save_every_n_epochs": PAUSE_AT},
    "sample": {"sample_every_n_epochs": PAUSE_AT, "sample_sampler": "euler_a"},
}


class _NoScores:
    """The evaluator's interface without CLIP: every epoch unscored, nothing to choose from."""

    def score_epoch(self, run_dir: Path, epoch: int) -> SimpleNamespace:
        return SimpleNamespace(total=None)

    def evaluate(self, run_dir: Path) -> SimpleNamespace:
        return SimpleNamespace(epochs={}, best=None)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Difference:
    max_abs: float  # the largest elementwise difference over every LoRA tensor
    max_weight: float  # the largest weight of the reference (straight) checkpoint
    worst_relative_norm: float  # max over tensors of |a - b| / |a| (Frobenius norms)


def lora_difference(a: Path, b: Path) -> Difference:
    """How far the LoRA in ``b`` is from the one in ``a``. The up weights start at zero, so for them
    ``|a - b| / |a|`` is the difference as a share of what training changed."""
    import numpy
    from safetensors.numpy import load_file

    left, right = load_file(str(a)), load_file(str(b))
    assert sorted(left) == sorted(right), "the two checkpoints hold different tensors"
    max_abs = max_weight = worst = 0.0
    for key, value in left.items():
        x, y = value.astype(numpy.float64), right[key].astype(numpy.float64)
        max_abs = max(max_abs, float(numpy.abs(x - y).max()))
        max_weight = max(max_weight, float(numpy.abs(x).max()))
        norm = float(numpy.linalg.norm(x))
        if norm:
            worst = max(worst, float(numpy.linalg.norm(x - y)) / norm)
    return Difference(max_abs, max_weight, worst)


@pytest.fixture
def world(tmp_path, sd_scripts_dir, trainer_python, random_sd15_model, clip_tokenizer_cache, trainer_env,
          monkeypatch, tmux_socket, sd_scripts_exclusive):
    for key, value in trainer_env.items():  # the tmux server (started by this test) passes them on
        monkeypatch.setenv(key, value)
    # Two identical images, yet two different cached latents (VAE samples): the batch order still counts.
    images = make_dataset(tmp_path / "data" / "1_img", count=1)
    for suffix in (".png", ".txt"):
        (images / f"frame_001{suffix}").write_bytes((images / f"frame_000{suffix}").read_bytes())
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("sks a red square --n blurry --w 64 --h 64 --d 1234 --s 2 --l 7.5\n", encoding="utf-8")
    paths = ProjectPaths(root=tmp_path, sd_scripts=sd_scripts_dir, trainer_python=trainer_python,
                         base_model_sd15=str(random_sd15_model), base_model_sdxl="",
                         tokenizer_cache_dir=str(clip_tokenizer_cache), dataset_dir=tmp_path / "data",
                         output_root=tmp_path, logs_dir=tmp_path / "logs", prompts_file=prompts)
    executor = KohyaExecutor(paths=paths, references=tmp_path, device="cpu", allow_cpu=True,
                             tmux_socket=tmux_socket, poll_seconds=0.5, stop_timeout=120)
    executor._evaluator = _NoScores()
    return executor, tmp_path


def _request(root: Path, number: int) -> TrialRequest:
    directory = root / "trials" / f"trial_{number:04d}"
    directory.mkdir(parents=True)
    (directory / "config.toml").write_text(dumps_toml(PRESET), encoding="utf-8")
    return TrialRequest(number, directory, PRESET, {}, {}, "proof")


def _never(epoch: int, score: float, validation_loss: float | None = None) -> bool:
    return False


def _record(request: TrialRequest) -> dict:
    return json.loads((request.run_dir / "run.json").read_text())


def _why(request: TrialRequest) -> str:
    """What a failed pause left behind: the run's end, the stop asked, its epochs and saved states."""
    record = _record(request)
    states = sorted(p.name for p in request.run_dir.glob("*-state"))
    return (f"status {record.get('status')}, stop {record.get('stop_reason')}, epochs "
            f"{[e.get('epoch') for e in record.get('epochs', [])]}, states {states}, log {record.get('log_path')}")


def _outputs(request: TrialRequest) -> tuple[list[str], list[tuple[int | None, int]]]:
    name = f"trial_{request.number:04d}"
    checkpoints = sorted(p.name.replace(name, "NAME") for p in request.run_dir.glob("*.safetensors"))
    samples, _ = find_samples(request.run_dir, name)
    return checkpoints, sorted((s.epoch, s.prompt_index) for s in samples)


def test_a_run_paused_after_epoch_2_and_resumed_matches_a_straight_run(world) -> None:
    executor, root = world
    straight, paused = _request(root, 0), _request(root, 2)

    outcome = executor.run(straight, _never)
    assert outcome.failure_cause is None and outcome.paused_at is None, _record(straight).get("log_path")
    first = executor.run(replace(paused, until_epoch=PAUSE_AT), _never)
    assert first.failure_cause is None and first.paused_at == PAUSE_AT, _why(paused)
    assert executor.state_bytes(paused) > 0
    second = executor.run(replace(paused, resume_from=PAUSE_AT), _never)
    assert second.failure_cause is None and second.paused_at is None, _record(paused).get("log_path")

    reference, resumed = _record(straight), _record(paused)
    assert resumed["status"] == reference["status"] == "succeeded"
    steps = list(range(1, EPOCHS * STEPS_PER_EPOCH + 1))
    assert [loss["step"] for loss in reference["losses"]] == steps
    assert [loss["step"] for loss in resumed["losses"]] == steps, "the run record's step count"
    assert resumed["summary"]["total_steps"] == reference["summary"]["total_steps"] == steps[-1]
    assert [e["epoch"] for e in resumed["epochs"]] == [e["epoch"] for e in reference["epochs"]] == [1, 2, 3, 4]
    assert _outputs(paused) == _outputs(straight), "the same checkpoints and samples"
    assert executor.state_bytes(paused) == 0, "a finished run keeps no state"

    measured = {}
    for label, suffix in (("epoch 2", f"-{PAUSE_AT:06d}.safetensors"), ("final", ".safetensors")):
        difference = lora_difference(straight.run_dir / f"trial_0000{suffix}", paused.run_dir / f"trial_0002{suffix}")
        measured[label] = difference.__dict__
    measured["sample pixels, max |a - b|"] = _sample_difference(straight, paused)
    (root / "pause_resume_measure.json").write_text(json.dumps(measured, indent=2))
    print(json.dumps(measured, indent=2))
    assert measured["epoch 2"]["worst_relative_norm"] == 0.0, measured
    assert measured["final"]["worst_relative_norm"] <= RELATIVE_TOLERANCE, (
        f"resumed LoRA weights differ from the straight run's beyond {RELATIVE_TOLERANCE:g} "
        f"(see the module docstring): {measured['final']}")


def _sample_difference(a: TrialRequest, b: TrialRequest) -> dict[str, int]:
    import numpy
    from PIL import Image

    found = {}
    for request in (a, b):
        samples, _ = find_samples(request.run_dir, f"trial_{request.number:04d}")
        found[request.number] = {(s.epoch, s.prompt_index): s.path for s in samples}
    out = {}
    for key, path in sorted(found[a.number].items()):
        left = numpy.asarray(Image.open(path), dtype=numpy.int16)
        right = numpy.asarray(Image.open(found[b.number][key]), dtype=numpy.int16)
        out[f"epoch {key[0]} prompt {key[1]}"] = int(numpy.abs(left - right).max())
    return out
