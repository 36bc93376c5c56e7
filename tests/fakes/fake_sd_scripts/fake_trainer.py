"""A test double of kohya sd-scripts' train_network.py / sdxl_train_network.py (pinned commit).

It accepts the same command line (the parser is built from the recorded contract, so an unknown flag
is an argparse error with exit 2), reads ``--config_file`` the way sd-scripts does (every table
flattened one level; unknown keys ignored; command-line flags win), validates ``--dataset_config``
against the recorded strict schema (``Invalid user config`` then ``voluptuous.error.MultipleInvalid:
extra keys not allowed @ data[...]``, exit 1), prints the same ``--console_log_simple`` lines with
``\\r`` progress bars, and writes the same files: ``{name}-{epoch:06d}.safetensors`` (not for the last
epoch), ``{name}.safetensors``, ``{name}-{epoch:06d}-state/`` and ``{name}-state/`` with
``train_state.json`` (``save_last_n_epochs_state`` removes the older epoch states), ``sample/{name}_e{epoch:06d}_{idx:02d}_{YYYYmmddHHMMSS}_{seed}.png`` (with
``--sample_at_first`` also epoch 0, ``e000000``, before the first step: also after a resume, since
sd-scripts checks its step counter before it skips the finished epochs).

``FAKE_SD_SCRIPTS_MODE`` simulates a failure: ``oom``, ``nan``, ``crash``, ``import_error``, ``hang``
(prints, then waits forever), ``silent`` (never prints, waits forever), ``die`` (exits 1 at once, no
output), ``no_data`` (as if every image folder were missing: exit 0). ``FAKE_SD_SCRIPTS_STEP_SECONDS``
paces the steps (default 0). ``FAKE_SD_SCRIPTS_FAIL_AT_STEP`` (default 2) is when oom/nan/crash happen.
``FAKE_SD_SCRIPTS_HELPER_PID_FILE``: start a helper process (as ``accelerate launch`` starts one per GPU)
that sleeps until it is signalled, and write its pid there. ``FAKE_SD_SCRIPTS_ENV_DUMP``: write the
environment the trainer was started with there, as JSON (what a real trainer would see).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import toml

CONTRACT = Path(__file__).resolve().parents[3] / "orchestrator" / "kohya" / "contract_data"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
BAR = "██████████"
NO_DATA = ("No data found. Please verify arguments (train_data_dir must be the parent of folders with images) / "
           "画像がありません。引数指定を確認してください（train_data_dirには画像があるフォルダではなく、"
           "画像があるフォルダの親フォルダを指定する必要があります）")


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def bar(desc: str, n: int, total: int, postfix: str = "", rate: str = " 1.00s/it") -> None:
    percent = int(100 * n / total) if total else 100
    filled = BAR[: percent // 10].ljust(10)
    rate_text = "?it/s" if n == 0 else rate.strip()
    tail = f", {postfix}" if postfix else ""
    timing = "00:00<?" if n == 0 else "00:01<00:01"
    sys.stderr.write(f"\r{desc}{percent:3d}%|{filled}| {n}/{total} [{timing}, {rate_text}{tail}]")
    sys.stderr.flush()


def build_parser(script: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=script)
    types = {"str": str, "int": int, "float": float}
    for spec in json.loads((CONTRACT / "args.json").read_text(encoding="utf-8"))[script]:
        kwargs: dict = {"dest": spec["dest"], "default": spec["default"]}
        action = spec["action"]
        if action == "_StoreTrueAction":
            kwargs["action"] = "store_true"
        elif action == "_StoreFalseAction":
            kwargs["action"] = "store_false"
        elif action == "_StoreConstAction":
            kwargs.update(action="store_const", const=spec["const"])
        else:
            kwargs["type"] = types.get(spec["type"] or "str", str)
            if spec["nargs"] is not None:
                kwargs["nargs"] = spec["nargs"]
        parser.add_argument(*spec["option_strings"], **kwargs)
    return parser


def parse_args(script: str, argv: list[str]) -> argparse.Namespace:
    parser = build_parser(script)
    args = parser.parse_args(argv)
    if args.config_file:
        path = Path(args.config_file)
        if not path.is_file():
            print(f"{path} not found.")
            sys.exit(1)
        # Logged before sd-scripts sets up --console_log_simple, so always in rich's layout.
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        out(f"{stamp} INFO     {'Loading settings from':<33}train_util.py:4744")
        out(f"{' ' * 29}{path}...")
        flat: dict = {}
        for key, value in toml.load(path).items():
            flat.update(value if isinstance(value, dict) else {key: value})
        known = {action.dest for action in parser._actions}
        parser.set_defaults(**{k: v for k, v in flat.items() if k in known})  # unknown keys: ignored
        args = parser.parse_args(argv)
    return args


def _schema() -> tuple[dict, dict, dict]:
    keys = json.loads((CONTRACT / "dataset_config_keys.json").read_text(encoding="utf-8"))
    general = dict(keys["general"])
    dataset = {**keys["dataset_dreambooth"], **keys["dataset_finetuning"], "subsets": {"type": "list"}}
    subset = {**keys["subset_dreambooth"], **keys["subset_finetuning"]}
    return general, dataset, subset


def _invalid(message: str) -> None:
    out("Invalid user config / ユーザ設定の形式が正しくないようです")
    sys.stderr.write("Traceback (most recent call last):\n"
                     '  File "train_network.py", line 555, in train\n'
                     "    blueprint = blueprint_generator.generate(user_config, args)\n"
                     '  File "voluptuous/schema_builder.py", line 382, in validate_mapping\n'
                     "    raise er.MultipleInvalid(errors)\n"
                     f"voluptuous.error.MultipleInvalid: {message}\n")
    sys.exit(1)


def validate_dataset(document: dict) -> None:
    general_keys, dataset_keys, subset_keys = _schema()

    def check(table: dict, allowed: dict, where: str) -> None:
        for key, value in table.items():
            if key not in allowed:
                _invalid(f"extra keys not allowed @ data{where}['{key}']")
            if allowed[key]["type"] == "float" and not isinstance(value, float):
                _invalid(f"expected float for dictionary value @ data{where}['{key}']")

    for key in document:
        if key not in ("general", "datasets"):
            _invalid(f"extra keys not allowed @ data['{key}']")
    check(document.get("general", {}), general_keys, "['general']")
    for d, dataset in enumerate(document.get("datasets", [])):
        check(dataset, dataset_keys, f"['datasets'][{d}]")
        for s, subset in enumerate(dataset.get("subsets", [])):
            check(subset, subset_keys, f"['datasets'][{d}]['subsets'][{s}]")


def lookup(key: str, subset: dict, dataset: dict, general: dict, default: object) -> object:
    for table in (subset, dataset, general):
        if key in table:
            return table[key]
    return default


def simulate_failure(mode: str, step: int) -> None:
    if mode == "oom":
        sys.stderr.write("\nTraceback (most recent call last):\n"
                         '  File "train_network.py", line 1480, in train\n'
                         "    accelerator.backward(loss)\n"
                         "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a "
                         "total capacity of 15.99 GiB of which 1.02 GiB is free.\n")
        sys.exit(1)
    if mode == "crash":
        sys.stderr.write("\nTraceback (most recent call last):\n"
                         '  File "train_network.py", line 1480, in train\n'
                         f"RuntimeError: simulated crash at step {step}\n")
        sys.exit(1)


def main(script: str) -> int:
    mode = os.environ.get("FAKE_SD_SCRIPTS_MODE", "")
    pace = float(os.environ.get("FAKE_SD_SCRIPTS_STEP_SECONDS", "0"))
    fail_at = int(os.environ.get("FAKE_SD_SCRIPTS_FAIL_AT_STEP", "2"))
    env_dump = os.environ.get("FAKE_SD_SCRIPTS_ENV_DUMP")
    if env_dump:
        Path(env_dump).write_text(json.dumps(dict(os.environ)), encoding="utf-8")
    if mode == "die":
        return 1
    helper_pid_file = os.environ.get("FAKE_SD_SCRIPTS_HELPER_PID_FILE")
    if helper_pid_file:
        import subprocess

        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        Path(helper_pid_file).write_text(str(helper.pid))
    if mode == "silent":
        while True:
            time.sleep(3600)
    args = parse_args(script, sys.argv[1:])
    if mode == "import_error":
        sys.stderr.write("Traceback (most recent call last):\n  File \"train_network.py\", line 183\n"
                         "ImportError: No xformers / xformersがインストールされていないようです\n")
        return 1
    if not args.dataset_config:
        out("fake sd-scripts reads images only through --dataset_config")
        return 1
    out(f"Loading dataset config from {args.dataset_config}")
    document = toml.load(args.dataset_config)
    validate_dataset(document)
    general = document.get("general", {})
    images, validation_images, validating = 0, 0, False
    batch_size = args.train_batch_size or 1
    out("prepare images.")
    for dataset in document.get("datasets", []):
        batch_size = int(lookup("batch_size", {}, dataset, general, batch_size))
        for subset in dataset.get("subsets", []):
            folder = Path(str(subset.get("image_dir", "")))
            repeats = int(lookup("num_repeats", subset, dataset, general, 1))
            if mode == "no_data" or not folder.is_dir():
                out(f"not directory: {folder}")
                out(f"ignore subset with image_dir='{folder}': no images found / 画像が見つからないためサブセットを無視します")
                continue
            count = sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            # Dataset keys, then the command line (sd-scripts' lookup order); split_train_val's arithmetic:
            # the two slices are computed apart, so they may share an image.
            split = float(lookup("validation_split", {}, dataset, general, args.validation_split or 0.0))
            held = round(count * split) if split > 0 else 0
            if split > 0:
                count = math.ceil(count * (1 - split))
            out(f"found directory {folder} contains {count} image files")
            images += count * repeats
            validation_images += held * repeats
            validating = validating or split > 0
    out(f"{images} train images with repeats.")
    if images == 0:
        out(NO_DATA)
        return 0
    if mode == "hang":
        while True:
            time.sleep(3600)
    grad_accum = int(args.gradient_accumulation_steps or 1)
    epochs = int(args.max_train_epochs or 1)
    batches = math.ceil(images / batch_size)
    total = math.ceil(batches / grad_accum) * epochs
    output_dir, name = Path(args.output_dir), args.output_name or "last"
    output_dir.mkdir(parents=True, exist_ok=True)
    done_steps = 0
    if args.resume:
        state = json.loads((Path(args.resume) / "train_state.json").read_text(encoding="utf-8"))
        out(f"resume training from local state: {args.resume}")
        out(f"load train state from {args.resume}/train_state.json: {{'current_epoch': {state['current_epoch']}, "
            f"'current_step': {state['current_step']}}}")
        done_steps = state["current_step"]
    out("running training / 学習開始")
    out(f"  num train images * repeats / 学習画像の数×繰り返し回数: {images}")
    out(f"  num validation images * repeats / 学習画像の数×繰り返し回数: {validation_images}")
    out("  num reg images / 正則化画像の数: 0")
    out(f"  num batches per epoch / 1epochのバッチ数: {batches}")
    out(f"  num epochs / epoch数: {epochs}")
    out(f"  batch size per device / バッチサイズ: {batch_size}")
    out(f"  gradient accumulation steps / 勾配を合計するステップ数 = {grad_accum}")
    out(f"  total optimization steps / 学習ステップ数: {total}")
    bar("steps: ", 0, total)
    out()
    if args.sample_prompts and args.sample_at_first:
        write_samples(Path(args.sample_prompts), output_dir, name, 0, 0)
    step, loss = 0, 1.0
    steps_per_epoch = math.ceil(batches / grad_accum)
    # sd-scripts starts a resumed run at the epoch its state's step count says, then counts steps from 0
    # again: the samples' step and every state this segment saves hold the segment's own steps (#2171).
    first_epoch = done_steps // steps_per_epoch + 1
    ext = args.save_model_as or "safetensors"
    validation_bar = ValidationBar()
    for epoch in range(first_epoch, epochs + 1):
        out(f"epoch {epoch}/{epochs}")
        out()
        # The collator's epoch counter is 0 in a new process: a resumed run's first epoch says 0 too.
        out(f"epoch is incremented. current_epoch: {epoch - 1 if epoch > first_epoch else 0}, epoch: {epoch}")
        for _ in range(steps_per_epoch):
            step += 1
            if mode in ("oom", "crash") and step + done_steps >= fail_at:
                simulate_failure(mode, step)
            time.sleep(pace)
            previous = f"avr_loss={loss:.3g}" if step > 1 else ""
            loss = float("nan") if mode == "nan" and step + done_steps >= fail_at else 1.0 + 0.01 * step
            bar("steps: ", step, total, previous)
            bar("steps: ", step, total, f"avr_loss={loss:.3g}")
        out()
        every = args.validate_every_n_epochs
        if validating and validation_images and (every is None or epoch % every == 0):
            validation_passes = 4 * math.ceil(validation_images / batch_size)
            if args.max_validation_steps is not None:
                validation_passes = 4 * min(args.max_validation_steps, validation_passes // 4)
            validation_bar = validate(validation_bar, epoch, validation_passes)
        last = epoch == epochs
        if not last and args.save_every_n_epochs and epoch % args.save_every_n_epochs == 0:
            path = output_dir / f"{name}-{epoch:06d}.{ext}"
            out(f"saving checkpoint: {path}")
            path.write_bytes(b"fake lora weights")
            if args.save_state:
                out()
                out(f"saving state at epoch {epoch}")
                write_state(output_dir / f"{name}-{epoch:06d}-state", epoch, step)
                keep = args.save_last_n_epochs_state or args.save_last_n_epochs
                old_state = output_dir / f"{name}-{epoch - args.save_every_n_epochs * (keep or 0):06d}-state"
                if keep and old_state.is_dir():
                    out(f"removing old state: {old_state}")
                    shutil.rmtree(old_state)
        if args.sample_prompts and args.sample_every_n_epochs and epoch % args.sample_every_n_epochs == 0:
            write_samples(Path(args.sample_prompts), output_dir, name, epoch, step)
        if last:
            if args.save_state:
                out()
                out("saving last state.")
                write_state(output_dir / f"{name}-state", epoch, step)
            out()
            path = output_dir / f"{name}.{ext}"
            out(f"saving checkpoint: {path}")
            path.write_bytes(b"fake lora weights")
            out("model saved.")
            if validation_bar.last_drawing:  # the unclosed bar re-draws itself when the process ends
                sys.stderr.write(f"\n\r{validation_bar.last_drawing}\n")
    return 0


class ValidationBar:
    """What sd-scripts' never-closed validation bars leave behind: how many there were, the last drawing,
    and the per-pass losses of its ``LossRecorder`` (epoch 1 appends, later epochs replace by index)."""

    def __init__(self) -> None:
        self.count = 0
        self.last_drawing = ""
        self.losses: list[float] = []


def format_number(value: float) -> str:
    """tqdm's ``format_num`` for a postfix value: ``.3g`` unless ``str`` is shorter."""
    short = f"{value:.3g}".replace("+0", "+").replace("-0", "-")
    return short if len(short) < len(str(value)) else str(value)


