"""The blind comparison page: ``FOLDER/compare.html`` with its images and its manifest.

The page is one HTML file plus ``images/`` beside it, named by content hash, so neither the page nor
an image's file name tells which checkpoint drew it; it works from ``file://`` with no network.
``manifest.json`` (which candidate is behind each side) stays beside the page for ``votes apply``.
"""

from __future__ import annotations

import hashlib
import html
import json
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from orchestrator.common.atomic import atomic_write_text
from orchestrator.common.errors import UserInputError, require_folder_target
from orchestrator.verdict.candidates import CandidateSet
from orchestrator.verdict.comparisons import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    Comparison,
    plan_comparisons,
    write_manifest,
)

VOTES_FORMAT = "lora-pipeline/blind-votes"
VOTES_VERSION = 1
PAGE_NAME = "compare.html"
IMAGES_FOLDER = "images"
VERDICT_FOLDER = "verdict"

_STYLE = """
body{font:15px system-ui,sans-serif;margin:0;background:#1d1f21;color:#ddd}
header{padding:10px 16px;background:#26292c;border-bottom:1px solid #444}
header h1{font-size:17px;margin:0 0 4px} header p{margin:2px 0;color:#aaa}
#track{height:6px;background:#444;margin-top:6px} #bar{height:6px;background:#3b8f3b;width:0}
#prompt{padding:8px 16px;color:#ccc;min-height:1.3em}
#pair{display:flex;gap:12px;padding:0 16px;justify-content:center}
#pair figure{margin:0;flex:1;max-width:48vw;text-align:center}
#pair img{width:100%;max-height:70vh;object-fit:contain;background:#000;cursor:pointer;border:3px solid #333}
#pair img:hover{border-color:#3b8f3b}
button{font:inherit;padding:6px 14px;margin:4px;cursor:pointer}
#controls{text-align:center;padding:8px} #message{padding:0 16px;color:#9c9} #message.error{color:#f77}
textarea{width:calc(100% - 32px);margin:4px 16px;height:60px} #votes-output{display:none}
"""


@dataclass(frozen=True)
class PageResult:
    page: Path
    manifest: Path
    comparisons: int
    set_id: str


def default_folder(candidate_set: CandidateSet) -> Path:
    return candidate_set.source / VERDICT_FOLDER


#: Where the page tells a person to export their votes (beside its manifest).
VOTES_NAME = "votes.json"


def _check_page_folder(folder: Path) -> None:
    """The page replaces its manifest, page and images/ in ``folder``: refuse a folder that holds them but
    is no earlier page (a hand-made manifest.json, someone's images/), before anything is written."""
    require_folder_target(folder, key="out")
    if not folder.is_dir() or not any((folder / name).exists() for name in (MANIFEST_NAME, PAGE_NAME, IMAGES_FOLDER)):
        return
    try:
        ours = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8")).get("format") == MANIFEST_FORMAT
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise UserInputError(f"holds {MANIFEST_NAME}, {PAGE_NAME} or {IMAGES_FOLDER}/ of something other than a "
                             "blind comparison page; writing the page would replace them", path=folder, key="out",
                             hint="choose a new or empty --out folder")


def _check_votes_kept(folder: Path, set_id: str, *, overwrite: bool) -> None:
    """Votes exported beside an earlier page are keyed to its manifest: a page of other checkpoints would
    replace that manifest and leave the votes unusable, so it is refused unless asked."""
    if overwrite or not (folder / VOTES_NAME).is_file():
        return
    try:
        earlier = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8")).get("set_id")
    except (OSError, ValueError, AttributeError):
        earlier = None
    if earlier != set_id:
        raise UserInputError(f"holds {VOTES_NAME} for an earlier page of other checkpoints; writing this page "
                             f"would replace the {MANIFEST_NAME} those votes are keyed to", path=folder,
                             key="overwrite", hint=f"apply the votes first (`lora-pipeline votes apply "
                                                   f"{folder / VOTES_NAME}`), choose another --out, or pass "
                                                   "--overwrite")


