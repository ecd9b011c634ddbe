"""Scene backends: what surrounds the people (the embedded default is a ground plane)."""
