from __future__ import annotations

import json
from dataclasses import replace

import pytest

from orchestrator.cli import main
from orchestrator.common.errors import UserInputError
from orchestrator.common.hashing import file_sha256
from orchestrator.dataset.apply import apply_decisions, load_decisions
from orchestrator.dataset.config import CurationConfig, IdentitySettings
from orchestrator.dataset.curate import curate
from orchestrator.dataset.review import DECISIONS_FORMAT

CONFIG = replace(CurationConfig(), identity=IdentitySettings(threshold=0.985, rule="max", borderline_margin=0.2))


@pytest.fixture
def curated(frame_set, tiny_encoder, tmp_path):
    result = curate(frame_set.frames, frame_set.references, tmp_path / "out", CONFIG, encoder=tiny_encoder,
                    cache_dir=tmp_path / "cache", progress=False)
    return result


def _write_decisions(path, decisions, curated=None):
    bound = {"curation_id": curated.summary["curation_id"]} if curated is not None else {}
    path.write_text(json.dumps({"format": DECISIONS_FORMAT, "version": 2, **bound, "decisions": decisions}))
    return path


def test_without_decisions_the_accepted_frames_are_copied(curated):
    selection = apply_decisions(curated.out_dir)
    accepted = [r for r in curated.records if r.verdict == "accepted"]
    assert sorted(p.name for p in selection.folder.iterdir()) == sorted(r.relative_path for r in accepted)
    for source, copy in selection.copied:
        assert file_sha256(source) == file_sha256(copy)
    assert json.loads((curated.out_dir / "selection.json").read_text())["count"] == len(accepted)


def test_reviewer_can_drop_accepted_and_rescue_borderline_frames(curated, tmp_path):
    accepted = [r.relative_path for r in curated.records if r.verdict == "accepted"]
    borderline = [r.relative_path for r in curated.records if r.verdict == "borderline"]
    assert accepted and borderline
    decisions = _write_decisions(tmp_path / "decisions.json", {accepted[0]: "reject", borderline[0]: "keep"})
    apply_decisions(curated.out_dir)  # a first selection, to be replaced
    selection = apply_decisions(curated.out_dir, load_decisions(decisions))
    names = sorted(p.name for p in selection.folder.iterdir())
    assert names == sorted([*accepted[1:], borderline[0]])
    assert (selection.kept_by_reviewer, selection.rejected_by_reviewer) == (1, 1)
    assert not [p for p in curated.out_dir.iterdir() if p.name.startswith(".selected")]  # no leftovers


def test_decisions_from_elsewhere_or_malformed_are_refused(curated, tmp_path):
    with pytest.raises(UserInputError, match="not in this curation's manifest"):
        apply_decisions(curated.out_dir, {"someone_else.png": "keep"})
    with pytest.raises(UserInputError, match="file is unreadable"):
        apply_decisions(curated.out_dir, {"bad/truncated.jpg": "keep"})
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(UserInputError, match="not a JSON decisions file"):
        load_decisions(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"decisions": {}}))
    with pytest.raises(UserInputError, match="not a decisions file exported by review.html"):
        load_decisions(tmp_path / "y.json")
    with pytest.raises(UserInputError, match="expected 'keep' or 'reject'"):
        load_decisions(_write_decisions(tmp_path / "z.json", {"a.png": "maybe"}))


def test_a_frame_changed_since_curation_is_not_copied(curated, frame_set):
    accepted = next(r for r in curated.records if r.verdict == "accepted")
    with open(accepted.path, "ab") as handle:
        handle.write(b"edited")
    with pytest.raises(UserInputError, match="changed since curation"):
        apply_decisions(curated.out_dir)
    assert not (curated.out_dir / "selected").exists()


def test_cli_apply_prints_the_count(curated, tmp_path, capsys):
    accepted = [r.relative_path for r in curated.records if r.verdict == "accepted"]
    decisions = _write_decisions(tmp_path / "d.json", {accepted[0]: "reject"}, curated)
    assert main(["curate", "apply", str(curated.out_dir), "--decisions", str(decisions)]) == 0
    assert f"copied {len(accepted) - 1} frames" in capsys.readouterr().out
    assert main(["curate", "apply", str(tmp_path / "nothing_here")]) == 2
