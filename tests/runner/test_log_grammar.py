"""The log grammar against the real sd-scripts transcripts (pinned commit)."""

from __future__ import annotations

import random

import pytest

from orchestrator.kohya.log_grammar import (
    CheckpointSaved,
    EpochStarted,
    Failure,
    Finished,
    LogParser,
    RunSummary,
    SamplesGenerated,
    StateSaved,
    StepProgress,
    ValidationLoss,
    parse_text,
)
from tests.runner import transcripts


def last_loss_per_step(events) -> dict[int, float]:
    return {e.step: e.avr_loss for e in events if isinstance(e, StepProgress)}


def last_validation_per_epoch(events) -> dict[int, float]:
    return {e.epoch: e.loss for e in events if isinstance(e, ValidationLoss)}


def skeleton(events) -> list[tuple]:
    """Events without the measured numbers (losses, rates), for comparing two logs of one run shape."""
    shape = []
    for event in events:
        if isinstance(event, (StepProgress, ValidationLoss)):
            continue
        if isinstance(event, CheckpointSaved):
            shape.append(("checkpoint", event.epoch, event.path.rsplit("/", 1)[-1], event.is_final))
        else:
            shape.append(event)
    return shape


def test_rich_run_gives_summary_epochs_checkpoints_samples_states_and_finish():
    events = parse_text(transcripts.run_a_rich())
    assert events[0] == RunSummary(images_x_repeats=3, batches_per_epoch=3, epochs=2, grad_accum=1, total_steps=6)
    assert skeleton(events) == [
        events[0],
        EpochStarted(1, 2),
        ("checkpoint", 1, "tiny-000001.safetensors", False),
        StateSaved(1, False),
        SamplesGenerated(1, 3),
        EpochStarted(2, 2),
        SamplesGenerated(2, 6),  # the rich record is wrapped over two lines
        StateSaved(2, True),
        ("checkpoint", 2, "tiny.safetensors", True),
        Finished(),
    ]


def test_each_step_keeps_its_fresh_loss_and_rate():
    events = parse_text(transcripts.run_a_rich())
    assert last_loss_per_step(events) == {1: 1.06, 2: 1.09, 3: 1.15, 4: 1.18, 5: 1.23, 6: 1.21}
    step_two = [e for e in events if isinstance(e, StepProgress) and e.step == 2][-1]
    assert step_two.s_per_it == pytest.approx(2.97)
    assert step_two.epoch == 1


def test_validation_loss_is_the_completed_bar_of_each_epoch_even_before_a_glued_log_line():
    # Epoch 2's last bar ends in ESC[A ESC[A followed by a rich log line on the same physical line.
    assert last_validation_per_epoch(parse_text(transcripts.run_a_rich())) == {1: 1.07, 2: 1.06}


@pytest.mark.parametrize("run", ["run_a_rich", "run_b_simple", "run_c_resume", "sdxl_run"])
def test_each_validated_epoch_gives_one_loss_never_a_stale_drawing_or_the_old_bar_closing(run):
    # The last pass is drawn with the loss before it (1.08) and then the fresh one (1.07); epoch 1's bar
    # re-draws itself (1.07) under epoch 2's first drawing: neither is a loss of its own.
    events = [e for e in parse_text(getattr(transcripts, run)()) if isinstance(e, (ValidationLoss, EpochStarted))]
    validations = [e for e in events if isinstance(e, ValidationLoss)]
    assert len(validations) == len({e.epoch for e in validations}) == len([e for e in events
                                                                          if isinstance(e, EpochStarted)])
    if run == "run_a_rich":
        assert validations == [ValidationLoss(1, 1.07), ValidationLoss(2, 1.06)]


def test_simple_and_rich_logging_of_the_same_run_give_the_same_events():
    rich, simple = parse_text(transcripts.run_a_rich()), parse_text(transcripts.run_b_simple())
    assert [e if not isinstance(e, tuple) else e[:3] for e in skeleton(simple)] == \
           [e if not isinstance(e, tuple) else e[:3] for e in skeleton(rich)]
    assert last_loss_per_step(simple) == {1: 1.06, 2: 1.09, 3: 1.16, 4: 1.17, 5: 1.21, 6: 1.2}


