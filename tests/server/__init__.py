"""Tests for app/server."""
