"""What the GUI tells people to point their tools at: the URL others reach, the key /v1 needs."""

from __future__ import annotations

from app.ui.i18n import tr
from app.ui.state import UiState


def lan_on(state: UiState) -> bool:
    """Whether the running balancer serves beyond this machine."""
    return bool(state.cluster and state.cluster["lan"])


def public_url(state: UiState) -> str:
    """The balancer's root URL as tools and other machines should use it: the address it
    announces on the LAN while it serves there (127.0.0.1 means nothing on another machine),
    else the one this app reaches it at."""
    announced = state.cluster.get("lan_url") if state.cluster else None
    return announced if lan_on(state) and announced else state.client.base_url


def keys_required(state: UiState) -> bool:
    """Whether /v1 answers 401 without an API key (a key exists, or it serves the LAN)."""
    return bool(state.api_keys) or lan_on(state)


def client_snippet(state: UiState) -> str:
    """How to call the endpoint from the OpenAI client, right for the current key policy."""
    url = public_url(state) + "/v1"
    if not keys_required(state):
        return (
            tr("Point any OpenAI client at the endpoint above, for example:")
            + f'\nOpenAI(base_url="{url}", api_key="unused")'
        )
    if state.api_keys:
        lead = tr(
            "/v1 needs an API key: use one of your API keys (Settings → API keys), for example:"
        )
    else:
        lead = tr(
            "/v1 needs an API key and none exists yet: create one in Settings → API keys, "
            "then for example:"
        )
    return lead + f'\nOpenAI(base_url="{url}", api_key="sk-llmlb-…")'
