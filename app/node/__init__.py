"""The node: manifest sync, resumable downloads, the llama.cpp engine, its own HTTP API."""
