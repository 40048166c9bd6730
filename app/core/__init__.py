"""The ground floor: domain types, catalog, settings, events and errors (no Qt, no HTTP)."""
