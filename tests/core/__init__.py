"""Tests for app/core."""
