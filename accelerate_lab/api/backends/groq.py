"""Groq: the OpenAI wire format at `https://api.groq.com/openai/v1` (key: `GROQ_API_KEY`).

>>> from accelerate_lab.api import create_api_backend
>>> create_api_backend("groq", metadata={"groq_api_key": "gsk-test"}).get_default_model()
'llama-3.1-8b-instant'
"""

from __future__ import annotations

from accelerate_lab.api.backends._openai_compat import OpenAICompatible

__all__ = ["Backend", "GroqBackend"]


class GroqBackend(OpenAICompatible):
    name = "groq"
    default_url = "https://api.groq.com/openai/v1"
    default_model = "llama-3.1-8b-instant"
    requires_key = True


Backend = GroqBackend
