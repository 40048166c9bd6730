"""Test-support helpers (tiny model generators, fixtures) shared by the test suite."""
