"""What sd-scripts leaves in a run folder, read back as our own objects.

This is the one module that knows sd-scripts' output file names (pinned commit, ``library/train_util.py``):

- samples   ``sample/{output_name}_e{epoch:06d}_{idx:02d}_{YYYYmmddHHMMSS}_{seed}.png``; step-based
  samples use ``{step:06d}`` instead of ``e{epoch:06d}``; ``_{seed}`` is absent when the prompt has no
  ``--d``; the ``{output_name}_`` prefix is absent when ``output_name`` is unset; ``--sample_at_first``
  samples (drawn before the first step, also after a resume) are named as epoch 0 (``e000000``);
- checkpoints ``{output_name}-{epoch:06d}.{ext}`` (not written for the last epoch),
  ``{output_name}-step{step:08d}.{ext}``, and the final ``{output_name}.{ext}`` (= the last epoch);
- states ``{output_name}-{epoch:06d}-state/``, ``{output_name}-step{step:08d}-state/``,
  ``{output_name}-state/`` (with ``train_state.json``: ``{"current_epoch": E, "current_step": S}``);
- the sample-prompt file (``--sample_prompts``, ``.txt``): one prompt a line, lines starting with ``#``
  and blank lines skipped, options after `` --``: ``--n`` negative prompt, ``--w``/``--h`` size, ``--d``
  seed, ``--s`` steps, ``--l`` CFG scale, ``--ss`` sampler (others are ignored, as sd-scripts does).
  The prompt's index (``idx`` in sample names) is its position among the kept lines.
- images from ``gen_img.py``/``sdxl_gen_img.py``: ``im_{YYYYmmddHHMMSS}_{i:03d}_{seed}.png`` with the
  prompt and seed stored as PNG text chunks ``prompt``/``seed``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.common.errors import UserInputError
from orchestrator.common.tomlfile import read_toml
from orchestrator.kohya.validation import DatasetValidation, dataset_validation

CHECKPOINT_EXTENSIONS = (".safetensors", ".ckpt", ".pt")
SAMPLE_FOLDER = "sample"
_SAMPLE_TAIL = re.compile(
    r"(?:^|_)(?:e(?P<epoch>\d{6,})|(?P<step>\d{6,}))_(?P<index>\d{2,})_(?P<timestamp>\d{14})"
    r"(?:_(?P<seed>\d+))?\.png$"
)
#: ``--sample_at_first`` samples carry this epoch: drawn before the first step, when the LoRA (its up
#: weights start at zero) changes nothing, they are the base model's images for the same prompts and seeds.
BEFORE_TRAINING_EPOCH = 0
#: The training argument that asks for them (``train_network.py --sample_at_first``).
SAMPLE_AT_FIRST_ARGUMENT = "sample_at_first"
_GENERATED = re.compile(r"^im_(?P<timestamp>\d{14})_(?P<index>\d{3,})_(?P<seed>\d+)\.png$")


@dataclass(frozen=True)
class SampleImage:
    """One sample image written during training (or by gen_img.py for one checkpoint)."""

    path: Path
    prompt_index: int
    epoch: int | None  # None for step-based samples
    step: int | None  # None for epoch-based samples
    timestamp: str  # YYYYmmddHHMMSS as written (local time of the training machine)
    seed: int | None

    @property
    def before_training(self) -> bool:
        """A ``--sample_at_first`` image: the base model without the LoRA, same prompt and seed."""
        return self.epoch == BEFORE_TRAINING_EPOCH


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    epoch: int | None  # None when only a step is known, or the final file's epoch is unknown
    step: int | None = None
    is_final: bool = False


@dataclass(frozen=True)
class SamplePrompt:
    """One line of a sample-prompt file: the text to condition on and its generation options."""

    index: int
    text: str  # the prompt with every ` --x value` option removed
    negative: str | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    line: str = ""


# --- sample images ---------------------------------------------------------------------------------


def parse_sample_name(path: str | Path, output_name: str | None = None) -> SampleImage | None:
    """The sample described by an sd-scripts sample file name, or None when the name does not match.

    With ``output_name`` the file must start with ``{output_name}_`` (a run folder may hold samples of an
    earlier run under another name).
    """
    path = Path(path)
    name = path.name
    if output_name is not None:
        if not name.startswith(output_name + "_"):
            return None
        name = name[len(output_name):]
    match = _SAMPLE_TAIL.search(name)
    if match is None or (output_name is not None and match.start() != 0):
        return None
    epoch = match["epoch"]
    step = match["step"]
    return SampleImage(
        path=path,
        prompt_index=int(match["index"]),
        epoch=int(epoch) if epoch is not None else None,
        step=int(step) if step is not None else None,
        timestamp=match["timestamp"],
        seed=int(match["seed"]) if match["seed"] is not None else None,
    )


def find_samples(run_dir: str | Path, output_name: str | None = None) -> tuple[list[SampleImage], list[Path]]:
    """Parsed samples under ``RUN_DIR/sample/`` and the PNG files whose names could not be parsed.

    When one prompt of one epoch was sampled more than once (a resumed run re-samples), the newest
    timestamp wins.
    """
    folder = Path(run_dir) / SAMPLE_FOLDER
    if not folder.is_dir():
        return [], []
    newest: dict[tuple[int | None, int | None, int], SampleImage] = {}
    unparsed: list[Path] = []
    for path in sorted(folder.glob("*.png")):
        sample = parse_sample_name(path, output_name)
        if sample is None:
            unparsed.append(path)
            continue
        key = (sample.epoch, sample.step, sample.prompt_index)
        if key not in newest or sample.timestamp >= newest[key].timestamp:
            newest[key] = sample
    samples = sorted(newest.values(), key=lambda s: (s.epoch or -1, s.step or -1, s.prompt_index))
    return samples, unparsed


def read_generated_image(path: str | Path, prompts: list[SamplePrompt], epoch: int) -> SampleImage | None:
    """A gen_img.py image as a sample of ``epoch``: the prompt is found through the PNG ``prompt`` chunk."""
    from PIL import Image

    path = Path(path)
    match = _GENERATED.match(path.name)
    if match is None:
        return None
    with Image.open(path) as image:
        text = (getattr(image, "text", {}) or {}).get("prompt")
    by_text = {prompt.text: prompt.index for prompt in prompts}
    index = by_text.get((text or "").strip())
    if index is None:
        return None
    return SampleImage(path=path, prompt_index=index, epoch=epoch, step=None,
                       timestamp=match["timestamp"], seed=int(match["seed"]))


# --- checkpoints and states ------------------------------------------------------------------------


def find_checkpoints(run_dir: str | Path, output_name: str, *, last_epoch: int | None = None) -> list[Checkpoint]:
    """Checkpoints in ``run_dir`` sorted by epoch (the final file last).

    The final ``{output_name}.safetensors`` is the last epoch; its number is ``last_epoch`` when given,
    else read from ``{output_name}-state/train_state.json``, else unknown (``epoch=None``).
    """
    run_dir = Path(run_dir)
    per_epoch = re.compile(re.escape(output_name) + r"-(?P<epoch>\d{6,})$")
    per_step = re.compile(re.escape(output_name) + r"-step(?P<step>\d{8,})$")
    found: list[Checkpoint] = []
    final: Checkpoint | None = None
    for path in sorted(run_dir.iterdir()) if run_dir.is_dir() else []:
        if not path.is_file() or path.suffix not in CHECKPOINT_EXTENSIONS:
            continue
        if path.stem == output_name:
            epoch = last_epoch if last_epoch is not None else read_last_state_epoch(run_dir, output_name)
            final = Checkpoint(path=path, epoch=epoch, is_final=True)
        elif match := per_epoch.match(path.stem):
            found.append(Checkpoint(path=path, epoch=int(match["epoch"])))
        elif match := per_step.match(path.stem):
            found.append(Checkpoint(path=path, epoch=None, step=int(match["step"])))
    found.sort(key=lambda c: (c.epoch if c.epoch is not None else -1, c.step or -1))
    if final is not None:
        found.append(final)
    return found


def read_last_state_epoch(run_dir: str | Path, output_name: str) -> int | None:
    """``current_epoch`` of ``{output_name}-state/train_state.json``, or None when absent or unreadable."""
    state_file = Path(run_dir) / f"{output_name}-state" / "train_state.json"
    try:
        value = json.loads(state_file.read_text(encoding="utf-8")).get("current_epoch")
    except (OSError, ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int) else None


def find_state_dirs(run_dir: str | Path, output_name: str) -> dict[str, Path]:
    """State folders by label: ``"e000002"``, ``"step00000010"`` or ``"last"``."""
    run_dir = Path(run_dir)
    states: dict[str, Path] = {}
    pattern = re.compile(re.escape(output_name) + r"-(?:(?P<epoch>\d{6,})|step(?P<step>\d{8,}))-state$")
    for path in sorted(run_dir.glob(f"{glob_escape(output_name)}-*state")):
        if not path.is_dir():
            continue
        if path.name == f"{output_name}-state":
            states["last"] = path
        elif match := pattern.match(path.name):
            states[f"e{match['epoch']}" if match["epoch"] else f"step{match['step']}"] = path
    return states


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


# --- sample-prompt files ---------------------------------------------------------------------------

_OPTION_RULES: tuple[tuple[str, re.Pattern[str], type], ...] = (
    # Order and patterns as in sd-scripts' line_to_prompt_dict (case-insensitive, first match wins).
    ("width", re.compile(r"w (\d+)", re.IGNORECASE), int),
    ("height", re.compile(r"h (\d+)", re.IGNORECASE), int),
    ("seed", re.compile(r"d (\d+)", re.IGNORECASE), int),
    ("steps", re.compile(r"s (\d+)", re.IGNORECASE), int),
    ("cfg_scale", re.compile(r"l ([\d\.]+)", re.IGNORECASE), float),
    ("negative", re.compile(r"n (.+)", re.IGNORECASE), str),
    ("sampler", re.compile(r"ss (.+)", re.IGNORECASE), str),
)


def parse_prompt_line(line: str, index: int) -> SamplePrompt:
    """One prompt line in sd-scripts syntax: ``text --n negative --w 512 --h 512 --d 42``."""
    parts = line.strip().split(" --")
    values: dict[str, object] = {}
    for part in parts[1:]:
        for field, pattern, convert in _OPTION_RULES:
            if match := pattern.match(part):
                try:
                    values[field] = convert(match.group(1).strip())
                except ValueError:
                    pass  # sd-scripts logs and ignores a malformed value; so do we
                break
    if "steps" in values:
        values["steps"] = max(1, min(1000, int(values["steps"])))  # sd-scripts clamps the same way
    return SamplePrompt(index=index, text=parts[0].strip(), line=line.strip(), **values)  # type: ignore[arg-type]  # values typed per field above


def parse_prompt_text(text: str) -> list[SamplePrompt]:
    """Prompts of a ``.txt`` prompt file, indexed as sd-scripts indexes them (comments/blank lines skipped)."""
    kept = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [parse_prompt_line(line, index) for index, line in enumerate(kept)]


def read_prompt_file(path: str | Path) -> list[SamplePrompt]:
    path = Path(path)
    if path.suffix.lower() != ".txt":
        raise UserInputError("only .txt sample-prompt files are read (one prompt a line)", path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise UserInputError("prompt file not found", path=path) from error
    except UnicodeDecodeError as error:
        raise UserInputError(f"prompt file is not UTF-8 text: {error}", path=path) from error
    prompts = parse_prompt_text(text)
    if not prompts:
        raise UserInputError("prompt file has no prompts (only blank or # lines)", path=path)
    return prompts


# --- the run's own config files --------------------------------------------------------------------


@dataclass(frozen=True)
class RunConfigFacts:
    """What evaluation needs from ``RUN_DIR/config/{training,dataset}.toml``."""

    output_name: str | None
    sample_prompts: Path | None
    training_image_dirs: tuple[Path, ...]  # non-regularisation subsets' image_dir
    resolution: str | None
    # Images of those folders that sd-scripts' validation split holds out (validated on, never trained on).
    held_out_images: tuple[Path, ...] = ()
    # Validation is on but without validation_seed: which images were held out cannot be known.
    held_out_unknown: bool = False


def read_run_config(run_dir: str | Path) -> RunConfigFacts:
    """Read the run's rendered kohya configs; missing files give empty facts, malformed ones an error."""
    run_dir = Path(run_dir)
    training: dict[str, object] = {}
    training_file = run_dir / "config" / "training.toml"
    dataset_file = run_dir / "config" / "dataset.toml"
    if training_file.is_file():
        training = _flatten_one_level(read_toml(training_file))
    image_dirs: list[Path] = []
    resolution = training.get("resolution")
    validation = DatasetValidation()
    if dataset_file.is_file():
        dataset = read_toml(dataset_file)
        validation = dataset_validation(dataset, training, resolve=lambda value: _resolve(run_dir, value))
        general = dataset.get("general", {}) or {}
        resolution = general.get("resolution", resolution)
        for block in dataset.get("datasets", []) or []:
            resolution = block.get("resolution", resolution)
            for subset in block.get("subsets", []) or []:
                if subset.get("image_dir") and not subset.get("is_reg", False):
                    image_dirs.append(_resolve(run_dir, str(subset["image_dir"])))
    elif training.get("train_data_dir"):
        image_dirs.append(_resolve(run_dir, str(training["train_data_dir"])))
    prompts = training.get("sample_prompts")
    return RunConfigFacts(
        output_name=str(training["output_name"]) if training.get("output_name") else None,
        sample_prompts=_resolve(run_dir, str(prompts)) if prompts else None,
        training_image_dirs=tuple(image_dirs),
        resolution=str(resolution) if resolution is not None else None,
        held_out_images=validation.held_out,
        held_out_unknown=validation.unknown_split,
    )


def _flatten_one_level(data: dict[str, Any]) -> dict[str, object]:
    # sd-scripts flattens every table of --config_file one level into one namespace.
    flat: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def _resolve(run_dir: Path, value: str) -> Path:
    # Rendered configs hold absolute paths; a relative one is taken as the project's (cwd), as sd-scripts does.
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path.cwd() / path
