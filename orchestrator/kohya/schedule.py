"""Which epochs of an sd-scripts run produce sample images and a validation loss (pinned commit 48d368fa).

Sample images, and so a score, exist only where sd-scripts draws them. ``train_network.py`` calls
``self.sample_images(..., epoch + 1, ...)`` at the end of every epoch, and
``library/train_util.py::sample_images_common`` returns early unless
``epoch % args.sample_every_n_epochs == 0``. Nothing after the epoch loop samples: the final model is
saved (``save_model(ckpt_name, ..., num_train_epochs)``) but no image is drawn for it. So **the last
epoch is sampled only when it is a multiple of** ``sample_every_n_epochs``: a 15-epoch run sampled every
2 epochs is scored at 2, 4, ..., 14 and never at 15. (``sample_at_first`` adds a step-0 sample of the
untrained network, which the search does not score.)

The validation loss (``train_network.py``, "EPOCH VALIDATION") is computed at the end of epoch ``e`` when
``e % validate_every_n_epochs == 0``, or at every epoch when ``validate_every_n_epochs`` is unset, and
only when ``validation_split`` left images to validate on.
"""

from __future__ import annotations


def sample_epochs(max_train_epochs: int, sample_every_n_epochs: int) -> list[int]:
    """The 1-based epochs that get sample images: the multiples of ``sample_every_n_epochs`` up to
    ``max_train_epochs`` (the last epoch only when it is one of them)."""
    if sample_every_n_epochs < 1:
        raise ValueError(f"sample_every_n_epochs must be at least 1, not {sample_every_n_epochs}")
    return list(range(sample_every_n_epochs, max_train_epochs + 1, sample_every_n_epochs))


def validation_epochs(max_train_epochs: int, validate_every_n_epochs: int | None) -> list[int]:
    """The 1-based epochs whose end computes a validation loss (when a validation split exists): every
    epoch when ``validate_every_n_epochs`` is None, else its multiples."""
    every = 1 if validate_every_n_epochs is None else validate_every_n_epochs
    if every < 1:
        raise ValueError(f"validate_every_n_epochs must be at least 1, not {validate_every_n_epochs}")
    return list(range(every, max_train_epochs + 1, every))
