"""The test suite: real parts, fakes only for what lies outside the product."""
