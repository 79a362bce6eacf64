"""Sampling: greedy, seeded draws, top-k/top-p restrictions, option checking, and stop strings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelerate_lab.models.llm import Sampler, SamplingError, SamplingParams
from accelerate_lab.models.llm.generation import split_at_stop

LOGITS = np.log(np.array([0.05, 0.5, 0.3, 0.15], np.float32))


def draws(params: SamplingParams, n: int = 400) -> np.ndarray:
    sampler = Sampler(params)
    return np.array([sampler(LOGITS) for _ in range(n)])


def test_greedy_takes_the_argmax() -> None:
    assert set(draws(SamplingParams(), 5)) == {1}


def test_same_seed_same_draws_other_seed_other_draws() -> None:
    a, b, c = (draws(SamplingParams(temperature=1.0, seed=s)) for s in (7, 7, 8))
    assert (a == b).all() and (a != c).any()


def test_draws_follow_the_distribution() -> None:
    counts = np.bincount(draws(SamplingParams(temperature=1.0, seed=0), 4000), minlength=4) / 4000
    np.testing.assert_allclose(counts, [0.05, 0.5, 0.3, 0.15], atol=0.03)


def test_top_k_and_top_p_restrict_the_candidates() -> None:
    assert set(draws(SamplingParams(temperature=1.0, top_k=2, seed=1))) == {1, 2}
    assert set(draws(SamplingParams(temperature=1.0, top_p=0.7, seed=1))) == {1, 2}  # 0.5 < 0.7 <= 0.8
    assert set(draws(SamplingParams(temperature=1.0, top_p=0.5, seed=1))) == {1}


def test_low_temperature_sharpens() -> None:
    assert (draws(SamplingParams(temperature=0.05, seed=3)) == 1).all()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": -1.0}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_k": -2}, "top_k"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"stop": ("",)}, "stop strings"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(SamplingError, match=message):
        SamplingParams().updated(**options)


def test_unknown_options_name_the_known_ones() -> None:
    with pytest.raises(SamplingError, match=r"unknown sampling option.*tempreature.*known: max_new_tokens"):
        SamplingParams().updated(tempreature=1.0)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="abUser: ", max_size=30), cuts=st.lists(st.integers(0, 30), max_size=5))
def test_stop_strings_cut_streamed_text_exactly(text: str, cuts: list[int]) -> None:
    stops = ["User:", "bb"]
    pieces = [text[i:j] for i, j in zip([0, *sorted(cuts)], [*sorted(cuts), len(text)], strict=True)]
    shown, held, stopped = [], "", False
    for piece in pieces:
        safe, held, stopped = split_at_stop(held + piece, stops)
        shown.append(safe)
        if stopped:
            break
    if not stopped:
        shown.append(held)
    first = min([i for i in (text.find(s) for s in stops) if i >= 0], default=len(text))
    assert "".join(shown) == text[:first]
    assert stopped == (first < len(text))


@pytest.mark.parametrize("device", ["cpu", "wgpu"])
def test_greedy_choices_are_made_on_the_device_others_read_the_logits(device: str) -> None:
    """Greedy: the host downloads the argmax (one id) computed where the logits are; else the logits."""
    from accelerate_lab.errors import DeviceError
    from accelerate_lab.tensor import tensor

    logits = np.random.default_rng(5).standard_normal(1000).astype(np.float32)
    try:
        on_device = tensor(logits, device=device)
    except DeviceError as error:
        pytest.skip(f"no {device} device here: {error}")
    greedy, sampled = Sampler(SamplingParams()), Sampler(SamplingParams(temperature=0.8, seed=3))
    wanted = greedy.wanted(on_device)
    assert wanted.shape == () and greedy.pick(wanted.numpy()) == int(np.argmax(logits))
    assert sampled.wanted(on_device) is on_device
    reference = Sampler(SamplingParams(temperature=0.8, seed=3))
    assert [sampled.pick(logits) for _ in range(20)] == [reference(logits) for _ in range(20)]
