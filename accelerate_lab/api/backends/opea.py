"""OPEA (Open Platform for Enterprise AI) deployments that expose the OpenAI wire format.

Point `opea_api_url` at the deployment's OpenAI-compatible base (for example a ChatQnA gateway's
LLM microservice, `http://localhost:9000/v1`); several URLs are load-balanced.

>>> from accelerate_lab.api import create_api_backend
>>> create_api_backend("opea", metadata={"opea_api_url": "http://a:9000/v1,http://b:9000/v1"}).pool.strategy
'round_robin'
"""

from __future__ import annotations

from accelerate_lab.api.backends._openai_compat import OpenAICompatible

__all__ = ["Backend", "OpeaBackend"]


class OpeaBackend(OpenAICompatible):
    name = "opea"
    default_url = "http://localhost:9000/v1"
    default_model = "Intel/neural-chat-7b-v3-3"
    health_path = "/v1/health_check"


Backend = OpeaBackend
