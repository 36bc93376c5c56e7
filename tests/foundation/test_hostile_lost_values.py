"""Class 4 of issue 29: a value the trainer would reject minutes into a run is refused before launch.

sd-scripts' parser has no choices for ``lr_scheduler``, ``optimizer_type`` or ``lr_scheduler_type``; the
names the trainer accepts (``kohya/trainer_values.py``, recorded in ``contract_data/trainer_values.json``,
the optimizer names read from the checkout's ``library/train_util.py`` when it is there) are checked by
``config render``, ``train --dry-run``, ``train`` and ``queue add`` alike: a refusal names the key, no
traceback, nothing written. Names the trainer does accept still pass.
"""

from __future__ import annotations

import pytest

from orchestrator.kohya.trainer_values import (
    optimizer_names_from_source,
    recorded_trainer_values,
    trainer_values_for,
    value_problems,
)
from tests.foundation import test_hostile_inputs as table
from tests.foundation.test_hostile_inputs import PRESET, _run_main, _snapshot
from tests.foundation.test_hostile_inputs_commands import _render_set

project = table.project


def _dry_run(*assignments: str) -> list[str]:
    return ["train", PRESET, *(a for x in assignments for a in ("--set", x)), "--out", "{tmp}/run", "--dry-run",
            "--allow-cpu"]


def _queue_add(*assignments: str) -> list[str]:
    return ["queue", "add", PRESET, *(a for x in assignments for a in ("--set", x)), "--queue", "{tmp}/q.json"]


CASES: dict[str, tuple[list[str], str]] = {
    "render_scheduler_typo": (_render_set('lr_scheduler="constnt"'), "lr_scheduler"),
    "render_scheduler_wrong_case": (_render_set('lr_scheduler="Cosine"'), "lr_scheduler"),
    "render_scheduler_adafactor_without_lr": (_render_set('lr_scheduler="adafactor"', 'optimizer_type="Adafactor"'),
                                              "lr_scheduler"),
    "render_scheduler_adafactor_lr_word": (_render_set('lr_scheduler="adafactor:fast"',
                                                       'optimizer_type="Adafactor"'), "lr_scheduler"),
    "render_scheduler_empty": (_render_set('lr_scheduler=""'), "lr_scheduler"),
    "render_optimizer_typo": (_render_set('optimizer_type="AdamW9bit"'), "optimizer_type"),
    "render_optimizer_torch_name_wrong_case": (_render_set('optimizer_type="sgd"'), "optimizer_type"),
    "render_optimizer_unknown_dadapt": (_render_set('optimizer_type="DAdaptFoo"'), "optimizer_type"),
    "render_scheduler_type_not_in_torch": (_render_set('lr_scheduler_type="CosineAnnealing"'), "lr_scheduler_type"),
    "dry_run_scheduler_typo": (_dry_run('lr_scheduler="constnt"'), "lr_scheduler"),
    "dry_run_optimizer_typo": (_dry_run('optimizer_type="Adamw_8bit"'), "optimizer_type"),
    "queue_add_scheduler_typo": (_queue_add('lr_scheduler="consant"'), "lr_scheduler"),
    "render_network_module_typo": (_render_set('network_module="networks.lorra"'), "network_module"),
    "render_prompt_file_markdown": (_render_set('sample_prompts="{tmp}/prompts.md"'), "sample_prompts"),
    "render_prompt_file_toml_malformed": (_render_set('sample_prompts="{tmp}/prompts_bad.toml"'), "sample_prompts"),
    "render_prompt_file_toml_without_subsets": (_render_set('sample_prompts="{tmp}/prompts_flat.toml"'),
                                                "sample_prompts"),
    "render_prompt_file_json_not_a_list": (_render_set('sample_prompts="{tmp}/prompts.json"'), "sample_prompts"),
    "render_prompt_file_not_utf8": (_render_set('sample_prompts="{tmp}/prompts_latin1.txt"'), "sample_prompts"),
    "render_base_weights_missing": (_render_set('base_weights=["{tmp}/nowhere.safetensors"]'), "base_weights"),
}
ACCEPTED = {  # what the trainer takes must still pass
    "optimizer_any_case": ('optimizer_type="adamw8bit"',),
    "optimizer_torch_class": ('optimizer_type="Adam"',),
    "optimizer_module_path": ('optimizer_type="bitsandbytes.optim.AdEMAMix8bit"',),
    "scheduler_adafactor_lr": ('lr_scheduler="adafactor:1e-3"', 'optimizer_type="Adafactor"'),
    "scheduler_piecewise": ('lr_scheduler="piecewise_constant"',),
    "scheduler_from_newer_transformers": ('lr_scheduler="warmup_stable_decay"',),
    "scheduler_type_overrides_scheduler": ('lr_scheduler_type="CosineAnnealingLR"', 'lr_scheduler="ignored"'),
    "schedule_free_ignores_scheduler": ('optimizer_type="AdamWScheduleFree"', 'lr_scheduler="ignored"'),
    "network_module_of_another_package": ('network_module="lycoris.kohya"',),
    "network_module_of_sd_scripts": ('network_module="networks.oft"',),
}


PROMPT_FILES = {  # prompt files sd-scripts would fail on at its first sample, an epoch into the run
    "prompts.md": b"luca, a boy --w 64 --h 64\n",
    "prompts_bad.toml": b"[prompt\nwidth = 64\n",
    "prompts_flat.toml": b'prompt = "luca"\n',
    "prompts.json": b'{"prompt": "luca"}',
    "prompts_latin1.txt": "luca, garçon\n".encode("latin-1"),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_value_the_trainer_rejects_is_refused_before_launch(name, project, capsys):
    argv, named = CASES[name]
    for file_name, data in PROMPT_FILES.items():
        (project / file_name).write_bytes(data)
    before = _snapshot(project)
    code = _run_main([a.replace("{tmp}", str(project)) for a in argv])
    output = "".join(capsys.readouterr())
    assert code != 0, output
    assert named in output, output
    assert "Traceback" not in output
    assert {k: v for k, v in _snapshot(project).items() if not k.endswith(".lock")} == before


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_a_value_the_trainer_accepts_passes(name):
    values = dict(item.replace('"', "").split("=", 1) for item in ACCEPTED[name])
    assert value_problems(values, recorded_trainer_values()) == {}


def test_the_optimizer_names_come_from_the_checkout_when_it_is_there(tmp_path):
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "train_util.py").write_text(
        'if optimizer_type == "Lion".lower():\n    pass\nelif optimizer_type == "NewOpt9000".lower():\n    pass\n')
    live = trainer_values_for(tmp_path)
    assert live.optimizers == ("Lion", "NewOpt9000") and live.source.endswith("train_util.py")
    assert value_problems({"optimizer_type": "newopt9000"}, live) == {}
    assert "optimizer_type" in value_problems({"optimizer_type": "AdamW8bit"}, live)
    assert trainer_values_for(tmp_path / "nowhere") == recorded_trainer_values()


def test_the_record_matches_the_pinned_sd_scripts_source():
    from tests.foundation.conftest import PROJECT_ROOT

    source = PROJECT_ROOT / ".cache" / "sd-scripts" / "library" / "train_util.py"
    if not source.is_file():
        pytest.skip("no sd-scripts checkout in .cache/sd-scripts")
    assert optimizer_names_from_source(source.read_text()) == recorded_trainer_values().optimizers
    assert trainer_values_for(source.parents[1]).network_modules == recorded_trainer_values().network_modules


def test_the_table_has_at_least_eight_cases():
    assert len(CASES) >= 8
