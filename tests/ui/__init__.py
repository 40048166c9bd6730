"""Tests for app/ui: the real widgets, offscreen, against a real embedded balancer."""