def write_comparison_page(candidate_set: CandidateSet, folder: Path | None = None, *,
                          max_comparisons: int = 200, overwrite: bool = False) -> PageResult:
    """Write the page, its images and its manifest into ``folder`` (default ``SOURCE/verdict``)."""
    folder = Path(folder) if folder is not None else default_folder(candidate_set)
    _check_page_folder(folder)
    _check_votes_kept(folder, candidate_set.set_id, overwrite=overwrite)
    comparisons = plan_comparisons(candidate_set, max_comparisons=max_comparisons)
    images = _copy_images(candidate_set, comparisons, folder / IMAGES_FOLDER)
    prompts = {index: text for c in candidate_set.candidates for index, text in c.prompts.items()}
    page_data = {
        "format": VOTES_FORMAT, "version": VOTES_VERSION, "set_id": candidate_set.set_id,
        "source": str(candidate_set.source),
        "comparisons": [{"id": c.token, "left_image": images[(c.left, c.prompt_index, c.seed)],
                         "right_image": images[(c.right, c.prompt_index, c.seed)],
                         "prompt": prompts.get(c.prompt_index, f"prompt {c.prompt_index}")} for c in comparisons],
    }
    manifest = write_manifest(folder, candidate_set, comparisons)
    script = resources.files("orchestrator.verdict").joinpath("page_assets/page.js").read_text(encoding="utf-8")
    apply_command = f"lora-pipeline votes apply {folder / 'votes.json'}"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Blind comparison ({len(comparisons)} pairs)</title>
<style>{_STYLE}</style></head><body>
<header><h1>Which sample is better? <span id="progress"></span></h1>
<p>{len(candidate_set.candidates)} checkpoints, names hidden, sides shuffled. Keys: &larr; / a / 1 left,
&rarr; / d / 2 right, &darr; / t / 0 tie, s / space skip, u undo. Click an image to choose it.</p>
<p>Votes are kept in this browser as you go. When done (or any time), export and run
<code>{html.escape(apply_command)}</code>.</p>
<div id="track"><div id="bar"></div></div></header>
<div id="prompt"></div>
<div id="pair" data-token=""><figure><img id="left-image" alt="left sample"></figure>
<figure><img id="right-image" alt="right sample"></figure></div>
<div id="controls"><button data-vote="left">Left better</button><button data-vote="tie">Tie</button>
<button data-vote="right">Right better</button><button data-vote="skip">Skip</button>
<button id="undo">Undo</button> <button id="export">Export votes</button></div>
<div id="message"></div>
<textarea id="votes-output" readonly></textarea>
<details><summary>Load votes exported earlier</summary><input id="votes-file" type="file" accept=".json">
<textarea id="votes-input" placeholder="or paste votes.json here"></textarea><button id="import">Load</button>
</details>
<script>const PAGE = {_script_json(page_data)};</script>
<script>{script}</script></body></html>
"""
    page_path = atomic_write_text(folder / PAGE_NAME, page)
    return PageResult(page=page_path, manifest=manifest, comparisons=len(comparisons), set_id=candidate_set.set_id)


def _copy_images(candidate_set: CandidateSet, comparisons: list[Comparison],
                 folder: Path) -> dict[tuple[str, int, int], str]:
    needed = {(side, c.prompt_index, c.seed) for c in comparisons for side in (c.left, c.right)}
    relative = {}
    folder.mkdir(parents=True, exist_ok=True)
    for candidate_id, prompt_index, seed in sorted(needed):
        source = candidate_set.by_id(candidate_id).samples[(prompt_index, seed)]
        try:
            content = source.read_bytes()
        except OSError as error:
            raise UserInputError(f"cannot read a sample: {error}", path=source) from error
        name = hashlib.sha256(content).hexdigest()[:20] + source.suffix.lower()
        target = folder / name
        if not target.is_file():
            temporary = target.with_suffix(target.suffix + ".tmp")
            shutil.copyfile(source, temporary)
            temporary.replace(target)
        relative[(candidate_id, prompt_index, seed)] = f"{IMAGES_FOLDER}/{name}"
    return relative


def _script_json(value: object) -> str:
    # "</" is escaped so that a prompt text cannot close the script tag.
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")
