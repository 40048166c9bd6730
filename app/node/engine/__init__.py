"""The node's llama.cpp engine.

`types` (options, sampling, stream items), `channel` (engine thread to event loop), `llama`
(opening models, chat templates, llama.cpp's log), `tail` (stop strings, hold-back, UTF-8 and
the token limit, for both runners), `base` (what every runner has), `sequential` (one request
at a time; embeddings), `batched` with `slots` and `sampler` (continuous batching), and `pool`
(the runners of a node). Import from those modules; this package re-exports nothing, so that
importing the types does not load llama.cpp.
"""
