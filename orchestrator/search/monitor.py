"""``lora-pipeline search status OUTPUT``: where a search stands, read from its files only.

Trials by outcome, the best so far, each trial's last validation loss when its run had a validation
split, and for each running trial its epoch and last loss (from the run's ``run.json``), so that ``monitor_hyperparam_optuna.sh`` works while the search runs in tmux
and without touching the study's database.
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.search.gpu_time import phase_summary, phase_table
from orchestrator.search.results import RESULTS_FILE
from orchestrator.search.vocabulary import PAUSED, RUNNING, WAITING


def running_trial_progress(directory: Path) -> str:
    """``epoch 7/16, loss 0.0831`` from the trial's run record (or the simulator's progress file)."""
    run_json = directory / "run" / "run.json"
    if run_json.is_file():
        from orchestrator.runner import load_run_record

        try:
            record = load_run_record(directory / "run")
        except Exception as error:  # a record being replaced right now: say so, try again next time
            return f"run record unreadable ({type(error).__name__})"
        total = record.summary.get("epochs") or "?"
        loss = record.last_loss
        loss_text = f", loss {loss['avr_loss']:.4f}" if loss and loss.get("avr_loss") is not None else ""
        session = f", tmux {record.tmux_session}" if record.tmux_session else ""
        validation = record.validation_losses[-1] if record.validation_losses else None
        validation_text = (f", val loss {validation['loss']:.4g} (epoch {validation['epoch']})"
                           if validation else "")
        return f"epoch {record.current_epoch}/{total}{loss_text}{validation_text} ({record.status}{session})"
    simulated = directory / "simulated_run.json"
    if simulated.is_file():
        try:
            progress = json.loads(simulated.read_text())
        except ValueError:
            return "starting"
        return f"epoch {progress['epochs_done']} (simulated)"
    return "starting"


def status_lines(output: Path) -> list[str]:
    from orchestrator.search.results import load_results

    path = output / RESULTS_FILE
    if output.is_dir() and not path.exists():  # a search that has not written its first results yet
        return [f"no {RESULTS_FILE} in {output} yet (has the search started?)"]
    results = load_results(output)
    counts = ", ".join(f"{name} {count}" for name, count in sorted(results["counts"].items()))
    lines = [
        f"study {results['study_name']}: {results['counted_trials']}/{results['target_trials']} trials "
        f"({counts}); GPU time {results['gpu_hours']:.1f} h; updated {results['updated_at']}",
    ]
    best = results.get("best")
    if best:
        lines.append(f"best so far: trial {best['number']} score {best['value']:.4f} at epoch {best['best_epoch']}")
    checkpoint = results.get("best_checkpoint")
    if checkpoint:
        lines.append(f"best checkpoint so far: trial {checkpoint['number']} epoch {checkpoint['epoch']} score "
                     f"{checkpoint['score']:.4f} ({checkpoint['phase']}): {checkpoint['checkpoint']}")
    spent = phase_summary(phase_table(results["trials"]))
    if spent:  # a scheduled search: where its GPU-hours went (gpu_time.py)
        lines.append(spent)
    for entry in results["trials"]:  # a scheduled search's runs: where each stands (scheduled.py)
        if entry.get("phase") in ("paused", "resumed", "training", "evicted"):
            score = f", best {entry['best_score']:.4f} at epoch {entry['best_epoch']}" \
                if entry.get("best_score") is not None else ""
            where = {"paused": f" at epoch {entry['paused_at']}",
                     "evicted": f" (state evicted at epoch {entry['paused_at']}: final)"}.get(entry["phase"], "")
            lines.append(f"{entry['phase']}: trial {entry['number']}{where}{score}, "
                         f"{len(entry.get('segments') or [])} stretch(es) trained")
    finished = [entry for entry in results["trials"] if entry.get("last_validation_loss")
                and entry["outcome"] not in (RUNNING, WAITING, PAUSED)]
    for entry in finished:  # only trials whose run validated: a study without validation prints as before
        last = entry["last_validation_loss"]
        score = f"score {entry['best_score']:.4f}" if entry.get("best_score") is not None else "no score"
        lines.append(f"trial {entry['number']} {entry['outcome']}: {score}, "
                     f"last val loss {last['loss']:.4g} at epoch {last['epoch']}")
    for entry in results["trials"]:
        if entry["outcome"] != RUNNING or not entry.get("directory"):
            continue
        scores = entry.get("epoch_scores") or {}
        last = f", last score {scores[max(scores, key=int)]:.4f} at epoch {max(scores, key=int)}" if scores else ""
        lines.append(f"running: trial {entry['number']} {running_trial_progress(Path(entry['directory']))}{last}")
    return lines
