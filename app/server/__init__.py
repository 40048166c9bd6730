"""The aiohttp balancer: /v1 OpenAI API, /v0 management API, events, auth."""
