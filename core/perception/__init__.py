"""Per-view perception: people in each frame of each clip, as engine observations."""
