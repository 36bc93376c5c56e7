"""The response-surface protocol: the loader's errors, our five families, and the simulator speaking only
the protocol (sd-scripts' sample epochs, validation loss through the report callback)."""

from __future__ import annotations

import statistics
import textwrap

import pytest

from orchestrator.common.errors import UserInputError
from orchestrator.search.executor import TrialRequest
from orchestrator.search.simulator import SimulatedExecutor
from orchestrator.search.surface import ResponseSurface, load_surface, make_surface, missing_members
from orchestrator.search.surfaces import SURFACE_FAMILIES, trial_sample_epochs

GOOD = {"learning_rate": 8.5e-5, "network_dim": 128, "network_alpha": 64, "max_train_epochs": 24,
        "sample_every_n_epochs": 2, "lr_scheduler": "cosine_with_restarts", "gradient_accumulation_steps": 1,
        "lr_warmup_steps": 100, "text_encoder_lr": 5e-5}
PLUGIN = textwrap.dedent('''
    class Flat:
        """Every config scores 0.5 + 0.01 * epoch; the validation loss falls as 1 / epoch."""
        seconds_per_evaluation = 10.0

        def __init__(self, seed):
            self.seed = seed

        def observe(self, flat, epoch):
            return 0.5 + 0.01 * epoch

        def validation_loss(self, flat, epoch):
            return 1.0 / epoch

        def best_sampled_score(self, flat):
            return 0.5 + 0.01 * int(flat.get("max_train_epochs") or 10)

        def epoch_cost(self, flat):
            return 100.0

    class NoCost:
        seconds_per_evaluation = 1.0
        def __init__(self, seed): ...
        def observe(self, flat, epoch): return 0.0
        def validation_loss(self, flat, epoch): return 0.0
        def best_sampled_score(self, flat): return 0.0

    class NoSeed:
        seconds_per_evaluation = 1.0
        def observe(self, flat, epoch): return 0.0
        def validation_loss(self, flat, epoch): return 0.0
        def best_sampled_score(self, flat): return 0.0
        def epoch_cost(self, flat): return 1.0
''')


@pytest.fixture
def plugin_dir(tmp_path):
    (tmp_path / "my_surfaces.py").write_text(PLUGIN)
    return tmp_path


@pytest.mark.parametrize("name", sorted(SURFACE_FAMILIES))
def test_each_family_satisfies_the_protocol_and_is_deterministic(name) -> None:
    surface = make_surface(SURFACE_FAMILIES[name], seed=3)
    assert isinstance(surface, ResponseSurface) and missing_members(surface) == []
    assert surface.observe(GOOD, 8) == surface.observe(GOOD, 8)
    assert surface.validation_loss(GOOD, 8) == surface.validation_loss(GOOD, 8)
    assert surface.epoch_cost(GOOD) > 0 and surface.seconds_per_evaluation > 0
    # The best sampled score is that of one of the epochs sd-scripts samples, without noise.
    assert surface.best_sampled_score(GOOD) == max(surface.score(GOOD, e) for e in trial_sample_epochs(GOOD))
    assert make_surface(SURFACE_FAMILIES[name], seed=4).best_sampled_score(GOOD) != surface.best_sampled_score(GOOD)


def test_the_noisy_family_observes_with_at_least_0_01_noise() -> None:
    surface = make_surface(SURFACE_FAMILIES["noisy"], seed=0)
    flats = [{**GOOD, "learning_rate": 7e-5 + 1e-6 * i} for i in range(40)]
    errors = [surface.observe(flat, 10) - surface.score(flat, 10) for flat in flats]
    assert statistics.pstdev(errors) >= 0.01


def test_late_learners_win_at_the_end_but_trail_early() -> None:
    surface = make_surface(SURFACE_FAMILIES["late"], seed=0)
    slow = {**GOOD, "learning_rate": 7.5e-5, "lr_scheduler": "cosine"}
    fast = {**slow, "learning_rate": 1.1e-4}
    assert surface.score(slow, 6) < surface.score(fast, 6)
    assert surface.best_sampled_score(slow) > surface.best_sampled_score(fast)
    best_epoch = max(trial_sample_epochs(slow), key=lambda e: surface.score(slow, e))
    assert best_epoch >= 20  # the peak comes late in a 24-epoch run


def test_restarts_knock_the_score_down_only_under_cosine_with_restarts() -> None:
    surface = make_surface(SURFACE_FAMILIES["restarts"], seed=0)
    restarts, cosine = GOOD, {**GOOD, "lr_scheduler": "cosine"}
    assert surface.score(restarts, 8) - surface.score(restarts, 7) < 0  # the first of 3 cycles ends at 8
    assert surface.score(cosine, 8) - surface.score(cosine, 7) > 0


def test_the_loose_family_validation_loss_barely_tracks_the_score() -> None:
    def correlation(name: str) -> float:
        surface = make_surface(SURFACE_FAMILIES[name], seed=1)
        flats = [{**GOOD, "learning_rate": lr, "network_dim": dim, "network_alpha": dim // 2}
                 for lr in (6.5e-5, 8.5e-5, 1.1e-4) for dim in (64, 128, 256)]
        pairs = [(surface.score(f, e), surface.validation_loss(f, e)) for f in flats for e in (12, 16, 20, 24)]
        return statistics.correlation(*zip(*pairs, strict=True))

    assert correlation("quadratic") < -0.95  # tight: lower loss, higher score
    assert abs(correlation("loose")) < 0.7


def test_the_loader_names_what_is_wrong(plugin_dir) -> None:
    with pytest.raises(UserInputError, match="not MODULE:CLASS"):
        load_surface("my_surfaces")
    with pytest.raises(UserInputError, match="surface module 'absent_surfaces' not found"):
        load_surface("absent_surfaces:Flat", plugin_dir)
    with pytest.raises(UserInputError, match=r"has no class 'Missing' \(classes in it: Flat, NoCost, NoSeed\)"):
        load_surface("my_surfaces:Missing", plugin_dir)
    with pytest.raises(UserInputError, match="lacks protocol members epoch_cost"):
        load_surface("my_surfaces:NoCost", plugin_dir)
    with pytest.raises(UserInputError, match=r"cannot be built as NoSeed\(seed=0\)"):
        make_surface(load_surface("my_surfaces:NoSeed", plugin_dir), 0)
    with pytest.raises(UserInputError, match="surface path is not a folder"):
        load_surface("my_surfaces:Flat", plugin_dir / "nowhere")
    assert make_surface(load_surface("my_surfaces:Flat", plugin_dir), 0).observe({}, 2) == pytest.approx(0.52)


def test_the_simulator_scores_sd_scripts_sample_epochs_and_reports_validation_loss(plugin_dir, tmp_path) -> None:
    surface = make_surface(load_surface("my_surfaces:Flat", plugin_dir), 0)
    reported = []

    def report(epoch: int, score: float, validation_loss: float | None = None) -> bool:
        reported.append((epoch, validation_loss))
        return False

    config = {"training": {"max_train_epochs": 7, "sample_every_n_epochs": 2}}
    request = TrialRequest(0, tmp_path / "trial", config, {}, {})
    outcome = SimulatedExecutor(surface=surface, record_progress=False).run(request, report)
    # 7 is not a multiple of 2: sd-scripts draws no sample images at the last epoch.
    assert sorted(outcome.epoch_scores) == [2, 4, 6]
    assert reported == [(2, 0.5), (4, 0.25), (6, 1 / 6)]
    assert outcome.gpu_seconds == pytest.approx(7 * 100.0 + 3 * 10.0)
