"""llmlb desktop: one OpenAI-compatible endpoint for the LLMs on your machines."""

__version__ = "0.1.0"
