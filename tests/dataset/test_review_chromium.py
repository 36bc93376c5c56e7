"""review.html in a real browser: clicks toggle keep/reject and the exported file drives `curate apply`."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.dataset.config import CurationConfig, IdentitySettings
from orchestrator.dataset.curate import curate
from tests.crop.conftest import TruthDetector, palette_embed

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
CONFIG = replace(CurationConfig(), identity=IdentitySettings(threshold=0.985, rule="max", borderline_margin=0.2))

# Appended to a copy of the page: real clicks through the page's own handlers, then the export button;
# the exported JSON is copied into an element so that --dump-dom shows it.
_HARNESS = """
<script>
const all = Array.from(document.querySelectorAll('.card'));
const firstAccepted = all.find(c => c.dataset.default === 'keep');
const firstBorderline = all.find(c => c.dataset.default === 'reject');
firstAccepted.click();
firstBorderline.click();
firstBorderline.click();
firstBorderline.click();
document.getElementById('export').click();
const out = document.createElement('pre');
out.id = 'captured';
out.textContent = document.getElementById('decisions-output').value;
document.body.appendChild(out);
document.body.dataset.toggled = [firstAccepted.dataset.id, firstBorderline.dataset.id].join('|');
const showSelect = document.getElementById('filter');
showSelect.value = 'borderline';
showSelect.dispatchEvent(new Event('change'));
document.body.dataset.visible = all.filter(c => !c.classList.contains('hidden')).length;
</script>
"""


def _chromium(tmp_path: Path) -> list[str]:
    return [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]


@pytest.mark.chromium
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_clicks_toggle_and_export_feeds_curate_apply(frame_set, tiny_encoder, tmp_path):
    result = curate(frame_set.frames, frame_set.references, tmp_path / "out", CONFIG, encoder=tiny_encoder,
                    cache_dir=tmp_path / "cache", progress=False)
    page = (result.out_dir / "review.html").read_text()
    harness_page = result.out_dir / "review_harness.html"
    harness_page.write_text(page.replace("</body>", _HARNESS + "</body>"))

    dom = subprocess.run([*_chromium(tmp_path), "--dump-dom", harness_page.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    toggled = re.search(r'data-toggled="([^"]*)"', dom).group(1).split("|")
    accepted_id, borderline_id = (html.unescape(t) for t in toggled)
    shown = [r for r in result.records if r.verdict in ("accepted", "borderline")]
    assert dom.count('class="card') == len(shown)
    assert re.search(r'id="kept-count">(\d+)<', dom).group(1) == str(
        sum(r.verdict == "accepted" for r in result.records))  # one dropped, one rescued
    assert re.search(r'id="rescued-count">(\d+)<', dom).group(1) == "1"
    assert re.search(r'data-visible="(\d+)"', dom).group(1) == str(sum(r.verdict == "borderline" for r in shown))
    exported = json.loads(html.unescape(re.search(r'<pre id="captured">(.*?)</pre>', dom, re.S).group(1)))
    assert exported["decisions"][accepted_id] == "reject"
    assert exported["decisions"][borderline_id] == "keep"
    assert len(exported["decisions"]) == len(shown)

    decisions = tmp_path / "decisions.json"
    decisions.write_text(json.dumps(exported))
    assert main(["curate", "apply", str(result.out_dir), "--decisions", str(decisions)]) == 0
    selected = {p.name for p in (result.out_dir / "selected").iterdir()}
    expected = {Path(r.relative_path).name for r in result.records if r.verdict == "accepted"}
    assert selected == (expected - {Path(accepted_id).name}) | {Path(borderline_id).name}


@pytest.mark.chromium
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_page_renders_thumbnails(frame_set, tiny_encoder, tmp_path):
    from PIL import Image

    result = curate(frame_set.frames, frame_set.references, tmp_path / "out", CONFIG, encoder=tiny_encoder,
                    cache_dir=tmp_path / "cache", progress=False)
    shot = tmp_path / "shot.png"
    subprocess.run([*_chromium(tmp_path), "--window-size=1100,900", f"--screenshot={shot}",
                    (result.out_dir / "review.html").as_uri()], capture_output=True, timeout=120, check=True)
    import numpy as np

    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert (saturation > 60).mean() > 0.03  # colourful scene thumbnails drew on the dark page


# Where each overlay box lands on its source-frame thumbnail, as fractions of the drawn image.
_BOX_HARNESS = """
<script>
const found = {};
document.querySelectorAll('.card').forEach(card => {
  const origin = card.querySelector('.origin');
  if (!origin) return;
  const image = origin.querySelector('img').getBoundingClientRect();
  const boxes = {};
  origin.querySelectorAll('rect').forEach(rect => {
    const r = rect.getBoundingClientRect();
    boxes[rect.getAttribute('class')] = [(r.left - image.left) / image.width, (r.top - image.top) / image.height,
                                         (r.right - image.left) / image.width, (r.bottom - image.top) / image.height];
  });
  found[card.dataset.id] = boxes;
});
const out = document.createElement('pre');
out.id = 'boxes';
out.textContent = JSON.stringify(found);
document.body.appendChild(out);
</script>
"""


@pytest.mark.chromium
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_a_crop_card_shows_the_box_on_its_source_frame(film_frames, tiny_encoder, tmp_path):
    from orchestrator.crop import CropConfig, crop_frames
    from orchestrator.dataset.config import QualityThresholds

    crops = crop_frames(film_frames["frames_dir"], film_frames["references"], tmp_path / "crops",
                        detector=TruthDetector(film_frames["by_pixels"]), embed=palette_embed,
                        config=CropConfig(identity_threshold=0.5, min_side=96), progress=False)
    config = replace(CurationConfig(), quality=QualityThresholds(min_side=64),
                     identity=IdentitySettings(threshold=-1.0, rule="max", borderline_margin=0.0))
    result = curate(tmp_path / "crops", film_frames["references"], tmp_path / "out", config, encoder=tiny_encoder,
                    cache_dir=tmp_path / "cache", progress=False)
    by_file = {r["file"]: r for r in crops.kept}
    shown = [r for r in result.records if r.verdict == "accepted"]
    assert shown and all(r.origin["box"] == by_file[r.relative_path]["box"] for r in shown)

    page = (result.out_dir / "review.html").read_text()
    assert page.count('class="character-box"') == page.count('class="crop-box"') == len(shown)
    harness_page = result.out_dir / "review_boxes.html"
    harness_page.write_text(page.replace("</body>", _BOX_HARNESS + "</body>"))
    dom = subprocess.run([*_chromium(tmp_path), "--window-size=1100,900", "--dump-dom", harness_page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    drawn = json.loads(html.unescape(re.search(r'<pre id="boxes">(.*?)</pre>', dom, re.S).group(1)))
    assert set(drawn) == {r.relative_path for r in shown}
    for record in shown:
        width, height = record.origin["frame_width"], record.origin["frame_height"]
        for css_class, box in (("character-box", record.origin["box"]), ("crop-box", record.origin["crop_box"])):
            expected = [box[0] / width, box[1] / height, box[2] / width, box[3] / height]
            # The stroke straddles the box line: a 2 px stroke on a ~190 px thumbnail is about 1 %.
            assert drawn[record.relative_path][css_class] == pytest.approx(expected, abs=0.015), css_class
