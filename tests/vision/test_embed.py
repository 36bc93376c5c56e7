from __future__ import annotations

import shutil

import numpy as np
import pytest

from orchestrator.vision import ClipEncoder, EmbeddingCache, embed_files, open_image_rgb
from orchestrator.vision.synthetic import synthetic_scene


@pytest.fixture
def frames(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    paths = []
    for index in range(7):
        path = folder / f"{index:04d}.png"
        synthetic_scene(index).save(path)
        paths.append(path)
    return paths


def test_embeddings_match_the_encoder_on_decoded_images(tiny_encoder, frames):
    table = embed_files(tiny_encoder, frames, batch_size=3, workers=2, progress=False)
    expected = tiny_encoder.embed_images(open_image_rgb(p) for p in frames)
    assert table.paths == frames
    assert np.allclose(table.vectors, expected, atol=1e-5)
    assert table.computed == 7 and table.reused == 0 and not table.failures
    assert np.allclose(table[frames[2]], expected[2], atol=1e-5)


def test_bad_files_are_reported_and_the_rest_embedded(tiny_encoder, frames, bad_inputs):
    folder, expected = bad_inputs
    mixed = [*frames[:2], *(folder / name for name in expected), frames[2], folder / "absent.png"]
    table = embed_files(tiny_encoder, mixed, batch_size=4, progress=False)
    assert table.paths == [*frames[:2], *(folder / n for n, r in expected.items() if r is None), frames[2]]
    reasons = {path.name: error.reason for path, error in table.failures.items()}
    assert reasons == {**{n: r for n, r in expected.items() if r is not None}, "absent.png": "missing"}
    assert len(table.vectors) == len(table.paths)


def test_second_run_reuses_every_embedding(tiny_encoder, frames, tmp_path):
    with EmbeddingCache(tmp_path / "cache") as cache:
        first = embed_files(tiny_encoder, frames, cache=cache, progress=False)
        second = embed_files(tiny_encoder, frames, cache=cache, progress=False)
    assert (first.computed, second.computed, second.reused) == (7, 0, 7)
    assert np.array_equal(first.vectors, second.vectors)
    with EmbeddingCache(tmp_path / "cache") as reopened:  # persisted on disk
        assert embed_files(tiny_encoder, frames, cache=reopened, progress=False).computed == 0


def test_cache_is_keyed_by_content_and_model(tiny_encoder, frames, tmp_path):
    with EmbeddingCache(tmp_path / "cache") as cache:
        embed_files(tiny_encoder, frames, cache=cache, progress=False)
        renamed = tmp_path / "renamed.png"
        shutil.copy(frames[0], renamed)
        synthetic_scene(99).save(frames[1])  # same name, new content
        table = embed_files(tiny_encoder, [renamed, frames[1]], cache=cache, progress=False)
        assert (table.reused, table.computed) == (1, 1)
        assert np.allclose(table[frames[1]], tiny_encoder.embed_images([synthetic_scene(99)])[0], atol=1e-5)
        other_model = ClipEncoder(tiny_encoder.model, tiny_encoder.preprocess, tiny_encoder.tokenizer,
                                  identity="other-model", device="cpu")
        assert embed_files(other_model, frames, cache=cache, progress=False).computed == 7


def test_identical_files_are_decoded_once(tiny_encoder, frames, tmp_path):
    copy = tmp_path / "copy.png"
    shutil.copy(frames[0], copy)
    table = embed_files(tiny_encoder, [frames[0], copy, frames[1]], progress=False)
    assert table.computed == 2 and len(table) == 3
    assert np.array_equal(table[copy], table[frames[0]])


def test_nothing_readable_gives_an_empty_table_of_the_right_width(tiny_encoder, tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    table = embed_files(tiny_encoder, [tmp_path / "empty.png"], progress=False)
    assert table.vectors.shape == (0, 32) and len(table) == 0
    assert table.failures[tmp_path / "empty.png"].reason == "empty_file"
    assert tmp_path / "empty.png" not in table


def test_decoded_images_in_flight_stay_bounded(tiny_encoder, tmp_path):
    """Streaming: with 120 files, batch 4 and 2 workers, at most 4 * (2 + 3) images are decoded and
    not yet embedded (queued window + the batch in the model), whatever the number of files."""

    class CountingEncoder(ClipEncoder):
        prepared = embedded = most_ahead = 0

        def __init__(self, inner: ClipEncoder) -> None:
            super().__init__(inner.model, self._count(inner.preprocess), inner.tokenizer,
                             identity=inner.identity, device="cpu")

        def _count(self, preprocess):
            def wrapped(image):
                CountingEncoder.prepared += 1
                return preprocess(image)
            return wrapped

        def embed_tensors(self, batch):
            CountingEncoder.most_ahead = max(CountingEncoder.most_ahead, CountingEncoder.prepared - self.embedded)
            CountingEncoder.embedded += len(batch)
            return super().embed_tensors(batch)

    paths = []
    for index in range(120):
        path = tmp_path / f"{index:04d}.png"
        synthetic_scene(index, (48, 36)).save(path, compress_level=0)
        paths.append(path)
    encoder = CountingEncoder(tiny_encoder)
    table = embed_files(encoder, paths, batch_size=4, workers=2, progress=False)
    assert len(table) == 120 and CountingEncoder.embedded == 120
    assert 4 < CountingEncoder.most_ahead <= 4 * (2 + 3)  # > one batch: decoding runs ahead
