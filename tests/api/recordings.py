"""Responses in each provider's documented wire format (shapes and field names as the providers'
API references show them), replayed by a local server in the tests."""

from __future__ import annotations

import json

# --- OpenAI ----------------------------------------------------------------------------------------
OPENAI_CHAT = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I help?",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_06737a9306",
}
OPENAI_TOOL_CHAT = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "created": 1699896916,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc123",
                        "type": "function",
                        "function": {
                            "name": "get_current_weather",
                            "arguments": '{\n"location": "Boston, MA"\n}',
                        },
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99},
}


def _chunk(delta: dict[str, object], finish: str | None = None, **extra: object) -> str:
    return json.dumps(
        {
            "id": "chatcmpl-123",
            "object": "chat.completion.chunk",
            "created": 1694268190,
            "model": "gpt-4o-mini",
            "system_fingerprint": "fp_44709d6fcb",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **extra,
        }
    )


OPENAI_STREAM = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Hello"}),
    _chunk({"content": " wörld"}),
    _chunk({"content": "!"}),
    _chunk({}, "stop"),
    json.dumps(
        {
            "id": "chatcmpl-123",
            "object": "chat.completion.chunk",
            "created": 1694268190,
            "model": "gpt-4o-mini",
            "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
        }
    ),
    "[DONE]",
]
OPENAI_TOOL_STREAM = [
    _chunk(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ],
        }
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris, France"}'}}]}),
    _chunk({}, "tool_calls"),
    "[DONE]",
]
OPENAI_EMBEDDINGS = {
    "object": "list",
    "model": "text-embedding-3-small",
    "data": [
        {"object": "embedding", "index": 1, "embedding": [0.5, -0.25]},
        {"object": "embedding", "index": 0, "embedding": [0.0023064255, -0.009327292]},
    ],
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
}
OPENAI_MODELS = {
    "object": "list",
    "data": [
        {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
        {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"},
    ],
}
OPENAI_IMAGES = {"created": 1713833628, "data": [{"b64_json": "iVBORw0KGgo=", "revised_prompt": "A cat."}]}
OPENAI_TRANSCRIPTION = {"text": "Imagine the wildest idea that you've ever had."}
OPENAI_MODERATION = {
    "id": "modr-0d9740456c391e43c445bf0f010940c7",
    "model": "omni-moderation-latest",
    "results": [
        {
            "flagged": True,
            "categories": {"harassment": True, "violence": False},
            "category_scores": {"harassment": 0.91, "violence": 0.01},
            "category_applied_input_types": {"harassment": ["text"]},
        }
    ],
}

# --- Anthropic -------------------------------------------------------------------------------------
CLAUDE_MESSAGE = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message",
    "role": "assistant",
    "model": "claude-3-5-haiku-20241022",
    "content": [
        {"type": "text", "text": "Let me check."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 472,
        "output_tokens": 91,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    },
}
CLAUDE_STREAM: list[tuple[str, str]] = [
    (e, json.dumps(d))
    for e, d in [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": "claude-3-5-haiku-20241022",
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 25, "output_tokens": 1},
                },
            },
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": " there, ünïcode!"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                    "name": "get_weather",
                    "input": {},
                },
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"location": "San Fra'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": 'ncisco, CA"}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 89},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
]
CLAUDE_OVERLOADED_EVENT = (
    "error",
    json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
)
CLAUDE_MODELS = {
    "data": [
        {
            "type": "model",
            "id": "claude-3-5-haiku-20241022",
            "display_name": "Claude Haiku 3.5",
            "created_at": "2024-10-22T00:00:00Z",
        }
    ],
    "has_more": False,
    "first_id": "claude-3-5-haiku-20241022",
    "last_id": "claude-3-5-haiku-20241022",
}


# --- Gemini ----------------------------------------------------------------------------------------
def gemini_response(text: str, finish: str | None = "STOP", usage: bool = True) -> dict[str, object]:
    cand: dict[str, object] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    out: dict[str, object] = {"candidates": [cand], "modelVersion": "gemini-2.0-flash"}
    if usage:
        out["usageMetadata"] = {"promptTokenCount": 4, "candidatesTokenCount": 7, "totalTokenCount": 11}
    return out


