"""``--state-budget``: the paused runs' saved states stay within it; over it the least promising paused run
loses its state and becomes final at its best so far ("state evicted" in the study and the results)."""

from __future__ import annotations

from pathlib import Path

from optuna.trial import TrialState

from orchestrator.search import vocabulary as vocab
from orchestrator.search.results import build_results
from orchestrator.search.scheduled import is_paused
from orchestrator.search.simulator import STATE_BYTES, SimulatedExecutor
from orchestrator.search.study import Search, SearchSettings
from orchestrator.search.surfaces import SURFACE_FAMILIES
from tests.search.test_scheduler import BASE, SPACE


class CountsStates(SimulatedExecutor):
    """Records, whenever a segment starts, how many runs keep a saved state (paused ones, and the run itself
    when it resumes)."""

    def run(self, request, report):  # type: ignore[no-untyped-def]
        self.kept = [*getattr(self, "kept", []), len(self.saved_states)]
        return super().run(request, report)


def budget_search(tmp_path: Path, executor: SimulatedExecutor, budget: int | None, *, trials: int = 8) -> Search:
    settings = SearchSettings(space=SPACE, base_config=BASE, output=tmp_path, trials=trials, seed=3,
                              storage_url="memory", pruner="none", scheduler="first-epoch", write_files=False,
                              state_budget_bytes=budget)
    return Search(settings, executor)


def test_over_the_budget_the_least_promising_paused_run_is_evicted_and_final(tmp_path) -> None:
    executor = CountsStates(surface=SURFACE_FAMILIES["quadratic"](seed=4), record_progress=False)
    search = budget_search(tmp_path, executor, budget=2 * STATE_BYTES + STATE_BYTES // 2)
    search.run()
    assert max(executor.kept) <= 2, executor.kept
    trials = search.study.get_trials(deepcopy=False)
    evicted = [t for t in trials if t.user_attrs.get(vocab.PHASE_ATTR) == vocab.PHASE_EVICTED]
    assert evicted, "eight first epochs paused within room for two states: some had to go"
    for trial in evicted:
        assert trial.state == TrialState.COMPLETE and trial.value == max(trial.intermediate_values.values())
        assert ("lora_hyperparameter_search", trial.number) not in executor.saved_states
    entries = build_results(trials, study_name="s", storage="x", target_trials=8)["trials"]
    reasons = [entry["reason"] for entry in entries if entry["phase"] == vocab.PHASE_EVICTED]
    assert reasons and all(reason.startswith("state evicted") for reason in reasons)
    assert not [t for t in trials if is_paused(t)]


def test_without_a_budget_no_run_is_evicted(tmp_path) -> None:
    executor = CountsStates(surface=SURFACE_FAMILIES["quadratic"](seed=4), record_progress=False)
    search = budget_search(tmp_path, executor, budget=None)
    search.run()
    assert max(executor.kept) > 2
    assert not [t for t in search.study.get_trials(deepcopy=False)
                if t.user_attrs.get(vocab.PHASE_ATTR) == vocab.PHASE_EVICTED]


def test_a_zero_budget_makes_every_pause_final(tmp_path) -> None:
    executor = CountsStates(surface=SURFACE_FAMILIES["quadratic"](seed=4), record_progress=False)
    search = budget_search(tmp_path, executor, budget=0, trials=4)
    search.run()
    trials = search.study.get_trials(deepcopy=False)
    assert all(len(t.user_attrs.get(vocab.SEGMENTS_ATTR) or []) <= 1 for t in trials), "nothing was resumed"
    assert {t.user_attrs.get(vocab.PHASE_ATTR) for t in trials if t.intermediate_values} <= \
        {vocab.PHASE_EVICTED, vocab.PHASE_FINISHED}
    assert executor.saved_states == {}
