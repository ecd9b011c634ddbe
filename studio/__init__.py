"""The studio around the engine: benchmarks, sessions and the command line (no UI code)."""
