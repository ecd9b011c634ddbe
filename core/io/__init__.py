"""Readers and writers of what users bring: video clips and camera calibrations."""
