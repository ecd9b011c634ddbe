"""Stand-in clips: one decodable clip per camera, the reconstruction's frame count, the scaled size."""

from core.io.video import FrameRange, iter_frames, probe_clip
from studio.stand_in_clips import with_stand_in_clips


def test_one_clip_per_camera_with_every_frame(small_reconstruction, tmp_path):
    rec = with_stand_in_clips(small_reconstruction, tmp_path, downscale=4)
    assert len(rec.clips) == len(rec.cameras) and (rec.first_frame, rec.frame_step) == (0, 1)
    for clip, camera in zip(rec.clips, rec.cameras.cameras, strict=True):
        info = probe_clip(clip)
        assert info.num_frames == rec.num_frames
        assert (info.width, info.height) == (camera.width // 8 * 2, camera.height // 8 * 2)
        assert sum(1 for _ in iter_frames(info, FrameRange(0, 3))) == 3
