"""Registry, configuration from metadata and the environment, redaction, failover, load balancing."""

from __future__ import annotations

import logging

import pytest

import accelerate_lab.api as api
from accelerate_lab.api import (
    AllBackendsFailed,
    ApiBackend,
    AuthenticationFailed,
    BackendNotFound,
    CircuitOpen,
    CircuitState,
    ConfigurationError,
    Failover,
    InvalidRequest,
    ProviderError,
    Secret,
    create_api_backend,
    find_compatible_backend,
    get_available_backends,
    register_backend,
)
from accelerate_lab.api.testing import Reply, Request, sample_routes

from .conftest import Serve, backend_for

KEY = "sk-proj-SECRETSECRETSECRET1234"


def test_all_is_sorted_and_complete() -> None:
    assert api.__all__ == sorted(api.__all__)
    public = {n for n in dir(api) if (not n.startswith("_") and n[0].isupper()) or n in api.__all__}
    exported_types = {n for n in public if isinstance(getattr(api, n, None), type)}
    assert exported_types <= set(api.__all__)
    assert all(hasattr(api, n) for n in api.__all__)


def test_every_error_is_an_api_error_and_an_accelerate_lab_error() -> None:
    from accelerate_lab.errors import AccelerateLabError

    for name in api.__all__:
        obj = getattr(api, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, api.ApiError) and issubclass(obj, AccelerateLabError)


def test_builtin_backends_are_registered() -> None:
    assert get_available_backends() == sorted(
        [
            "openai",
            "claude",
            "groq",
            "gemini",
            "ollama",
            "hf_tei",
            "hf_tgi",
            "ovms",
            "vllm",
            "opea",
            "s3_kit",
            "llvm",
            "sample",
            "local",
        ]
    )


def test_unknown_names_list_the_available_backends() -> None:
    with pytest.raises(BackendNotFound, match="available: claude"):
        create_api_backend("nope")


def test_a_new_backend_registers_with_its_model_rules() -> None:
    class Mine(ApiBackend):
        name = "mine"
        default_url = "http://127.0.0.1:1"
        default_model = "mine-small"

    register_backend("mine", Mine, model_patterns=["mine-*"])
    assert "mine" in get_available_backends()
    assert create_api_backend("mine").get_default_model() == "mine-small"
    assert find_compatible_backend("mine-large") == "mine"
    with pytest.raises(ValueError, match="already registered"):
        register_backend("mine", Mine)


@pytest.mark.parametrize(
    ("model", "backend"),
    [
        ("gpt-4o-mini", "openai"),
        ("o3-mini", "openai"),
        ("text-embedding-3-small", "openai"),
        ("claude-3-5-sonnet-20241022", "claude"),
        ("gemini-2.0-flash", "gemini"),
        ("text-embedding-004", "gemini"),
        ("llama-3.3-70b-versatile", "groq"),
        ("llama3.2:1b", "ollama"),
        ("BAAI/bge-small-en-v1.5", "hf_tei"),
        ("meta-llama/Llama-3.1-8B-Instruct", "vllm"),
        ("sample-echo", "sample"),
        ("ollama:phi3", "ollama"),
        ("vllm:my-lora", "vllm"),
        ("something-unknown", None),
    ],
)
def test_model_name_rules(model: str, backend: str | None) -> None:
    assert find_compatible_backend(model) == backend


def test_available_restricts_and_orders() -> None:
    assert find_compatible_backend("Qwen/Qwen2.5-0.5B", available=["hf_tgi", "vllm"]) == "hf_tgi"
    assert find_compatible_backend("gpt-4o", available=["claude"]) is None


def test_keys_and_urls_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("CLAUDE_API_URL", "http://127.0.0.1:9999")
    b = create_api_backend("claude", resources={"max_retries": 1}, metadata={"timeout": 3})
    assert b.api_key.reveal() == KEY and b.pool.endpoints[0].url == "http://127.0.0.1:9999"
    assert b.config.max_retries == 1 and b.config.timeout == 3.0


def test_missing_key_for_a_hosted_provider_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "OPENAI_API_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        create_api_backend("openai")
    # a self-hosted OpenAI-compatible server needs none
    assert create_api_backend("openai", metadata={"openai_api_url": "http://127.0.0.1:1/v1"})