def validate(state: ValidationBar, epoch: int, passes: int) -> ValidationBar:
    """An epoch validation bar as sd-scripts draws it: ``0/N``, then per pass a drawing after ``update``
    (the previous postfix) and one after ``set_postfix``; each new bar sits one row lower, and the
    previous bar re-draws itself (closing) right after the new bar's first drawing. The loss falls over
    the first epochs and rises again, so each validated epoch has a loss of its own."""
    state.count += 1
    rows = state.count
    desc = "epoch validation steps: "

    def draw(n: int, postfix: str = "") -> str:
        percent = int(100 * n / passes)
        filled = BAR[: percent // 10].ljust(10)
        tail = f", {postfix}" if postfix else ""
        timing = "[00:00<?, ?it/s" if n == 0 else "[00:01<00:00,  2.50it/s"
        return f"{desc}{percent:3d}%|{filled}| {n}/{passes} {timing}{tail}]"

    sys.stderr.write("\n" * rows + "\r" + draw(0) + "\x1b[A" * rows)
    if state.last_drawing:
        sys.stderr.write(f"\r{state.last_drawing}\n")
    base = 1.0 + 0.02 * abs(epoch - 3)
    postfix = ""
    first_epoch = not state.losses
    for index in range(passes):
        timestep = 200 * (index % 4 + 1)
        loss = base + 0.01 * (index % 4)
        if first_epoch:
            state.losses.append(loss)
        else:
            state.losses[index] = loss
        sys.stderr.write("\n" * rows + "\r" + draw(index + 1, postfix) + "\x1b[A" * rows)
        average = sum(state.losses) / len(state.losses)
        postfix = f"val_epoch_avg_loss={format_number(average)}, timestep={timestep}"
        state.last_drawing = draw(index + 1, postfix)
        sys.stderr.write("\n" * rows + "\r" + state.last_drawing + "\x1b[A" * rows)
    sys.stderr.write("\n")
    sys.stderr.flush()
    return state


def write_state(folder: Path, epoch: int, step: int) -> None:
    out(f"Saving current state to {folder}")
    out(f"save train state to {folder}/train_state.json at epoch {epoch} step {step}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_state.json").write_text(json.dumps({"current_epoch": epoch, "current_step": step}))
    (folder / "model.safetensors").write_bytes(b"fake state")


def write_samples(prompt_file: Path, output_dir: Path, name: str, epoch: int, step: int) -> None:
    from PIL import Image

    out(f"generating sample images at step / サンプル画像生成 ステップ: {step}")
    lines = [line for line in prompt_file.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    folder = output_dir / "sample"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
    for index, line in enumerate(lines):
        out(f"prompt: {line.split(' --')[0]}")
        seed = next((part[2:].strip() for part in line.split(" --")[1:] if part.startswith("d ")), None)
        suffix = f"_{seed}" if seed else ""
        image = Image.fromarray(sample_pixels(epoch, index), "RGB")
        image.save(folder / f"{name}_e{epoch:06d}_{index:02d}_{stamp}{suffix}.png")


def sample_pixels(epoch: int, index: int) -> numpy.ndarray:  # noqa: F821 (imported inside)
    """A 64 px image that differs by prompt and by epoch and is not blank (a real sampler's never are)."""
    import numpy

    ramp = numpy.linspace(0, 1, 64)
    grid = numpy.add.outer(ramp * (1 + epoch % 5), ramp * (1 + index % 3)) % 1.0
    base = numpy.array([40 * index % 255, 80, 120], dtype=float)
    return numpy.clip(base + 100 * grid[..., None] * numpy.array([1.0, 0.6, 0.3]), 0, 255).astype(numpy.uint8)
