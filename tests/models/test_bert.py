"""BERT against sentence-transformers on the real all-MiniLM-L6-v2, and transformers on a tiny random BERT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from accelerate_lab.models import BERT, ModelNotFoundError
from tests.models.conftest import cosine, max_relative_error

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on stage.",
    "Hello!",
    "Sentence embeddings map text to vectors whose cosine similarity tracks meaning, even for long inputs "
    "that span many word pieces like electroencephalography.",
]


@pytest.fixture(scope="module")
def minilm(minilm_dir: Path) -> BERT:
    return BERT.from_pretrained(minilm_dir)


def test_embed_matches_sentence_transformers_on_all_minilm(minilm: BERT, minilm_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(minilm_dir), device="cpu").encode(SENTENCES, convert_to_numpy=True)
    ours = minilm.embed(SENTENCES)
    assert ours.shape == reference.shape
    assert cosine(ours, reference).min() >= 0.9999


def test_embed_batches_give_the_same_vectors_as_one_batch(minilm: BERT) -> None:
    np.testing.assert_allclose(minilm.embed(SENTENCES, batch_size=3), minilm.embed(SENTENCES), atol=1e-5)


def test_from_pretrained_without_source_loads_the_shipped_model_with_unit_vectors() -> None:
    vectors = BERT.from_pretrained().embed("one sentence")
    assert vectors.shape == (1, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=-1), 1.0, rtol=1e-5)


def test_embed_truncates_at_sentence_transformers_max_seq_length(minilm: BERT) -> None:
    long_text = " ".join(["word"] * 600)
    assert minilm.tokenizer is not None
    assert minilm.tokenizer(long_text).input_ids.shape == (1, 256)
    assert minilm.embed(long_text).shape == (1, 384)


def test_forward_matches_transformers_with_padding_token_types_and_pooler(
    tiny_bert_dir: Path, device: str
) -> None:
    from transformers import BertModel

    reference = BertModel.from_pretrained(tiny_bert_dir).eval()
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 99, (3, 11))
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    types = rng.integers(0, 2, ids.shape)
    with torch.no_grad():
        expected = reference(
            input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(types)
        )
    model = BERT.from_pretrained(tiny_bert_dir, device)
    out = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
    keep = mask.astype(bool)  # padded positions are unspecified in both
    ours_hidden = out["last_hidden_state"].numpy()[keep]
    assert max_relative_error(ours_hidden, expected.last_hidden_state.numpy()[keep]) < 1e-4
    assert max_relative_error(out["pooler_output"].numpy(), expected.pooler_output.numpy()) < 1e-4
    # the forward without the pooler (what embed pools) gives the same hidden states
    np.testing.assert_array_equal(model.hidden_states(ids, mask, types).numpy()[keep], ours_hidden)


def test_embed_without_a_tokenizer_says_to_pass_token_ids(tiny_bert_dir: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="token ids"):
        BERT.from_pretrained(tiny_bert_dir).embed("text")
