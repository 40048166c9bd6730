"""OpenAI request fields the node does not honour: refused when they would change the answer,
accepted when they only carry metadata or hints.

A client that sends `audio` or `web_search_options` expects an answer they shape; ignoring
them would hand back something else without a word, so they are a 400 naming the field.
Fields that leave the answer as it is (`metadata`, `user`, `store: false`, `service_tier`,
`prompt_cache_key`, `safety_identifier`, `prediction`, which only speeds up an answer that is
the same) are accepted and have no effect here; so is `reasoning_effort`, which agents send by
default: a model here reasons as its chat template says (`chat_template_kwargs` sets that).
Fields OpenAI does not define (llama.cpp's `top_k`, `min_p`, `cache_prompt`...) are not
judged here.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.core.errors import BadRequest
from app.core.wire import JsonValue

# Field -> why the node cannot honour it (said in the 400).
_REFUSED_CHAT = {
    "audio": "this node answers in text only; audio output is not supported",
    "web_search_options": "this node cannot search the web",
    "functions": "the legacy 'functions' are not supported; send them as 'tools'",
    "function_call": "the legacy 'function_call' is not supported; use 'tool_choice' with 'tools'",
}
_REFUSED_COMPLETIONS = {
    "suffix": "this node does not insert text between a prompt and a suffix",
    "best_of": "'best_of' is not supported; use 'n' and pick one yourself",
}


def refuse_unsupported(body: Mapping[str, JsonValue], chat: bool) -> None:
    """BadRequest naming the first field of `body` (a chat body when `chat`, else a legacy
    completions body) that would change the answer and that the node cannot honour."""
    refused = _REFUSED_CHAT if chat else _REFUSED_COMPLETIONS
    for name, why in refused.items():
        value = body.get(name)
        if value is None or value == "" or (name == "best_of" and value == 1):
            continue
        raise BadRequest(why, param=name, code="unsupported_parameter")
    if chat:
        modalities = body.get("modalities")
        if modalities is not None and modalities != ["text"]:
            raise BadRequest(
                "this node answers in text only: 'modalities' may only be [\"text\"]",
                param="modalities",
                code="unsupported_parameter",
            )
        verbosity = body.get("verbosity")
        if verbosity not in (None, "medium"):
            raise BadRequest(
                "'verbosity' other than 'medium' is not supported by this node",
                param="verbosity",
                code="unsupported_parameter",
            )
    if body.get("store") not in (None, False):
        raise BadRequest(
            "this node does not store completions for later retrieval; send 'store': false",
            param="store",
            code="unsupported_parameter",
        )
