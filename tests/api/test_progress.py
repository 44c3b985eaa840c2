"""``Codec``'s progress callback: each coding pass reports (0, total), then one call per unit of
work, ending at (total, total); the units are the transform's tiles, or the refinement's steps."""

from __future__ import annotations

import pytest

import codec
import codec.coder
import codec.effort

pytestmark = pytest.mark.usefixtures("use_tiny_weights")


class Calls(list):
    """A progress callback that records its calls."""

    def __call__(self, done: int, total: int) -> None:
        self.append((done, total))

    def passes(self) -> list[int]:
        """The total of each pass, after checking that every pass counts 0, 1, ... total."""
        totals, start = [], 0
        for end in [i for i, (done, _) in enumerate(self) if done == 0][1:] + [len(self)]:
            total = self[start][1]
            assert self[start:end] == [(done, total) for done in range(total + 1)], self[start:end]
            totals.append(total)
            start = end
        return totals


@pytest.fixture
def image(make_image):
    return make_image(40, 200, 3)  # 64x256 once padded: one tile of 1024, four of 64


@pytest.mark.parametrize("tile,tiles", [(None, 1), (64, 4)])
def test_encode_and_decode_each_report_one_pass_over_their_tiles(tile, tiles, image, monkeypatch):
    if tile is not None:
        monkeypatch.setattr(codec.coder, "TRANSFORM_TILE", tile)
    c = codec.Codec(device="cpu")
    encoding, decoding = Calls(), Calls()
    data = c.compress(image, 4, progress=encoding)
    assert encoding.passes() == [tiles]
    assert c.decompress(data, progress=decoding).size == (200, 40)
    assert decoding.passes() == [tiles]
    assert data == c.compress(image, 4)  # the callback changes nothing coded


def test_a_refined_encode_reports_its_descent_steps(image):
    c = codec.Codec(device="cpu", effort=1)
    calls = Calls()
    c.compress(image, 4, progress=calls)
    (steps,) = calls.passes()
    assert steps == codec.effort.effort_config(1).steps  # effort 1's steps, on the one tile of a small image


def test_a_target_search_reports_a_whole_pass_per_candidate(image, monkeypatch):
    monkeypatch.setattr(codec.coder, "TRANSFORM_TILE", 64)
    c = codec.Codec(device="cpu")
    for search in (lambda p: c.compress_to_size(image, 1, progress=p),  # codes quality 8, then 1
                   lambda p: c.compress_to_psnr(image, 99.0, progress=p)):  # scores 1 and 8, codes 8
        calls = Calls()
        assert not search(calls).met
        totals = calls.passes()
        assert len(totals) >= 2 and set(totals) == {4}


def test_lossless_and_near_lossless_files_report_nothing(image):
    c = codec.Codec(device="cpu")
    calls = Calls()
    for k in (0, 2):
        data = c.compress(image, max_error=k, progress=calls)
        c.decompress(data, progress=calls)
    assert calls == []
