"""Engines for tests: one that always fails, and one that counts its calls."""

from tracks.engine import Engine


class FailingEngine(Engine):
    name = "failing"
    calls = 0

    def generate(self, spec, progress=None):
        type(self).calls += 1
        if progress:
            progress(0.5)
        raise RuntimeError("synthesizer on fire")
