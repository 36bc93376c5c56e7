"""What sd-scripts accepts: its argument list per script and its dataset-config schema.

Two sources, one shape:
- *live*: the argparse parser and ``ConfigSanitizer`` of an sd-scripts checkout, read by running
  ``_introspect.py`` with the trainer's Python (cached per commit under ``.cache/contract/``);
- *recorded*: the copy shipped in ``contract_data/`` (refreshed from a live checkout by
  ``lora-pipeline config refresh-contract``), used when no checkout or trainer Python is usable.
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import PipelineError
from orchestrator.kohya.checkout import checkout_commit
from orchestrator.kohya.families import SCRIPTS

log = logging.getLogger(__name__)

_DATA = resources.files("orchestrator.kohya") / "contract_data"
# The recorded argument lists, one file per group of scripts: args.json is the SD1.5/SDXL record that
# ../shared/sd-scripts-contract holds too; the flow-matching families' scripts were recorded later.
_ARGUMENT_FILES: dict[str, tuple[str, ...]] = {
    "args.json": ("train_network.py", "sdxl_train_network.py"),
    "args_flow_families.json": ("flux_train_network.py", "sd3_train_network.py"),
}


@dataclass(frozen=True)
class ArgumentSpec:
    """One command-line argument of a training script, as a config-file key."""

    dest: str
    option: str
    is_flag: bool
    value_type: str | None  # "str" | "int" | "float" | "int_or_float" | "Path" | None for flags
    default: Any
    choices: tuple[Any, ...] | None
    is_list: bool  # nargs "*" or "+": a TOML list (a single value is accepted too)


@dataclass(frozen=True)
class DatasetSchema:
    """Allowed dataset-config keys and their type descriptions, per level (DreamBooth-style datasets)."""

    general: dict[str, str]
    dataset: dict[str, str]
    subset: dict[str, str]


@dataclass(frozen=True)
class Contract:
    commit: str
    source: str  # "recorded" or "live:<sd-scripts dir>"
    arguments: dict[str, dict[str, ArgumentSpec]]  # script name -> dest -> spec
    dataset_schema: DatasetSchema
    # Why the shipped copy is used although a checkout was given (its argument list could not be read).
    fallback_reason: str | None = None

    def arguments_of(self, script: str) -> dict[str, ArgumentSpec]:
        if script not in self.arguments:
            raise PipelineError(f"the sd-scripts contract ({self.source}, {self.commit[:10]}) has no {script}: "
                                "that checkout predates the family; use the pinned commit")
        return self.arguments[script]


def _argument_from_record(record: dict[str, Any]) -> ArgumentSpec:
    is_flag = record["action"] in ("_StoreTrueAction", "_StoreFalseAction", "_StoreConstAction")
    choices = record.get("choices")
    return ArgumentSpec(
        dest=record["dest"],
        option=record["option_strings"][0] if record.get("option_strings") else f"--{record['dest']}",
        is_flag=is_flag,
        value_type=None if is_flag else (record.get("type") or "str"),
        default=record.get("default"),
        choices=tuple(c for c in choices if c is not None) if choices else None,
        is_list=record.get("nargs") in ("*", "+"),
    )


def contract_from_records(args_record: dict[str, Any], dataset_record: dict[str, Any], *,
                          source: str) -> Contract:
    arguments = {
        script: {a["dest"]: _argument_from_record(a) for a in args_record[script] if a["dest"] != "help"}
        for script in SCRIPTS if script in args_record
    }
    schema = DatasetSchema(
        general=dict(_types(dataset_record["general"])),
        dataset=dict(_types(dataset_record["dataset_dreambooth"])),
        subset=dict(_types(dataset_record["subset_dreambooth"])),
    )
    return Contract(commit=args_record.get("commit", "unknown"), source=source, arguments=arguments,
                    dataset_schema=schema)


def _types(level: dict[str, Any]) -> list[tuple[str, str]]:
    return [(key, spec["type"] if isinstance(spec, dict) else str(spec)) for key, spec in level.items()]


@cache
def recorded_contract() -> Contract:
    """The shipped copy, parsed once per process: it is read-only data (a refresh clears the cache), and
    every override a trial config places asks it (``placement.override_table``) -- parsing its JSON
    (~10 ms) per key made a simulated search and the bench's reference spend minutes on nothing else."""
    args_record: dict[str, Any] = {}
    for name in _ARGUMENT_FILES:
        args_record.update(json.loads((_DATA / name).read_text()))
    dataset_record = json.loads((_DATA / "dataset_config_keys.json").read_text())
    return contract_from_records(args_record, dataset_record, source="recorded")


