"""The video pipeline's floor texture: frames spread over the range, each with where its own people are."""

import numpy as np

from core.engine.video_pipeline import _texture_frames
from core.io.video import FrameRange, probe_clips
from tests.core.io.test_video import coded_clip, read_code


def frame_coded_people(frame):
    """One mask per view whose shape spells the reconstruction frame number and the view."""
    return [np.zeros((frame + 1, view + 1), dtype=bool) for view in (0, 1)]


def test_texture_frames_are_at_most_count_spread_over_the_range_with_that_frame_s_people(tmp_path):
    clips = probe_clips([coded_clip(tmp_path / f"cam{v}.mp4", num_frames=12) for v in range(2)])
    frames = FrameRange(1, 12, 2)
    indices = frames.indices(12)  # clip frames 1, 3, …, 11 are reconstruction frames 0 … 5
    for count, expected in [
        (3, [1, 5, 9]),
        (4, [1, 5, 9]),
        (6, [1, 3, 5, 7, 9, 11]),
        (20, [1, 3, 5, 7, 9, 11]),
    ]:
        texture = list(_texture_frames(clips, frames, indices, frame_coded_people, count))
        assert len(texture) <= count
        assert [[read_code(image) for image in item.images] for item in texture] == [[c, c] for c in expected]
        for clip_frame, item in zip(expected, texture, strict=True):
            expected_people = frame_coded_people((clip_frame - 1) // 2)
            assert [m.shape for m in item.people] == [m.shape for m in expected_people]