def test_resumed_run_starts_at_the_saved_epoch_and_counts_its_own_steps_from_one():
    events = parse_text(transcripts.run_c_resume())
    assert [e for e in events if isinstance(e, EpochStarted)] == [EpochStarted(2, 3), EpochStarted(3, 3)]
    assert sorted(last_loss_per_step(events)) == [1, 2, 3, 4, 5, 6]
    assert isinstance(events[-1], Finished)


def test_single_epoch_run_has_only_the_final_checkpoint():
    events = parse_text(transcripts.run_d_single_epoch())
    checkpoints = [e for e in events if isinstance(e, CheckpointSaved)]
    assert [(c.epoch, c.is_final) for c in checkpoints] == [(1, True)]


def test_sdxl_run_is_read_the_same_way():
    events = parse_text(transcripts.sdxl_run())
    assert [e.path.rsplit("/", 1)[-1] for e in events if isinstance(e, CheckpointSaved)] == \
           ["tinyxl-000001.safetensors", "tinyxl.safetensors"]
    assert last_validation_per_epoch(events) == {1: 1.0, 2: 1.0}
    assert isinstance(events[-1], Finished)


@pytest.mark.parametrize(("case", "cause", "message_start"), [
    ("t_unknown_ds", "traceback", "voluptuous.error.MultipleInvalid: extra keys not allowed"),
    ("t_missing_plus_unknown", "no_data", "No data found."),
    ("t_xformers", "import_error", "ImportError: No xformers"),
    ("cli_unknown", "unknown", "train_network.py: error: unrecognized arguments: --no_such_flag"),
])
def test_error_cases_of_the_transcript_give_their_cause(case, cause, message_start):
    parser = LogParser()
    events = parser.feed(transcripts.error_case(case)) + parser.close()
    failures = [e for e in events if isinstance(e, Failure)]
    assert failures, f"no failure found in {case}"
    assert parser.failure.cause == cause
    assert parser.failure.message.startswith(message_start)
    assert not parser.finished


def test_traceback_failure_keeps_the_lines_that_show_it():
    parser = LogParser()
    parser.feed(transcripts.error_case("t_unknown_ds"))
    parser.close()
    assert parser.failure.lines[0] == "Traceback (most recent call last):"
    assert "bogus_key" in parser.failure.lines[-1]


def test_nan_loss_is_a_failure_at_the_step_it_appears():
    parser = LogParser()
    events = parser.feed("epoch 1/1\n\rsteps:  50%|█████     | 1/2 [00:01<00:01,  1.00s/it, avr_loss=nan]"
                         "\rsteps:  50%|█████     | 1/2 [00:01<00:01,  1.00s/it, avr_loss=inf]\n")
    assert parser.failure.cause == "nan_loss"
    assert any(isinstance(e, Failure) and "step 1" in e.message for e in events)


def test_cuda_oom_inside_a_traceback_outranks_the_plain_traceback():
    text = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.\n")
    events = parse_text(text)
    assert [e.cause for e in events if isinstance(e, Failure)] == ["cuda_oom"]


def test_a_traceback_cut_off_by_the_end_of_the_stream_is_still_a_failure():
    events = parse_text("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n")
    assert [e.cause for e in events if isinstance(e, Failure)] == ["traceback"]


def test_feeding_in_small_random_chunks_gives_the_same_events_as_the_whole_log():
    text = transcripts.run_a_rich() + transcripts.error_case("t_xformers")
    whole = parse_text(text)
    rng = random.Random(7)
    parser = LogParser()
    chunked, position = [], 0
    while position < len(text):
        size = rng.randint(1, 9)
        chunked += parser.feed(text[position: position + size])
        position += size
    chunked += parser.close()
    assert chunked == whole