def test_bad_settings_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        create_api_backend("sample", metadata={"max_retries": "many"})
    with pytest.raises(ConfigurationError):
        create_api_backend("sample", metadata={"sample_api_url": "ftp://x"})
    with pytest.raises(ConfigurationError):
        create_api_backend("sample", metadata={"load_balancing": "random"})


def test_keys_never_show_in_repr_str_errors_or_logs(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    def echo_key(req: Request) -> Reply:
        sent = req.headers.get("authorization", "")
        return Reply.json({"error": {"message": f"Incorrect API key provided: {sent[7:]}"}}, 401)

    server = serve({"POST /chat/completions": echo_key})
    b = backend_for("openai", server.url, key=KEY)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationFailed) as info:
        b.chat("gpt-4o-mini", "hi")
    texts = [
        repr(b),
        str(b),
        str(info.value),
        repr(info.value),
        info.value.body,
        str(b.status()),
        repr(b.api_key),
        str(b.api_key),
        repr(b.transport),
        caplog.text,
    ]
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it was sent...
    for text in texts:
        assert KEY not in text and KEY[:8] not in text  # ...and never shown
    assert "********" in str(info.value)


def test_secret_pickles_without_showing() -> None:
    import pickle

    s = pickle.loads(pickle.dumps(Secret(KEY)))
    assert s.reveal() == KEY and KEY not in repr(s)


def test_failover_moves_on_and_reports_every_error(serve: Serve) -> None:
    down = serve({"POST /chat": lambda r: Reply.json({"error": "down"}, 503)})
    up = serve(sample_routes())
    first = backend_for("sample", down.url, max_retries=1)
    second = backend_for("sample", up.url)
    chain = Failover([first, second])
    assert chain.chat(None, "hi").text == "echo: hi"
    assert [c.text for c in chain.stream_chat(None, "a")] == ["echo:", " a", ""]
    with pytest.raises(AllBackendsFailed) as info:
        Failover([first, backend_for("sample", down.url, max_retries=0)]).chat(None, "hi")
    first_error, second_error = info.value.errors
    assert isinstance(first_error, CircuitOpen)  # five 503s so far opened the first backend's breaker
    assert isinstance(second_error, ProviderError) and second_error.status == 503


async def test_async_failover_and_invalid_requests_stop_it(serve: Serve) -> None:
    bad = serve({"POST /chat": lambda r: Reply.json({"error": "bad prompt"}, 400)})
    up = serve(sample_routes())
    chain = Failover(
        [backend_for("sample", "http://127.0.0.1:9", max_retries=0), backend_for("sample", up.url)]
    )
    assert (await chain.achat(None, "yo")).text == "echo: yo"
    assert [c.text async for c in chain.astream_chat(None, "b")] == ["echo:", " b", ""]
    with pytest.raises(InvalidRequest):
        await Failover([backend_for("sample", bad.url), backend_for("sample", up.url)]).achat(None, "x")


def test_replicas_are_balanced_and_a_dead_one_is_taken_out(serve: Serve) -> None:
    a, b = serve(sample_routes()), serve(sample_routes())
    dead = "http://127.0.0.1:9"
    backend = backend_for(
        "sample",
        f"{a.url},{b.url},{dead}",
        max_retries=2,
        circuit_failure_threshold=1,
        circuit_reset_timeout=60,
    )
    for i in range(12):
        assert backend.chat(None, f"m{i}").text == f"echo: m{i}"
    assert abs(len(a.requests) - len(b.requests)) <= 1 and len(a.requests) + len(b.requests) == 12
    states = {e.url: e.state for e in backend.pool.endpoints}
    assert states[dead] is CircuitState.OPEN and states[a.url] is CircuitState.CLOSED
    assert backend.check_health() == [True, True, False]


async def test_health_checks_bring_a_replica_back(serve: Serve) -> None:
    a, b = serve(sample_routes()), serve(sample_routes())
    backend = backend_for("sample", [a.url, b.url], health_check_interval=0.05, load_balancing="least_loaded")
    backend.pool.endpoints[1].breaker.trip()
    assert await backend.acheck_health() == [True, True]
    assert backend.pool.endpoints[1].state is CircuitState.CLOSED
    results = [
        r.text for r in await __import__("asyncio").gather(*(backend.achat(None, str(i)) for i in range(20)))
    ]
    assert results == [f"echo: {i}" for i in range(20)]
    assert len(a.requests) > 1 and len(b.requests) > 1
