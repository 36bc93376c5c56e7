"""The fake sd-scripts against the real transcripts, line by line, so the two cannot drift apart.

The fake is run (no tmux) on the configuration of the transcript's RUN B: 4 images with a validation
split of 0.25, batch 1, 2 epochs, a checkpoint and a state each epoch, one sample prompt. Every line
the fake prints, with paths, timings and loss values normalised, must appear in the real log in the
same order, and both logs must give the same events.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from orchestrator.common.tomlfile import dumps_toml
from orchestrator.kohya.log_grammar import (
    CheckpointSaved,
    StepProgress,
    ValidationLoss,
    parse_text,
)
from tests.runner import transcripts
from tests.runner.conftest import FAKE_SD_SCRIPTS, make_dataset

_BAR = re.compile(r"^(?P<desc>.*?)\s*\d+%\|[^|]*\|\s*(?P<n>\d+)/(?P<t>\d+) \[(?P<inside>[^\]]*)\]$")
_SEGMENTS = re.compile(r"\r\n|[\r\n]|\x1b\[[0-9;]*[A-Za-z]")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def normalise(text: str, replacements: dict[str, str]) -> list[str]:
    lines = []
    for segment in _SEGMENTS.split(text):
        line = segment.strip()
        if not line:
            continue
        for old, new in replacements.items():
            line = line.replace(old, new)
        line = _TIMESTAMP.sub("TIME ", line)
        if match := _BAR.match(line):
            keys = ",".join(part.split("=")[0].strip() for part in match["inside"].split(", ") if "=" in part)
            line = f"{match['desc']} {match['n']}/{match['t']} {keys}".rstrip()
        lines.append(line)
    return lines


def first_missing_in_order(fake: list[str], real: list[str]) -> str | None:
    position = 0
    for line in fake:
        try:
            position = real.index(line, position) + 1
        except ValueError:
            return line
    return None


def run_fake(tmp_path: Path, *extra: str, dataset_extra: dict | None = None,
             image_dir: Path | None = None) -> tuple[int, str, dict[str, str]]:
    image_dir = image_dir if image_dir is not None else make_dataset(tmp_path / "img", count=4)
    out = tmp_path / "out"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("sks a red square --n blurry --w 64 --h 64 --d 1234 --s 2 --l 7.5\n", encoding="utf-8")
    dataset = {"general": {"resolution": 64, "enable_bucket": False, "caption_extension": ".txt"},
               "datasets": [{"batch_size": 1, "validation_split": 0.25, "validation_seed": 1,
                             "subsets": [{"image_dir": str(image_dir), "num_repeats": 1,
                                          "class_tokens": "sks thing", **(dataset_extra or {})}]}]}
    (tmp_path / "dataset.toml").write_text(dumps_toml(dataset), encoding="utf-8")
    training = {"dataset": {"dataset_config": str(tmp_path / "dataset.toml")},
                "training": {"max_train_epochs": 2, "seed": 42},
                "saving": {"output_dir": str(out), "output_name": "tiny", "save_model_as": "safetensors",
                           "save_every_n_epochs": 1, "save_state": True},
                "sample": {"sample_prompts": str(prompts), "sample_every_n_epochs": 1},
                "validation": {"validate_every_n_epochs": 1}}
    (tmp_path / "train.toml").write_text(dumps_toml(training), encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "train_network.py", "--config_file", str(tmp_path / "train.toml"), "--console_log_simple",
         *extra], cwd=FAKE_SD_SCRIPTS, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"})
    replacements = {str(out): "OUT", str(tmp_path / "train.toml"): "CONFIG", str(image_dir): "IMAGES",
                    str(tmp_path / "dataset.toml"): "DATASET"}
    return completed.returncode, completed.stdout.decode("utf-8"), replacements


REAL_REPLACEMENTS = {"/workspace/run2/out": "OUT", "/workspace/run2/train.toml": "CONFIG",
                     "/workspace/run1/data/img": "IMAGES", "/workspace/run1/dataset.toml": "DATASET"}


def test_every_line_of_a_fake_run_is_a_line_of_the_real_run_in_the_same_order(tmp_path):
    code, output, replacements = run_fake(tmp_path)
    assert code == 0, output
    fake = normalise(output, replacements)
    real = normalise(transcripts.run_b_simple(), REAL_REPLACEMENTS)
    assert len(fake) > 40
    assert first_missing_in_order(fake, real) is None


def test_the_fake_and_the_real_run_give_the_same_events(tmp_path):
    _, output, _ = run_fake(tmp_path)

    def shape(events):
        return [(type(e).__name__, getattr(e, "epoch", None), Path(e.path).name if isinstance(e, CheckpointSaved)
                 else None) for e in events if not isinstance(e, (StepProgress, ValidationLoss))]

    fake_events, real_events = parse_text(output), parse_text(transcripts.run_b_simple())
    assert shape(fake_events) == shape(real_events)
    steps = {e.step for e in fake_events if isinstance(e, StepProgress)}
    assert steps == {e.step for e in real_events if isinstance(e, StepProgress)}
    fake_validations = [e for e in fake_events if isinstance(e, ValidationLoss)]
    assert [e.epoch for e in fake_validations] == [e.epoch for e in real_events if isinstance(e, ValidationLoss)]
    assert len({e.loss for e in fake_validations}) == 2, "each validated epoch has a loss of its own"


def test_the_fake_validates_on_sd_scripts_schedule_and_split(tmp_path):
    # validate_every_n_epochs = 2 of 3 epochs: epoch 2 only; 4 images at 0.25: 3 trained, 1 held out.
    code, output, _ = run_fake(tmp_path, "--validate_every_n_epochs", "2", "--max_train_epochs", "3")
    assert code == 0, output
    assert [e.epoch for e in parse_text(output) if isinstance(e, ValidationLoss)] == [2]
    assert "num train images * repeats / 学習画像の数×繰り返し回数: 3" in output
    assert "num validation images * repeats / 学習画像の数×繰り返し回数: 1" in output


def test_the_fake_writes_the_file_names_sd_scripts_writes(tmp_path):
    run_fake(tmp_path)
    out = tmp_path / "out"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["sample", "tiny-000001-state", "tiny-000001.safetensors", "tiny-state", "tiny.safetensors"]
    assert re.fullmatch(r"tiny_e000002_00_\d{14}_1234\.png", sorted(p.name for p in (out / "sample").iterdir())[-1])
    assert (out / "tiny-state" / "train_state.json").read_text() == '{"current_epoch": 2, "current_step": 6}'


def test_an_unknown_dataset_key_fails_with_the_real_lines(tmp_path):
    code, output, replacements = run_fake(tmp_path, dataset_extra={"bogus_key": 1})
    real = normalise(transcripts.error_case("t_unknown_ds"), {})
    fake = normalise(output, replacements)
    assert code == 1
    assert "Invalid user config / ユーザ設定の形式が正しくないようです" in fake
    assert fake[-1] == real[-2]  # the voluptuous line (the real case ends with its rc=1 marker)


def test_an_unknown_flag_is_an_argparse_error_with_exit_2(tmp_path):
    code, output, _ = run_fake(tmp_path, "--no_such_flag")
    assert code == 2
    assert output.strip().splitlines()[-1] == "train_network.py: error: unrecognized arguments: --no_such_flag"


def test_a_missing_image_folder_prints_the_real_lines_and_exits_zero(tmp_path):
    code, output, _ = run_fake(tmp_path, image_dir=Path("/workspace/does_not_exist"))
    fake = normalise(output, {})
    real = normalise(transcripts.error_case("t_missing_plus_unknown"), {})
    assert code == 0
    wanted = [line for line in fake if "does_not_exist" in line or line.startswith(("No data found", "0 train"))]
    assert len(wanted) == 4
    assert first_missing_in_order(wanted, real) is None


RUN_C_REPLACEMENTS = {"/workspace/run4/out": "OUT", "/workspace/run1/out": "OUT", "/workspace/run4/train.toml": "CONFIG",
                      "/workspace/run1/data/img": "IMAGES", "/workspace/run1/dataset.toml": "DATASET"}


def test_a_resumed_fake_run_prints_the_real_resumed_runs_lines_and_miscounts_its_steps_the_same(tmp_path):
    # RUN C: the 2-epoch run's epoch-1 state resumed with max_train_epochs = 3. sd-scripts restarts its step
    # counter (#2171): the bar counts 1..6 of 9, the samples and states say the segment's own steps.
    code, _, _ = run_fake(tmp_path)
    assert code == 0
    state = tmp_path / "out" / "tiny-000001-state"
    code, output, replacements = run_fake(tmp_path, "--resume", str(state), "--max_train_epochs", "3")
    assert code == 0, output
    fake = normalise(output, replacements)
    real = normalise(transcripts.run_c_resume(), RUN_C_REPLACEMENTS)
    assert first_missing_in_order(fake, real) is None
    assert "save train state to OUT/tiny-000002-state/train_state.json at epoch 2 step 3" in fake
    assert "save train state to OUT/tiny-state/train_state.json at epoch 3 step 6" in fake

    def shape(events):
        return [(type(e).__name__, getattr(e, "epoch", None)) for e in events if not isinstance(e, ValidationLoss)]

    assert shape(parse_text(output)) == shape(parse_text(transcripts.run_c_resume()))