def test_ansi_colours_do_not_hide_lines():
    events = parse_text("\x1b[32mepoch 1/3\x1b[0m\n\x1b[1mmodel saved.\x1b[0m\n")
    assert events == [EpochStarted(1, 3), Finished()]


def test_a_bar_still_empty_at_zero_percent_is_read():
    # A long run's first steps draw "  0%|          |": the bar itself holds "| ".
    events = parse_text("epoch 1/9\n\rsteps:   0%|          | 1/1000 [00:01<16:39,  1.00s/it, avr_loss=0.123]"
                        "\rsteps:   0%|          | 2/1000 [00:02<16:38,  1.00s/it, avr_loss=0.121]\n")
    assert [(e.step, e.avr_loss) for e in events if isinstance(e, StepProgress)] == [(1, 0.123), (2, 0.121)]


def test_a_line_printed_right_after_a_bar_drawing_is_still_read():
    events = parse_text("epoch 1/1\n\rsteps: 100%|██████████| 2/2 [00:02<00:00,  1.00s/it, avr_loss=0.5]"
                        "saving checkpoint: /out/tiny.safetensors\nmodel saved.\n")
    assert [type(e).__name__ for e in events] == ["EpochStarted", "StepProgress", "CheckpointSaved", "Finished"]


def test_a_long_backlog_on_one_line_is_sampled_with_each_reported_loss_its_own_steps():
    # Catching up on a long log: 3000 steps drawn twice each (stale loss, then fresh) on one line.
    drawings = []
    for step in range(1, 3001):
        bar = f"\rsteps:  10%|█         | {step}/30000 [00:01<00:09,  1.00s/it"
        drawings.append(f"{bar}, avr_loss={step - 1}]{bar}, avr_loss={step}]")
    events = parse_text("epoch 1/10\n" + "".join(drawings) + "\nepoch 2/10\n")
    steps = [e for e in events if isinstance(e, StepProgress)]
    assert 20 <= len(steps) <= 400
    assert all(e.avr_loss == e.step for e in steps)  # never a stale loss under another step's number
    assert steps[-1].step == 3000 and isinstance(events[-1], EpochStarted)
    assert [e.step for e in steps] == sorted({e.step for e in steps})


def test_a_backlog_fed_in_chunks_still_reports_only_fresh_losses():
    drawings = []
    for step in range(1, 4001):
        bar = f"\rsteps:  10%|█         | {step}/40000 [00:01<00:09,  1.00s/it"
        drawings.append(f"{bar}, avr_loss={step - 1}]{bar}, avr_loss={step}]")
    text = "epoch 1/10\n" + "".join(drawings) + "\nmodel saved.\n"
    parser, events = LogParser(), []
    for start in range(0, len(text), 250_007):  # > _BULK_DRAWINGS per chunk
        events += parser.feed(text[start:start + 250_007])
    events += parser.close()
    steps = [e for e in events if isinstance(e, StepProgress)]
    assert all(e.avr_loss == e.step for e in steps) and steps[-1].step == 4000
    assert isinstance(events[-1], Finished)


@pytest.mark.parametrize("one_chunk", [False, True])
def test_the_nan_failure_names_the_first_step_whose_loss_was_nan(one_chunk):
    def drawing(step: int, loss: str | None) -> str:
        return f"steps:  50%|█████     | {step}/6 [00:06<00:06,  2.32s/it{f', avr_loss={loss}' if loss else ''}]\r"

    losses = {1: "1.1", 2: "1.0", 3: "nan", 4: "nan", 5: "nan"}
    chunks = []
    for step in range(1, 6):  # each step drawn twice: the previous step's loss, then its own
        chunks += [drawing(step, losses.get(step - 1)), drawing(step, losses[step])]
    parser = LogParser()
    events = [event for chunk in (["".join(chunks)] if one_chunk else chunks) for event in parser.feed(chunk)]
    events += parser.close()
    assert parser.failure.message == "loss became nan at step 3"
    assert [e.message for e in events if isinstance(e, Failure)] == ["loss became nan at step 3"]
