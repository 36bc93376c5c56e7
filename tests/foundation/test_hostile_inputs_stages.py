"""Hostile inputs to the data stages and the human-verdict commands (issue 14): extract, crop, curate, caption,
dataset prepare and votes. Same contract as ``test_hostile_inputs``: a non-zero exit, the file or key named on
the last line printed, no traceback, and every file that existed before left byte for byte as it was (nothing
new either: each is refused before the stage writes).

The neighbours of that table's cases: numbers that parse but cannot be used (NaN, inf, out of range), one
stage's output folder given to another, names and files the trainer would choke on, profiles that are not
UTF-8 or not YAML, and a --write-config that would replace a file it did not write.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from orchestrator.toy import generate_toy_film
from orchestrator.vision.synthetic import synthetic_scene
from tests.foundation import hostile_fixtures as fx
from tests.foundation.test_hostile_inputs import PROJECT_ROOT, _argv, _run_main, _snapshot

TINY_CLIP = ["--clip-model", "tiny-clip", "--clip-weights", "random", "--device", "cpu"]
REFS = ["--references", "{tmp}/finished/references"]


@pytest.fixture(scope="session")
def toy_video(tmp_path_factory) -> bytes:
    return Path(generate_toy_film(tmp_path_factory.mktemp("film")).video).read_bytes()


def _write_videos(root: Path, video: bytes) -> None:
    (root / "film.avi").write_bytes(video)
    (root / "zero.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("this is a text file with a video's name\n" * 20)
    extracted = root / "extracted"  # what extract leaves: its manifest and summary
    extracted.mkdir()
    (extracted / "manifest.jsonl").write_text('{"file": "film-000001.png", "video": "film.avi"}\n')
    (extracted / "summary.json").write_text(json.dumps({"summary": "1 film", "films": 1, "videos": []}))
    cropped = root / "cropped"
    cropped.mkdir()
    (cropped / "manifest.jsonl").write_text('{"file": "f0.png", "verdict": "kept"}\n')
    (cropped / "summary.json").write_text(json.dumps({"stage": "crop", "crops": 1, "detector": "owlv2"}))


def _write_curation_configs(root: Path) -> None:
    for name, body in (("cur_nan", "[identity]\nthreshold = nan\n"),
                       ("cur_inf", "[quality]\nmin_laplacian_variance = inf\n"),
                       ("cur_fraction", "[quality]\nmax_dark_clipped_fraction = 1.5\n"),
                       ("cur_threshold", "[identity]\nthreshold = 2.0\n"),
                       ("cur_k_zero", "[identity]\nk = 0\n"),
                       ("cur_hamming", "[dedup]\nmax_hamming_distance = -1\n")):
        (root / f"{name}.toml").write_text(body)


def _write_profiles(root: Path) -> None:
    (root / "prof_latin.yaml").write_bytes(b"name: luca\ndescription: [caf\xe9]\n")
    (root / "prof_bad.yaml").write_text("name: [unclosed\n")


def _write_sources(root: Path) -> None:
    """Folders `dataset prepare` reads: each with one good image and one thing training cannot use."""
    for name in ("src_zero", "src_newline", "src_undecodable"):
        (root / name).mkdir()
        synthetic_scene(40, (64, 64)).save(root / name / "good.png")
    (root / "src_zero" / "z.png").write_bytes(b"")
    synthetic_scene(41, (64, 64)).save(root / "src_newline" / "a\nb.png")
    (root / "src_undecodable" / "bad.png").write_bytes(fx.garbage_pixel_png(valid_zlib=False))


def _write_links_and_selection(root: Path) -> None:
    (root / "loop_a").symlink_to(root / "loop_b")
    (root / "loop_b").symlink_to(root / "loop_a")
    reviewed = root / "reviewed"  # a curation whose selected/ a person captioned in place
    shutil.copytree(root / "curation", reviewed)
    (reviewed / "selected").mkdir()
    (reviewed / "selected" / "f0.txt").write_text("luca, a boy, hand-written caption")


def _write_votes(root: Path) -> None:
    from orchestrator.verdict import select_candidates, write_comparison_page
    from tests.verdict.scored_run import make_scored_run, random_metric_rows, simulated_choices, write_votes

    run = make_scored_run(root / "scored", random_metric_rows(3, 1))
    page = write_comparison_page(select_candidates(run, top=3), None).page.parent
    manifest = json.loads((page / "manifest.json").read_text())
    entries = simulated_choices(page, {"identity": 1.0}, sharpness=3.0)
    write_votes(page / "votes.json", manifest["set_id"], entries)
    foreign = root / "album"  # a folder of someone's own: a manifest.json and images/ that are no page
    (foreign / "images").mkdir(parents=True)
    (foreign / "manifest.json").write_text('{"album": "summer"}')
    synthetic_scene(42, (32, 32)).save(foreign / "images" / "photo.png")
    (root / "hand.toml").write_text("# a hand-made evaluation config\n[weights]\nidentity = 0.9\n")


def _cache(root: Path) -> Path:
    """Caches the stages build (CLIP embeddings, the random detector's tokenizer) lie outside the snapshot."""
    return root.parent / f"{root.name}-cache"


def _command(argv: list[str], root: Path) -> list[str]:
    return [a.replace("{cache}", str(_cache(root))) for a in _argv(argv, root, 0)]


@pytest.fixture
def project(tmp_path, monkeypatch, toy_video):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("LORA_PIPELINE_CACHE_DIR", str(_cache(tmp_path)))
    monkeypatch.chdir(PROJECT_ROOT)
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "empty_dir").mkdir()
    fx.write_datasets(tmp_path)
    fx.write_curation(tmp_path)
    fx.write_finished_run(tmp_path)
    _write_videos(tmp_path, toy_video)
    _write_curation_configs(tmp_path)
    _write_profiles(tmp_path)
    _write_sources(tmp_path)
    _write_votes(tmp_path)
    _write_links_and_selection(tmp_path)
    yield tmp_path
    shutil.rmtree(_cache(tmp_path), ignore_errors=True)


