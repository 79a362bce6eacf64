"""Hugging Face TEI (/embed, /rerank, /info) and TGI (/generate, /generate_stream, /info, OpenAI route)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from accelerate_lab.api import Usage
from accelerate_lab.api.backends.hf_tei import HfTeiBackend, Rank
from accelerate_lab.api.backends.hf_tgi import HfTgiBackend
from accelerate_lab.api.testing import Reply

from . import recordings as rec
from .conftest import Serve, backend_for
from .streams import offsets, split_reply


async def test_tei_embed_rerank_info(serve: Serve) -> None:
    server = serve(
        {
            "POST /embed": lambda r: Reply.json([[0.1, 0.2, 0.3] for _ in r.json()["inputs"]]),
            "POST /rerank": lambda r: Reply.json(rec.TEI_RERANK),
            "GET /info": lambda r: Reply.json(rec.TEI_INFO),
        }
    )
    b = backend_for("hf_tei", server.url)
    assert isinstance(b, HfTeiBackend)
    assert b.embed(None, ["a", "b"], normalize=True) == [[0.1, 0.2, 0.3]] * 2
    assert server.requests[0].json() == {"inputs": ["a", "b"], "normalize": True}
    ranks = await b.arerank("What is Deep Learning?", ["Deep Learning is not...", "Deep learning is..."])
    assert ranks == [Rank(1, 0.9976404), Rank(0, 0.12527926)]
    assert server.requests[1].json() == {
        "query": "What is Deep Learning?",
        "texts": ["Deep Learning is not...", "Deep learning is..."],
    }
    assert b.info()["max_client_batch_size"] == 32 and b.list_models() == ["BAAI/bge-small-en-v1.5"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=offsets)
def test_tgi_generate_stream_survives_any_byte_split(serve: Serve, cuts: list[int]) -> None:
    server = serve({"POST /generate_stream": lambda r: split_reply(Reply.sse(rec.TGI_STREAM), cuts)})
    b = backend_for("hf_tgi", server.url)
    assert isinstance(b, HfTgiBackend)
    chunks = list(b.stream_generate("This", max_new_tokens=4))
    assert "".join(c.text for c in chunks) == " is a test"  # the special </s> token is not text
    assert chunks[-1].done and chunks[-1].finish_reason == "eos_token" and chunks[-1].usage == Usage(0, 4)
    assert server.requests[-1].json() == {"inputs": "This", "parameters": {"max_new_tokens": 4}}


async def test_tgi_generate_info_and_messages_api(serve: Serve) -> None:
    server = serve(
        {
            "POST /generate": lambda r: Reply.json(rec.TGI_GENERATE),
            "GET /info": lambda r: Reply.json(rec.TGI_INFO),
            "POST /v1/chat/completions": lambda r: Reply.sse(rec.OPENAI_STREAM),
        }
    )
    b = backend_for("hf_tgi", server.url)
    assert isinstance(b, HfTgiBackend)
    g = await b.agenerate("This", max_new_tokens=4)
    assert (g.text, g.finish_reason, g.generated_tokens) == (" is a test.", "length", 4)
    assert server.requests[0].json()["parameters"] == {"details": True, "max_new_tokens": 4}
    assert (await b.ainfo())["max_total_tokens"] == 2048
    assert b.list_models() == ["HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert "".join([c.text async for c in b.astream_chat(None, "hi")]) == "Hello wörld!"
    assert "stream_options" not in server.requests[-1].json()