GEMINI_STREAM = [
    json.dumps(gemini_response("Once upon", None, False)),
    json.dumps(gemini_response(" a time", None, False)),
    json.dumps(gemini_response(" there was a lamp.", "STOP")),
]
GEMINI_FUNCTION_CALL = {
    "candidates": [
        {
            "content": {
                "parts": [
                    {
                        "functionCall": {
                            "name": "set_light_values",
                            "args": {"brightness": 25, "color_temp": "warm"},
                        }
                    }
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "modelVersion": "gemini-2.0-flash",
}
GEMINI_EMBED = {"embedding": {"values": [0.013168523, -0.008711934, -0.046782676]}}
GEMINI_BATCH_EMBED = {"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]}
GEMINI_MODELS = {
    "models": [
        {
            "name": "models/gemini-2.0-flash",
            "version": "2.0",
            "displayName": "Gemini 2.0 Flash",
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }
    ]
}

# --- Ollama ----------------------------------------------------------------------------------------
OLLAMA_CHAT_STREAM = [
    {
        "model": "llama3.2",
        "created_at": "2023-08-04T08:52:19.385406455-07:00",
        "message": {"role": "assistant", "content": "The"},
        "done": False,
    },
    {
        "model": "llama3.2",
        "created_at": "2023-08-04T08:52:19.4-07:00",
        "message": {"role": "assistant", "content": " sky is blue"},
        "done": False,
    },
    {
        "model": "llama3.2",
        "created_at": "2023-08-04T19:22:45.499127Z",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "total_duration": 4883583458,
        "load_duration": 1334875,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 342546000,
        "eval_count": 282,
        "eval_duration": 4535599000,
    },
]
OLLAMA_CHAT = {
    "model": "llama3.2",
    "created_at": "2023-12-12T14:13:43.416799Z",
    "message": {"role": "assistant", "content": "Hello! How are you today?"},
    "done": True,
    "done_reason": "stop",
    "total_duration": 5191566416,
    "prompt_eval_count": 26,
    "eval_count": 298,
}
OLLAMA_GENERATE_STREAM = [
    {
        "model": "llama3.2",
        "created_at": "2023-08-04T08:52:19.385406455-07:00",
        "response": "The",
        "done": False,
    },
    {
        "model": "llama3.2",
        "created_at": "2023-08-04T19:22:45.499127Z",
        "response": "",
        "done": True,
        "done_reason": "stop",
        "context": [1, 2, 3],
        "prompt_eval_count": 26,
        "eval_count": 290,
    },
]
OLLAMA_EMBED = {
    "model": "all-minilm",
    "embeddings": [[0.010071029, -0.0017594862, 0.05007221], [-0.0098027075, 0.06042469, 0.025257962]],
    "total_duration": 14143917,
    "load_duration": 1019500,
    "prompt_eval_count": 8,
}
OLLAMA_TAGS = {
    "models": [
        {
            "name": "llama3.2:latest",
            "model": "llama3.2:latest",
            "modified_at": "2025-05-04T17:37:44.706015396-07:00",
            "size": 2019393189,
            "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "details": {
                "format": "gguf",
                "family": "llama",
                "parameter_size": "3.2B",
                "quantization_level": "Q4_K_M",
            },
        }
    ]
}
OLLAMA_PULL = [
    {"status": "pulling manifest"},
    {
        "status": "pulling 1a4c3c319823",
        "digest": "sha256:1a4c3c319823",
        "total": 2142590208,
        "completed": 241970,
    },
    {
        "status": "pulling 1a4c3c319823",
        "digest": "sha256:1a4c3c319823",
        "total": 2142590208,
        "completed": 2142590208,
    },
    {"status": "verifying sha256 digest"},
    {"status": "writing manifest"},
    {"status": "success"},
]

# --- Hugging Face TEI / TGI ------------------------------------------------------------------------
TEI_INFO = {
    "model_id": "BAAI/bge-small-en-v1.5",
    "model_sha": None,
    "model_dtype": "float32",
    "model_type": {"embedding": {"pooling": "cls"}},
    "max_concurrent_requests": 512,
    "max_input_length": 512,
    "max_batch_tokens": 16384,
    "max_batch_requests": None,
    "max_client_batch_size": 32,
    "auto_truncate": False,
    "tokenization_workers": 2,
    "version": "1.5.0",
}
TEI_RERANK = [{"index": 1, "score": 0.9976404}, {"index": 0, "score": 0.12527926}]
TGI_INFO = {
    "model_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "model_sha": None,
    "model_pipeline_tag": None,
    "max_concurrent_requests": 128,
    "max_best_of": 2,
    "max_stop_sequences": 4,
    "max_input_tokens": 1024,
    "max_total_tokens": 2048,
    "validation_workers": 2,
    "max_client_batch_size": 4,
    "router": "text-generation-router",
    "version": "3.0.1",
    "sha": None,
    "docker_label": None,
}
TGI_GENERATE = {
    "generated_text": " is a test.",
    "details": {"finish_reason": "length", "generated_tokens": 4, "seed": None, "prefill": [], "tokens": []},
}


def tgi_token(i: int, text: str, special: bool = False) -> dict[str, object]:
    return {"id": 100 + i, "text": text, "logprob": -0.5, "special": special}


TGI_STREAM = [
    json.dumps(
        {
            "index": 1,
            "token": tgi_token(1, " is"),
            "top_tokens": None,
            "generated_text": None,
            "details": None,
        }
    ),
    json.dumps(
        {"index": 2, "token": tgi_token(2, " a"), "top_tokens": None, "generated_text": None, "details": None}
    ),
    json.dumps(
        {
            "index": 3,
            "token": tgi_token(3, " test"),
            "top_tokens": None,
            "generated_text": None,
            "details": None,
        }
    ),
    json.dumps(
        {
            "index": 4,
            "token": tgi_token(4, "</s>", True),
            "top_tokens": None,
            "generated_text": " is a test",
            "details": {"finish_reason": "eos_token", "generated_tokens": 4, "seed": None},
        }
    ),
]

# --- vLLM ------------------------------------------------------------------------------------------
VLLM_MODELS_WITH_LORA = {
    "object": "list",
    "data": [
        {
            "id": "tiny-llama",
            "object": "model",
            "created": 1730000000,
            "owned_by": "vllm",
            "root": "/models/tiny-llama",
            "parent": None,
            "max_model_len": 2048,
            "permission": [],
        },
        {
            "id": "sql-lora",
            "object": "model",
            "created": 1730000000,
            "owned_by": "vllm",
            "root": "/adapters/sql",
            "parent": "tiny-llama",
            "max_model_len": None,
            "permission": [],
        },
    ],
}