def _extract(*extra: str, video: str = "film.avi", out: str = "{tmp}/frames_out") -> list[str]:
    return ["extract", f"{{tmp}}/{video}", "--out", out, "--no-progress", *extra]


def _crop(*extra: str, out: str = "{tmp}/crops") -> list[str]:
    return ["crop", "{tmp}/frames", *REFS, "--out", out, "--detector", "random", "--min-side", "32",
            "--cache-dir", "{cache}", "--no-progress", *TINY_CLIP, *extra]


def _curate(*extra: str, out: str = "{tmp}/curated") -> list[str]:
    return ["curate", "{tmp}/frames", *REFS, "--out", out, "--no-progress", *TINY_CLIP, *extra]


def _prepare(source: str, *extra: str, name: str = "luca") -> list[str]:
    return ["dataset", "prepare", f"{{tmp}}/{source}", "--out", "{tmp}/kohya", "--name", name, *extra]


def _votes(*extra: str) -> list[str]:
    return ["votes", "apply", "{tmp}/scored/verdict/votes.json", "--min-votes", "1", "--resamples", "20", *extra]


CASES: dict[str, tuple[list[str], str]] = {
    # extract: numbers that parse but no stage can use, videos that are not videos, another stage's folder
    "extract_shot_threshold_nan": (_extract("--shot-threshold", "nan"), "--shot-threshold"),
    "extract_shot_threshold_inf": (_extract("--shot-threshold", "inf"), "--shot-threshold"),
    "extract_min_gap_negative": (_extract("--min-gap", "-1"), "--min-gap"),
    "extract_per_shot_word": (_extract("--per-shot", "three"), "--per-shot"),
    "extract_analysis_width_float": (_extract("--analysis-width", "64.5"), "--analysis-width"),
    "extract_video_is_a_folder": (_extract(video="empty_dir"), "empty_dir"),
    "extract_zero_byte_video": (_extract(video="zero.mp4"), "zero.mp4"),
    "extract_text_named_mp4": (_extract(video="text.mp4"), "text.mp4"),
    "extract_into_a_curation": (_extract(out="{tmp}/curation"), "curation"),
    "extract_into_crops": (_extract(out="{tmp}/cropped"), "cropped"),
    # crop
    "crop_threshold_nan": (_crop("--threshold", "nan"), "--threshold"),
    "crop_threshold_above_one": (_crop("--threshold", "2.0"), "--threshold"),
    "crop_box_threshold_above_one": (_crop("--box-threshold", "2"), "--box-threshold"),
    "crop_margin_negative": (_crop("--margin", "-5"), "--margin"),
    "crop_batch_size_word": (_crop("--batch-size", "many"), "--batch-size"),
    "crop_empty_query": (_crop("--query", ""), "query"),
    "crop_into_a_curation": (_crop(out="{tmp}/curation"), "curation"),
    "crop_into_extracted_frames": (_crop(out="{tmp}/extracted"), "extracted"),
    "crop_out_is_the_references": (_crop(out="{tmp}/finished/references"), "references"),
    "crop_out_inside_the_references": (_crop(out="{tmp}/finished/references/crops"), "references"),
    "crop_out_inside_the_frames": (_crop(out="{tmp}/frames/crops"), "frames"),
    "crop_clip_weights_not_a_checkpoint": (_crop("--clip-weights", "{tmp}/a_file"), "a_file"),
    "crop_profile_not_utf8": (_crop("--profile", "{tmp}/prof_latin.yaml"), "prof_latin.yaml"),
    "crop_profile_malformed": (_crop("--profile", "{tmp}/prof_bad.yaml"), "prof_bad.yaml"),
    # curate: flags and config numbers
    "curate_threshold_nan": (_curate("--threshold", "nan"), "--threshold"),
    "curate_threshold_above_one": (_curate("--threshold", "2.0"), "--threshold"),
    "curate_top_k_zero": (_curate("--top-k", "0"), "--top-k"),
    **{f"curate_config_{n}": (_curate("--config", f"{{tmp}}/cur_{n}.toml"), k) for n, k in (
        ("nan", "identity.threshold"), ("inf", "quality.min_laplacian_variance"),
        ("fraction", "quality.max_dark_clipped_fraction"), ("threshold", "identity.threshold"),
        ("k_zero", "identity.k"), ("hamming", "dedup.max_hamming_distance"))},
    "curate_into_extracted_frames": (_curate(out="{tmp}/extracted"), "extracted"),
    "curate_out_is_the_references": (_curate(out="{tmp}/finished/references"), "references"),
    "curate_out_inside_the_references": (_curate(out="{tmp}/finished/references/curated"), "references"),
    "curate_clip_weights_not_a_checkpoint": (_curate("--clip-weights", "{tmp}/a_file"), "a_file"),
    "curate_into_crops": (_curate(out="{tmp}/cropped"), "cropped"),
    # caption: profiles
    "caption_profile_not_utf8": (["caption", "{tmp}/selected", "--profile", "{tmp}/prof_latin.yaml", "--dry-run"],
                                 "prof_latin.yaml"),
    "caption_profile_malformed": (["caption", "{tmp}/selected", "--profile", "{tmp}/prof_bad.yaml", "--dry-run"],
                                  "prof_bad.yaml"),
    # dataset prepare: the subset name, and sources the trainer could not read
    "prepare_name_newline": (_prepare("selected", name="lu\nca"), "name"),
    "prepare_name_dotdot": (_prepare("selected", name=".."), "name"),
    "prepare_name_hidden": (_prepare("selected", name=".luca"), "name"),
    "prepare_name_tab": (_prepare("selected", name="lu\tca"), "name"),
    "prepare_zero_byte_image": (_prepare("src_zero"), "z.png"),
    "prepare_undecodable_image": (_prepare("src_undecodable"), "bad.png"),
    "prepare_newline_in_file_name": (_prepare("src_newline"), "src_newline"),
    "prepare_caption_latin1": (_prepare("ds_caption_latin1/10_luca"), "bad.txt"),
    "prepare_caption_utf16": (_prepare("ds_caption_utf16/10_luca"), "bad.txt"),
    # a folder that is a symlink loop, and a selection a person added to
    "curate_frames_symlink_loop": (["curate", "{tmp}/loop_a", *REFS, "--out", "{tmp}/curated", *TINY_CLIP],
                                   "loop_a"),
    "curate_references_symlink_loop": (["curate", "{tmp}/frames", "--references", "{tmp}/loop_a", "--out",
                                        "{tmp}/curated", *TINY_CLIP], "loop_a"),
    "crop_frames_symlink_loop": (["crop", "{tmp}/loop_a", *REFS, "--out", "{tmp}/crops", *TINY_CLIP], "loop_a"),
    "apply_symlink_loop": (["curate", "apply", "{tmp}/loop_a"], "loop_a"),
    "apply_over_captions_added_to_selected": (["curate", "apply", "{tmp}/reviewed"], "f0.txt"),
    # votes apply
    "votes_resamples_zero": (_votes("--resamples", "0"), "--resamples"),
    "votes_min_votes_negative": (_votes("--min-votes", "-1"), "--min-votes"),
    "votes_write_config_over_a_hand_made_file": (_votes("--write-config", "{tmp}/hand.toml"), "hand.toml"),
    "votes_write_config_is_a_folder": (_votes("--write-config", "{tmp}/empty_dir"), "empty_dir"),
    "votes_page_over_a_foreign_folder": (["votes", "page", "{tmp}/scored", "--out", "{tmp}/album"], "album"),
    "votes_page_out_is_a_file": (["votes", "page", "{tmp}/scored", "--out", "{tmp}/a_file"], "a_file"),
    "votes_page_top_word": (["votes", "page", "{tmp}/scored", "--top", "five"], "--top"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_stage_input_is_refused_clearly_and_changes_nothing(name, project, capsys):
    argv, named = CASES[name]
    before = _snapshot(project)
    code = _run_main(_command(argv, project))
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code != 0, output
    assert "Traceback" not in output
    last = captured.err.strip().splitlines()[-1] if captured.err.strip() else ""
    assert named in last, output  # the one line that says what is wrong names it
    assert _snapshot(project) == before


def test_a_stage_reruns_into_its_own_folder(project, capsys):
    """The folder check refuses another stage's folder, never the stage's own (a rerun resumes)."""
    argv = _command(_extract("--per-shot", "1"), project)
    assert _run_main(argv) == 0
    summary = json.loads((project / "frames_out" / "summary.json").read_text())
    assert summary["stage"] == "extract"
    assert _run_main(argv) == 0, capsys.readouterr()


def test_write_config_may_replace_what_votes_apply_wrote(project, capsys):
    argv = _command(_votes("--write-config", "{tmp}/voted.toml"), project)
    assert _run_main(argv) == 0, capsys.readouterr()
    assert _run_main(argv) == 0, capsys.readouterr()


def test_the_table_probes_at_least_thirty_inputs():
    assert len(CASES) >= 30