def introspect_live(sd_scripts_dir: Path, trainer_python: str, *, timeout: float = 300) -> tuple[dict, dict]:
    """Run ``_introspect.py`` in the trainer's Python inside ``sd_scripts_dir``; return both records."""
    script = Path(__file__).with_name("_introspect.py")
    try:
        completed = subprocess.run(
            [trainer_python, str(script)], cwd=sd_scripts_dir, capture_output=True, text=True,
            timeout=timeout, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PipelineError(f"could not read sd-scripts' parser with {trainer_python}: {error}") from error
    if completed.returncode != 0:
        tail = "\n".join(completed.stderr.strip().splitlines()[-5:])
        raise PipelineError(f"reading sd-scripts' parser in {sd_scripts_dir} failed:\n{tail}")
    try:
        payload = json.loads(completed.stdout.strip().splitlines()[-1])
        args_record, dataset_record = payload["args"], payload["dataset"]
    except (IndexError, ValueError, KeyError, TypeError) as error:
        raise PipelineError(f"sd-scripts' parser in {sd_scripts_dir} did not print an argument list "
                            f"({type(error).__name__}: {error})") from None
    if not isinstance(args_record, dict) or not isinstance(dataset_record, dict):
        raise PipelineError(f"sd-scripts' parser in {sd_scripts_dir} printed an argument list of the wrong shape")
    return args_record, dataset_record


def refresh_recorded_contract(sd_scripts_dir: Path, trainer_python: str,
                              destination: Path | None = None) -> Path:
    """Rewrite the shipped contract copy from a live checkout; returns the folder written."""
    args_record, dataset_record = introspect_live(sd_scripts_dir, trainer_python)
    destination = destination or Path(str(_DATA))
    for name, scripts in _ARGUMENT_FILES.items():
        part = {"commit": args_record.get("commit", "unknown"),
                **{script: args_record[script] for script in scripts if script in args_record}}
        atomic_write_json(destination / name, part, indent=1)
    atomic_write_json(destination / "dataset_config_keys.json", dataset_record, indent=1)
    recorded_contract.cache_clear()
    return destination


def load_contract(sd_scripts_dir: Path | None = None, trainer_python: str | None = None, *,
                  cache_dir: Path | None = None) -> Contract:
    """The live contract when a checkout and a working trainer Python are there, else the recorded one."""
    if sd_scripts_dir is None or trainer_python is None or not (sd_scripts_dir / SCRIPTS[0]).is_file():
        return recorded_contract()
    commit = checkout_commit(sd_scripts_dir) or "unknown"
    cache_file = (cache_dir / f"contract-{commit}.json") if cache_dir else None
    source = f"live:{sd_scripts_dir}"
    if cache_file and cache_file.is_file() and commit != "unknown":
        try:
            cached = json.loads(cache_file.read_text(encoding="utf-8"))
            return contract_from_records(cached["args"], cached["dataset"], source=source)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:  # a damaged cache: read again
            log.info("ignoring the unreadable contract cache %s (%s)", cache_file, error)
    try:
        args_record, dataset_record = introspect_live(sd_scripts_dir, trainer_python)
        contract = contract_from_records(args_record, dataset_record, source=source)
    except (PipelineError, KeyError, TypeError, ValueError, AttributeError) as error:
        reason = (f"could not read the argument list of the sd-scripts tree {sd_scripts_dir} ({error}); using "
                  f"the shipped copy {Path(str(_DATA)) / 'args.json'} (sd-scripts {recorded_contract().commit})")
        log.warning("%s", reason)
        return replace(recorded_contract(), fallback_reason=reason)
    if cache_file and commit != "unknown":
        atomic_write_json(cache_file, {"args": args_record, "dataset": dataset_record}, indent=None)
    return contract
