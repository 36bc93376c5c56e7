"""compare.html in a real browser: keys and clicks vote, export feeds `votes apply`, a reload keeps the
votes, and a votes file of another candidate set is refused."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.verdict import select_candidates, write_comparison_page

from .scored_run import make_scored_run, random_metric_rows

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
pytestmark = [pytest.mark.chromium,
              pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")]

# Appended to a copy of the page (same folder, so the images resolve): drives the page's own handlers,
# then copies what the test needs into elements that --dump-dom shows.
_CAPTURE = """
function capture(id, text) { const out = document.createElement('pre'); out.id = id; out.textContent = text;
  document.body.appendChild(out); }
function exported() { document.getElementById('export').click(); return document.getElementById('votes-output').value; }
"""
_VOTE = """
const shown = [];
function token() { return document.getElementById('pair').dataset.token; }
shown.push(token()); document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowLeft', bubbles: true}));
shown.push(token()); document.dispatchEvent(new KeyboardEvent('keydown', {key: 't', bubbles: true}));
shown.push(token()); document.getElementById('right-image').click();
shown.push(token()); document.querySelector('[data-vote="skip"]').click();
shown.push(token()); document.dispatchEvent(new KeyboardEvent('keydown', {key: 'd', bubbles: true}));
shown.push(token()); document.querySelector('[data-vote="left"]').click();
capture('shown', shown.join('|'));
capture('progress-text', document.getElementById('progress').textContent);
capture('images', [document.getElementById('left-image').getAttribute('src'),
                   document.getElementById('right-image').getAttribute('src')].join('|'));
capture('captured', exported());
"""
_AFTER_RELOAD = """
capture('progress-text', document.getElementById('progress').textContent);
capture('captured', exported());
"""
_IMPORT = """
const before = document.getElementById('progress').textContent;
document.getElementById('votes-input').value = FOREIGN;
document.getElementById('import').click();
capture('message-text', document.getElementById('message').textContent);
capture('progress-before', before);
capture('progress-after', document.getElementById('progress').textContent);
"""


def _chromium(profile: Path) -> list[str]:
    return [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}"]


def _run(page: Path, script: str, profile: Path, name: str) -> str:
    harness = page.parent / f"{name}.html"
    harness.write_text(page.read_text().replace("</body>", f"<script>{_CAPTURE}{script}</script></body>"))
    return subprocess.run([*_chromium(profile), "--dump-dom", harness.as_uri()], capture_output=True, text=True,
                          timeout=120, check=True).stdout


def _pre(dom: str, element: str) -> str:
    return html.unescape(re.search(rf'<pre id="{element}">(.*?)</pre>', dom, re.S).group(1))


@pytest.fixture
def page(tmp_path):
    run = make_scored_run(tmp_path / "run", random_metric_rows(4, 0))
    return write_comparison_page(select_candidates(run, top=4))


def test_keys_and_clicks_vote_and_the_export_feeds_votes_apply(page, tmp_path):
    dom = _run(page.page, _VOTE, tmp_path / "profile", "harness_vote")
    manifest = json.loads((page.page.parent / "manifest.json").read_text())
    order = [c["token"] for c in manifest["comparisons"]]
    shown = _pre(dom, "shown").split("|")
    assert shown == order[:6]  # one comparison after the other, in the page's order
    assert _pre(dom, "progress-text") == f"6 / {len(order)} judged (1 skipped)"
    left, right = _pre(dom, "images").split("|")
    assert left.startswith("images/") and (page.page.parent / left).is_file() and left != right
    exported = json.loads(_pre(dom, "captured"))
    choices = {v["id"]: v["choice"] for v in exported["votes"]}
    assert choices == dict(zip(shown, ["left", "tie", "right", "skip", "right", "left"], strict=True))
    assert exported["set_id"] == page.set_id

    votes = page.page.parent / "votes.json"
    votes.write_text(json.dumps(exported))
    assert main(["votes", "apply", str(votes), "--min-votes", "5", "--resamples", "20"]) == 0  # the checksum agrees
    verdict = json.loads((page.page.parent / "verdict.json").read_text())
    assert verdict["votes"] == 5 and verdict["skipped"] == 1


def test_a_reload_keeps_the_votes(page, tmp_path):
    profile = tmp_path / "profile"
    _run(page.page, _VOTE, profile, "harness_vote")
    dom = _run(page.page, _AFTER_RELOAD, profile, "harness_reload")
    assert _pre(dom, "progress-text").startswith("6 / ")
    assert len(json.loads(_pre(dom, "captured"))["votes"]) == 6


def test_a_votes_file_of_another_candidate_set_is_refused(page, tmp_path):
    other = make_scored_run(tmp_path / "other", random_metric_rows(3, 1))
    other_page = write_comparison_page(select_candidates(other, top=3))
    foreign_dom = _run(other_page.page, _VOTE, tmp_path / "profile_other", "harness_vote")
    foreign = _pre(foreign_dom, "captured")
    dom = _run(page.page, f"const FOREIGN = {json.dumps(foreign)};{_IMPORT}", tmp_path / "profile", "harness_import")
    assert "another set of candidates" in _pre(dom, "message-text")
    assert _pre(dom, "progress-before") == _pre(dom, "progress-after")
