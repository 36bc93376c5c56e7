"""Files the hostile-input suite feeds the CLI: broken presets, undecodable images and captions, a finished
run with results, a curation folder, a study storage that is not a database."""

from __future__ import annotations

import json
import socket
import struct
import zlib
from pathlib import Path

from orchestrator.dataset.records import FrameRecord, curation_id, write_manifest
from orchestrator.dataset.review import DECISIONS_FORMAT, DECISIONS_VERSION
from orchestrator.vision.synthetic import synthetic_scene

PRESET = "configs/training/luca_final_v1_pure.toml"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def garbage_pixel_png(*, valid_zlib: bool) -> bytes:
    """An 8x8 RGB PNG whose every chunk checksum is right but whose pixel stream cannot be decoded:
    either not zlib at all, or zlib holding far too few bytes for the image."""
    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x01\x02") if valid_zlib else b"\x78\x9c" + bytes(range(7, 250, 3))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", pixels)
            + png_chunk(b"IEND", b""))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def preset_variant(root: Path, project_root: Path, name: str, old: str, new: str) -> None:
    text = (project_root / PRESET).read_text()
    assert old in text, old
    (root / f"{name}.toml").write_text(text.replace(old, new, 1))


def write_presets(root: Path, project_root: Path) -> None:
    name = 'name = "luca_final_v1_pure"'
    for variant, old, new in (
        ("dim_abc", "network_dim = ", 'network_dim = "abc" #'),
        ("dim_float", "network_dim = ", "network_dim = 1.5 #"),
        ("dim_list", "network_dim = ", "network_dim = [1, 2] #"),
        ("lr_word", "learning_rate = ", 'learning_rate = "fast" #'),
        ("vram_abc", "min_vram_gb = 10.0", 'min_vram_gb = "abc"'),
        ("vram_negative", "min_vram_gb = 10.0", "min_vram_gb = -3.0"),
        ("name_slash", name, 'name = "luca/v2"'),
        ("name_dotdot", name, 'name = "../escaped"'),
        ("name_absolute", name, 'name = "/tmp/escaped"'),
        ("name_newline", name, 'name = "a\\nb"'),
        ("name_empty", name, 'name = ""'),
        ("unknown_key", "network_dim = ", "netwrk_dim = 4\nnetwork_dim = "),
        ("optimizer_bogus", "optimizer_type = ", 'optimizer_type = "NoSuchOptimizer" #'),
        ("xformers_twice", "network_dim = ", "xformers = true\nnetwork_dim = "),
    ):
        preset_variant(root, project_root, variant, old, new)
    (root / "malformed.toml").write_text('[kohya\nnetwork_dim = 4\n')
    (root / "not_utf8.toml").write_bytes(b'name = "\xff\xfe"\n')
    (root / "empty.toml").write_text("")


def write_datasets(root: Path) -> None:
    """DS/10_luca folders: one good pair plus one thing the trainer cannot read."""
    for name, image_bytes, caption in (
        ("ds_caption_latin1", None, "caf\xe9 luca".encode("latin-1")),
        ("ds_caption_utf16", None, "luca smiling".encode("utf-16")),
        ("ds_png_not_zlib", garbage_pixel_png(valid_zlib=False), b"luca"),
        ("ds_png_short_data", garbage_pixel_png(valid_zlib=True), b"luca"),
        ("ds_png_truncated", b"", b"luca"),
        ("ds_png_is_text", b"this is not an image", b"luca"),
    ):
        folder = root / name / "10_luca"
        folder.mkdir(parents=True)
        synthetic_scene(5, (64, 64)).save(folder / "good.png")
        (folder / "good.txt").write_text("luca, a boy")
        if image_bytes is None:
            synthetic_scene(6, (64, 64)).save(folder / "bad.png")
        elif image_bytes == b"":
            synthetic_scene(6, (64, 64)).save(folder / "bad.png")
            data = (folder / "bad.png").read_bytes()
            (folder / "bad.png").write_bytes(data[: len(data) // 2])
        else:
            (folder / "bad.png").write_bytes(image_bytes)
        (folder / "bad.txt").write_bytes(caption)
    source = root / "selected"
    source.mkdir()
    for index in range(2):
        synthetic_scene(10 + index, (64, 64)).save(source / f"frame_{index}.png")
    (source / "frame_0.npz").write_bytes(b"latent cache")
    (source / "keep_me").mkdir()
    (source / "keep_me" / "note.txt").write_text("the source's own folder")


def write_curation(root: Path) -> Path:
    """A curation folder (manifest of two accepted frames) and decisions files, good and bad."""
    frames, out = root / "frames", root / "curation"
    frames.mkdir()
    out.mkdir()
    records = []
    for index in range(2):
        path = frames / f"f{index}.png"
        synthetic_scene(30 + index, (64, 64)).save(path)
        from orchestrator.common.hashing import file_sha256
        records.append(FrameRecord(path=str(path), relative_path=path.name, sha256=file_sha256(path)))
    write_manifest(out / "manifest.jsonl", records)
    this_run = curation_id(out / "manifest.jsonl")

    def decisions(name: str, body: dict) -> None:
        (root / name).write_text(json.dumps({"format": DECISIONS_FORMAT, "version": DECISIONS_VERSION, **body}))

    decisions("decisions_foreign.json", {"curation_id": "0123456789abcdef", "decisions": {"f0.png": "reject"}})
    decisions("decisions_no_id.json", {"decisions": {"f0.png": "reject"}})
    decisions("decisions_bad_value.json", {"curation_id": this_run, "decisions": {"f0.png": "maybe"}})
    decisions("decisions_unknown_frame.json", {"curation_id": this_run, "decisions": {"other.png": "keep"}})
    (root / "decisions_not_json.json").write_text("{not json")
    (root / "decisions_wrong_format.json").write_text(json.dumps({"decisions": {}}))
    (root / "decisions_not_utf8.json").write_bytes(b'{"decisions": "\xff"}')
    return out


def write_finished_run(root: Path) -> Path:
    """A finished, evaluated run: its config, best.json, scores.json and report.html must survive."""
    from tests.evaluate.fake_run import make_run

    run = make_run(root / "finished").run_dir
    (run / "evaluation").mkdir(exist_ok=True)
    (run / "evaluation" / "best.json").write_text('{"epoch": 4, "score": 0.9}')
    (run / "evaluation" / "scores.json").write_text('{"epochs": []}')
    (run / "best.json").write_text('{"epoch": 4, "score": 0.9}')
    (run / "scores.json").write_text('{"epochs": []}')
    (run / "report.html").write_text("<html>good report</html>")
    return run


def write_references(root: Path) -> None:
    (root / "refs_empty").mkdir()
    bad = root / "refs_unreadable"
    bad.mkdir()
    (bad / "ref.png").write_bytes(garbage_pixel_png(valid_zlib=False))
    (bad / "notes.txt").write_text("no images here")
    text_only = root / "refs_text_only"
    text_only.mkdir()
    (text_only / "readme.txt").write_text("no images")


def write_storages(root: Path) -> None:
    (root / "not_a_db.db").write_text("this is not SQLite")
    (root / "db_folder.db").mkdir()
