"""What `search run` and `search worker` refuse before a study exists, so no GPU time is spent on a
search that cannot succeed: options that contradict each other, references that are no images, a base
preset the trainer would refuse, and a space that can draw a value the base cannot take.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.config.paths import ProjectPaths
    from orchestrator.config.presets import Preset


def check_study_options(args: argparse.Namespace) -> None:
    """What `search run` and `search worker` share: a study name that can name a folder, and a grace
    period a live worker's heartbeats can keep (shorter, and every running trial is failed as dead)."""
    from orchestrator.common.errors import UserInputError
    from orchestrator.config.names import check_output_name

    check_output_name(args.study_name, key="study-name")
    if args.grace <= args.heartbeat:
        raise UserInputError(f"--grace ({args.grace} s) must be longer than --heartbeat ({args.heartbeat} s), or "
                             "every live trial looks dead", key="grace")


def require_reference_images(folder: Path) -> None:
    """Refuse before any GPU time when the references cannot score a trial (missing, empty, unreadable)."""
    from orchestrator.common.errors import UserInputError
    from orchestrator.vision import ImageDecodeError, list_image_files, open_image_rgb

    if not folder.is_dir():
        raise UserInputError("reference folder not found", path=folder, key="references",
                             hint="a folder of images of the character, used to score every trial")
    for image in list_image_files(folder):
        try:
            open_image_rgb(image)
            return
        except ImageDecodeError:
            continue
    raise UserInputError("reference folder has no readable images: no trial could be scored", path=folder,
                         key="references", hint="add images of the character; nothing was trained")


def refuse_broken_base(base: Preset, paths: ProjectPaths, output: Path, *, check_paths: bool) -> None:
    """A base preset whose own values sd-scripts would refuse (``network_dim = "abc"``) fails every trial;
    render it in memory and check it as `config render` does, before any study is created."""
    from orchestrator.common.errors import UserInputError
    from orchestrator.kohya.check import validate_rendered
    from orchestrator.kohya.render import render_run
    from orchestrator.kohya.validate import errors

    rendered = render_run(base, paths=paths, run_dir=output / "base_preset_check", write=False)
    problems = errors(validate_rendered(rendered, paths_must_exist=check_paths))
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise UserInputError(f"the base preset cannot be trained: {first.message}{more}", path=base.source,
                             key=first.key)


def refuse_space_the_base_cannot_take(space: Any, base: Preset, paths: ProjectPaths, output: Path) -> None:
    """Every value the space can give (each choice, each bound) must be a value the trainer takes on the
    base preset: a typo in a name (``netwrk_dim``) or a word where a number goes (``choices = ["big"]``)
    is refused now, naming the space file's key, not when a trial draws it hours later."""
    from orchestrator.common.errors import UserInputError
    from orchestrator.kohya.check import validate_rendered
    from orchestrator.kohya.render import render_run
    from orchestrator.kohya.validate import errors

    first = {spec.name: spec.ends()[0] for spec in space.parameters}
    for spec in space.parameters:
        for value in spec.ends():
            point = {**first, spec.name: value}
            try:
                overrides = space.training_overrides(point)
                rendered = render_run(base, overrides=overrides, paths=paths, run_dir=output / "space_check",
                                      write=False)
                problems: list[object] = list(errors(validate_rendered(rendered, paths_must_exist=False)))
            except (UserInputError, TypeError, ValueError) as error:
                problems = [error]
            if problems:
                problem = problems[0]
                detail = getattr(problem, "message", None) or str(problem)
                raise UserInputError(f"{spec.name} = {value!r} cannot be trained on base preset {base.name}: "
                                     f"{detail}", path=space.source, key=f"parameters.{spec.name}")
