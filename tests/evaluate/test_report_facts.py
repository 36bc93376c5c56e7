"""The report states the facts behind the choice: raw beside calibrated values, floor and ceiling
per metric (and the fallback), each gate's verdict per epoch, the interval of each total and the
reason. Read back by parsing the HTML, against scores.json / best.json of the same run."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from orchestrator.evaluate import evaluate_run, write_report
from orchestrator.evaluate._report_tables import fmt, interval_text
from tests.evaluate.fake_run import make_run


class _Cells(HTMLParser):
    """Text of every <td> by (table class, row data-epoch or data-metric, cell data-metric/data-gate)."""

    def __init__(self) -> None:
        super().__init__()
        self.table: str | None = None
        self.row: str | None = None
        self.cell: str | None = None
        self.spans: list[str] = []
        self.cells: dict[tuple[str, str, str], str] = {}
        self.span_text: dict[tuple[str, str, str, str], str] = {}
        self.by_class: dict[str, list[str]] = {}
        self._open: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.table = a.get("class", "")
        elif tag == "tr":
            self.row = a.get("data-epoch") or a.get("data-metric") or ""
            self.index = 0
        elif tag == "td":
            self.index += 1
            self.cell = a.get("data-metric") or a.get("data-gate") or a.get("class") or str(self.index)
            self.cells[(self.table, self.row, self.cell)] = ""
        if tag not in ("br", "meta"):
            self._open.append((tag, a.get("class", "")))

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()[0] == tag:
                break
        if tag == "td":
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cells[(self.table, self.row, self.cell)] += data
        for _, css in self._open:
            for name in css.split():
                self.by_class.setdefault(name, []).append(data)


def _parsed(html: str) -> _Cells:
    parser = _Cells()
    parser.feed(html)
    return parser


def _record(last: int, bad_from_step: int) -> dict:
    return {"status": "succeeded", "output_name": "luca", "argv": ["python", "train_network.py"],
            "summary": {"epochs": last},
            "epochs": [{"epoch": e, "started_at": "", "wall_seconds": 10.0} for e in range(1, last + 1)],
            "losses": [{"step": s, "epoch": 1 + s // 3,
                        "avr_loss": float("inf") if s >= bad_from_step else 0.2 - 0.01 * s, "s_per_it": 1.0}
                       for s in range(1, 3 * last + 1)],
            "validation_losses": [], "checkpoints": {}, "samples": {}}


def test_report_shows_raw_calibrated_floor_ceiling_gates_interval_and_reason(tmp_path: Path, tiny_encoder):
    # Epoch 0 is the base model's sample set (sample_at_first); the loss goes inf in epoch 6.
    run = make_run(tmp_path, epochs=(0, 2, 4, 6), record=_record(6, bad_from_step=15))
    evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    scores = json.loads((run.run_dir / "evaluation/scores.json").read_text())
    best = json.loads((run.run_dir / "evaluation/best.json").read_text())
    page = _parsed(write_report(run.run_dir).read_text())

    epochs = scores["epochs"]
    assert "6" in epochs and best["epoch"] != 6
    for epoch, data in epochs.items():
        for metric, calibrated in data["metrics"].items():
            cell = page.cells[("scores epochs", epoch, metric)]
            raw_key = {"identity": "identity_similarity", "character_variety": "character_spread",
                       "style_consistency": "style_raw", "prompt_adherence": "clip_t",
                       "technical_quality": "technical"}[metric]
            assert cell == f"{fmt(data['raw'].get(raw_key))} → {fmt(calibrated)}", (epoch, metric, cell)
        assert page.cells[("scores epochs", epoch, "total")] == fmt(data["total"])
        assert page.cells[("scores epochs", epoch, "interval")] == interval_text(data["interval"])
        assert data["interval"] is not None
        for verdict in data["gates"]:
            text = page.cells[("gates", epoch, verdict["gate"])]
            assert text.startswith("pass" if verdict["passed"] else "FAIL"), (epoch, verdict, text)
            assert verdict["detail"] in text
    loss_verdict = next(v for v in epochs["6"]["gates"] if v["gate"] == "loss")
    assert not loss_verdict["passed"]
    assert page.cells[("scores epochs", "6", "gates")] .startswith("failed: ") and \
        "loss" in page.cells[("scores epochs", "6", "gates")]

    for metric, data in scores["calibration"]["metrics"].items():
        assert page.cells[("calibration", metric, "floor")] == fmt(data["floor"])
        assert page.cells[("calibration", metric, "ceiling")] == fmt(data["ceiling"])
        fallback = page.cells[("calibration", metric, "fallback")]
        assert fallback == (data["fallback"] or "none: both measured")

    assert "".join(page.by_class["reason"]) == best["reason"]
    assert "".join(page.by_class["chosen"]) == str(best["epoch"])
    assert "".join(page.by_class["leader"]) == str(best["leader"])
    excluded = "".join(page.by_class["excluded"])
    assert "epoch 6 not eligible: failed loss" in excluded


def test_report_names_the_fallback_when_a_calibration_end_is_missing(tmp_path: Path, tiny_encoder):
    # No epoch-0 samples: every floor is a fallback, and the report says which.
    run = make_run(tmp_path, epochs=(2, 4))
    evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    scores = json.loads((run.run_dir / "evaluation/scores.json").read_text())
    page = _parsed(write_report(run.run_dir).read_text())
    fallbacks = {m: d["fallback"] for m, d in scores["calibration"]["metrics"].items() if d["fallback"]}
    assert fallbacks, "no epoch-0 samples must leave a fallback"
    for metric, text in fallbacks.items():
        assert page.cells[("calibration", metric, "fallback")] == text


def test_evaluate_cli_table_shows_raw_and_calibrated_interval_gates_and_calibration(tmp_path: Path, capsys,
                                                                                  monkeypatch):
    from orchestrator.cli import main
    from orchestrator.evaluate import cli

    monkeypatch.setattr(cli.console, "width", 400)
    run = make_run(tmp_path, epochs=(0, 2, 4), record=_record(4, bad_from_step=10))
    argv = ["evaluate", str(run.run_dir), "--references", str(run.references), "--clip-model", "tiny-clip",
            "--clip-weights", "random", "--cache-dir", str(tmp_path / "c"), "--no-report"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    scores = json.loads((run.run_dir / "evaluation/scores.json").read_text())
    best = json.loads((run.run_dir / "evaluation/best.json").read_text())
    data = scores["epochs"]["2"]
    assert f"{fmt(data['raw']['identity_similarity'])} → {fmt(data['metrics']['identity'])}" in out
    assert f"{fmt(data['total'])} [{data['interval'][0]:.3f}, {data['interval'][1]:.3f}]" in out
    assert "failed: loss" in out and "gate loss failed" in out
    floor = scores["calibration"]["metrics"]["identity"]["floor"]
    assert "calibration (" in out and f"{floor:.3f}" in out
    assert best["reason"][:60] in out
