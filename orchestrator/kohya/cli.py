"""`lora-pipeline config render|check|list|refresh-contract`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from orchestrator.config.paths import add_location_arguments, paths_from_args
from orchestrator.kohya.families import FAMILIES

console = Console(soft_wrap=True, highlight=False)
EXIT_PROBLEMS = 2
EXIT_RENDERED_WITH_CHANGES = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    config = subparsers.add_parser("config", help="render and check kohya sd-scripts configs")
    verbs = config.add_subparsers(dest="config_command", metavar="VERB", required=True)

    render = verbs.add_parser("render", help="preset + --set overrides -> training.toml + dataset.toml")
    render.add_argument("preset", help="preset name in configs/training/ or a preset file")
    render.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                        help="override a kohya argument (network_dim=128) or dataset key (dataset.num_repeats=5)")
    render.add_argument("--out", type=Path, help="run folder (default: outputs/<output_name>)")
    render.add_argument("--overwrite", action="store_true",
                        help="render into a folder that holds a run's checkpoints, replacing the config they "
                             "were trained with")
    render.add_argument("--no-path-check", action="store_true",
                        help="render even if the model, dataset or prompt paths do not exist yet")
    add_location_arguments(render)
    render.set_defaults(handler=_render)

    check = verbs.add_parser("check", help="check an sd-scripts TOML (training or dataset config)")
    check.add_argument("file", type=Path, help="a training TOML (--config_file) or dataset TOML to check")
    check.add_argument("--family", choices=sorted(FAMILIES), help="default: from the file's header or keys")
    check.add_argument("--no-path-check", action="store_true",
                       help="check keys and values only, not that the paths it names exist")
    add_location_arguments(check)
    check.set_defaults(handler=_check)

    listing = verbs.add_parser("list", help="list the presets")
    listing.set_defaults(handler=_list)

    refresh = verbs.add_parser("refresh-contract",
                               help="rewrite the shipped argument list from a live sd-scripts checkout")
    add_location_arguments(refresh)
    refresh.set_defaults(handler=_refresh)


def _contract(paths):
    from orchestrator.kohya.contract import load_contract

    contract = load_contract(paths.sd_scripts, paths.trainer_python, cache_dir=paths.root / ".cache" / "contract")
    if contract.fallback_reason:
        console.print(f"[yellow]warning: {escape(contract.fallback_reason)}[/yellow]", soft_wrap=True)
    return contract


def _print_problems(problems) -> None:
    for problem in problems:
        style = "red" if problem.severity == "error" else "yellow"
        console.print(f"[{style}]{escape(str(problem))}[/{style}]")


def _render(args: argparse.Namespace) -> int:
    from orchestrator.config.overrides import parse_set_overrides
    from orchestrator.kohya.check import validate_rendered
    from orchestrator.kohya.render import render_run
    from orchestrator.kohya.validate import errors

    paths = paths_from_args(args)
    contract = _contract(paths)
    rendered = render_run(args.preset, overrides=parse_set_overrides(args.overrides), paths=paths,
                          run_dir=args.out, write=False, contract=contract)
    problems = validate_rendered(rendered, contract=contract, paths_must_exist=not args.no_path_check)
    _print_problems(problems)
    if errors(problems):
        console.print(f"[red]not rendered: {len(errors(problems))} problem(s) above[/red]")
        return EXIT_PROBLEMS
    _write_unless_a_run_is_there(rendered, overwrite=args.overwrite)
    console.print(f"rendered {rendered.preset_name} ({rendered.family}, {rendered.script_name}, "
                  f"contract: {contract.source})", highlight=False)
    console.print(f"  --config_file    {rendered.config_file}", highlight=False, soft_wrap=True)
    console.print(f"  --dataset_config {rendered.dataset_config_file}", highlight=False, soft_wrap=True)
    for warning in rendered.warnings:
        console.print(f"[yellow]warning: {escape(warning)}[/yellow]")
    return EXIT_RENDERED_WITH_CHANGES if rendered.warnings else 0


def _write_unless_a_run_is_there(rendered, *, overwrite: bool) -> None:  # type: ignore[no-untyped-def]
    """The config beside a run's checkpoints is the record of how they were trained: replaced only when
    asked (the runner's lock and record are the runner's: this layer knows a run by its checkpoints)."""
    from orchestrator.common.errors import UserInputError
    from orchestrator.kohya.outputs import CHECKPOINT_EXTENSIONS
    from orchestrator.kohya.render import write_rendered

    run_dir = Path(rendered.run_dir)
    trained = sorted(p.name for p in run_dir.glob("*") if p.is_file() and p.suffix in CHECKPOINT_EXTENSIONS)
    if trained and not overwrite:
        raise UserInputError(f"holds the checkpoints of a run ({', '.join(trained[:3])}); rendering would replace "
                             "the config they were trained with", path=run_dir, key="overwrite",
                             hint="pass --overwrite to replace it, or render into another --out")
    write_rendered(rendered)


def _check(args: argparse.Namespace) -> int:
    from orchestrator.kohya.check import check_config_file
    from orchestrator.kohya.validate import errors

    paths = paths_from_args(args)
    contract = _contract(paths)
    problems = check_config_file(args.file, family=args.family, contract=contract,
                                 paths_must_exist=not args.no_path_check)
    _print_problems(problems)
    if errors(problems):
        console.print(f"[red]{args.file}: {len(errors(problems))} error(s)[/red]", highlight=False)
        return EXIT_PROBLEMS
    console.print(f"[green]{args.file}: OK[/green] (contract: {contract.source})", highlight=False)
    return 0


def _list(args: argparse.Namespace) -> int:
    from orchestrator.config.presets import available_presets, load_preset

    for name in available_presets():
        preset = load_preset(name)
        console.print(f"[bold]{name}[/bold] ({preset.family}): {preset.description}", highlight=False)
    return 0


def _refresh(args: argparse.Namespace) -> int:
    from orchestrator.kohya.contract import refresh_recorded_contract

    paths = paths_from_args(args)
    written = refresh_recorded_contract(paths.sd_scripts, paths.trainer_python)
    console.print(f"contract refreshed from {paths.sd_scripts} into {written}", highlight=False)
    return 0
