"""Tests of the node: downloads, manifest sync, engine, its HTTP API."""
