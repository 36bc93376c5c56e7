"""Run by the trainer's Python inside an sd-scripts checkout: print its contract as one JSON line.

Standalone on purpose (only the standard library and sd-scripts itself): it runs in the trainer's
environment, which does not have our package installed.
"""

import functools
import json
import os
import subprocess
import sys

sys.path.insert(0, os.getcwd())


def describe_action(action):
    type_name = None
    if action.type is not None:
        type_name = getattr(action.type, "__name__", str(action.type))
    return {
        "dest": action.dest,
        "option_strings": list(action.option_strings),
        "action": type(action).__name__,
        "type": type_name,
        "default": action.default if isinstance(action.default, (str, int, float, bool, type(None))) else str(action.default),
        "choices": list(action.choices) if action.choices else None,
        "nargs": action.nargs,
        "const": action.const if isinstance(action.const, (str, int, float, bool, type(None))) else str(action.const),
        "required": action.required,
    }


def describe_validator(validator):
    if isinstance(validator, type):
        return validator.__name__
    name = type(validator).__name__
    if name == "Any":
        return " | ".join(describe_validator(v) for v in validator.validators)
    if isinstance(validator, (list, tuple)):
        return "[" + ", ".join(describe_validator(v) for v in validator) + "]"
    if name == "ExactSequence":
        return "[" + ", ".join(describe_validator(v) for v in validator.validators) + "]"
    if isinstance(validator, functools.partial):
        return describe_partial(validator)
    if callable(validator):
        return getattr(validator, "__name__", name)
    return name


def describe_partial(validator):
    """ConfigSanitizer's converters are partials of a helper over a class; their names say the shape."""
    helper = getattr(validator.func, "__name__", "")
    klass = describe_validator(validator.args[0]) if validator.args else "value"
    if helper.endswith("scalar_or_twodim"):
        return f"{klass} | [{klass}, {klass}]"
    if helper.endswith("twodim"):
        return f"[{klass}, {klass}]"
    return helper or "partial"


def describe_schema(schema):
    described = {}
    for key, validator in schema.items():
        name = getattr(key, "schema", key)
        if name == "subsets":
            continue
        described[str(name)] = {"type": describe_validator(validator), "required": type(key).__name__ == "Required"}
    return described


COMMIT_MARKER = ".lora_pipeline_commit"  # kohya/checkout.py's marker of an exported tree
# Every training script of a family (kohya/families.py); a checkout older than a script simply lacks it.
SCRIPTS = ("train_network.py", "sdxl_train_network.py", "flux_train_network.py", "sd3_train_network.py")


def main():
    import importlib

    from library.config_util import ConfigSanitizer

    parsers = {
        script: importlib.import_module(script[:-3]).setup_parser()
        for script in SCRIPTS if os.path.isfile(script)
    }
    commit = ""
    if os.path.isfile(COMMIT_MARKER):  # an exported tree: without it, git would name the enclosing repository
        with open(COMMIT_MARKER, encoding="utf-8") as handle:
            commit = handle.read().strip()
    elif os.path.exists(".git"):
        try:
            commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        except OSError:
            commit = ""
    args = {"commit": commit or "unknown"}
    for script, parser in parsers.items():
        args[script] = [describe_action(a) for a in parser._actions if a.dest != "help"]
    sanitizer = ConfigSanitizer(True, True, False, True)
    dataset = {
        "commit": args["commit"],
        "general": describe_schema(sanitizer.general_schema),
        "dataset_dreambooth": describe_schema(sanitizer.db_dataset_schema),
        "subset_dreambooth": describe_schema(sanitizer.db_subset_schema),
    }
    print(json.dumps({"args": args, "dataset": dataset}))


if __name__ == "__main__":
    main()
