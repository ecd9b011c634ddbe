"""The joints' speed check on exact tracks: a joint taken from someone else for a frame or a stretch is
rejected and bridged, a fast but real motion (a throw) is kept, and the bound is a speed (the same
motion at 30 and 120 fps gives the same answer)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.config import ReconstructionConfig
from core.engine.fusion import FusionConfig, fuse
from core.engine.joint_speed import JointSpeedConfig, checked_persons, too_fast
from core.engine.pipeline import reconstruct_from_observations
from core.evaluation.synthetic import SyntheticConfig, make_scene
from tests.core.engine.scenes import exact_scene

CONFIG = JointSpeedConfig(max_speed=15.0)


def throw(fps: float, seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Two joints: a hip walking at 1.4 m/s and a hand that whips forward at up to 12 m/s (a throw)."""
    t = np.arange(round(seconds * fps)) / fps
    hip = np.stack([1.4 * t, np.zeros_like(t), np.full_like(t, 1.0)], axis=-1)
    swing = 0.5 * (1 - np.cos(2 * np.pi * np.clip((t - 0.4) / 0.25, 0, 1)))  # 0 → 1 → 0 over 0.25 s
    hand = hip + np.stack([0.3 + 0.9 * swing, np.zeros_like(t), 0.5 + 0.1 * swing], axis=-1)
    return np.stack([hip, hand], axis=1), np.arange(t.size)


@pytest.mark.parametrize("fps", [30.0, 60.0, 120.0])
def test_a_fast_real_motion_is_kept_and_a_jump_is_rejected_at_any_frame_rate(fps: float) -> None:
    joints, frames = throw(fps)
    peak = np.linalg.norm(np.diff(joints[:, 1], axis=0), axis=-1).max() * fps
    assert 10.0 < peak < 15.0  # the hand really is fast
    views = np.full(joints.shape[:2], 2)
    rejected, _ = too_fast(joints, frames, views, fps, CONFIG)
    assert not rejected.any()
    # The hand taken from someone 0.8 m away for 0.1 s (a stretch), then for one frame: both rejected.
    wrong = joints.copy()
    stretch = np.flatnonzero((frames / fps >= 0.1) & (frames / fps < 0.2))
    single = round(0.8 * fps)
    wrong[stretch, 1] += [0.0, 0.8, 0.0]
    wrong[single, 1] += [0.0, -0.8, 0.0]
    rejected, speed = too_fast(wrong, frames, views, fps, CONFIG)
    assert np.flatnonzero(rejected[:, 1]).tolist() == [*stretch.tolist(), single]
    assert not rejected[:, 0].any() and (speed[rejected] > 15.0).all()


def test_rejected_positions_stand_on_no_view_and_lie_between_their_neighbours() -> None:
    scene = exact_scene(persons=1, views=3, frames=30, seed=0)
    o = scene.observations
    (person,) = fuse(o, scene.observation_identity, scene.cameras, 30, FusionConfig())
    joints = person.joints.copy()
    original = joints.copy()
    joints[12:15, 20] += [0.0, 0.0, 1.0]  # the right wrist jumps up for three frames
    jumped = dataclasses.replace(person, joints=joints)
    (checked,), rejected = checked_persons([jumped], 30.0, CONFIG)
    assert sorted(zip(rejected.frame.tolist(), rejected.joint.tolist(), strict=True)) == [
        (12, 20),
        (13, 20),
        (14, 20),
    ]
    assert (checked.joint_views[12:15, 20] == 0).all() and (checked.joint_views[11, 20] > 0)
    expected = original[11, 20] + np.arange(1, 4)[:, None] / 4 * (original[15, 20] - original[11, 20])
    np.testing.assert_allclose(checked.joints[12:15, 20], expected, atol=1e-9)
    np.testing.assert_array_equal(np.delete(checked.joints, 20, axis=1), np.delete(original, 20, axis=1))


def test_clean_scenes_lose_no_joint_and_the_diagnostics_list_what_was_rejected() -> None:
    config = SyntheticConfig(persons=3, views=4, frames=60)
    scene = make_scene(config)
    clean = reconstruct_from_observations(scene.observations, scene.cameras, 60, config.fps)
    assert len(clean.diagnostics.rejected_joints) == 0
    # The same scene at a bound no walker keeps to: every moving joint is rejected somewhere.
    slow = dataclasses.replace(ReconstructionConfig(), joint_speed=JointSpeedConfig(max_speed=0.2))
    strict = reconstruct_from_observations(scene.observations, scene.cameras, 60, config.fps, slow)
    d = strict.diagnostics.rejected_joints
    assert len(d) > 0 and (d.speed > 0.2).all()
    assert set(d.person.tolist()) <= {p.person_id for p in strict.persons}
    # What the summary and the Inspect tab say of them.
    from studio.inspection import rejected_joints_markdown
    from studio.summary import summarize

    rows = summarize(strict)["person"]
    first = strict.persons[0].person_id
    assert sum(r["joint_speed_rejections"] for r in rows) == len(d)
    assert all(r["largest_joint_step_m"] is not None for r in rows)
    shown = rejected_joints_markdown(strict, first, 30)
    count = int((d.person == first).sum())
    assert f"**{count} joint positions of person {first} moved faster than 0.2 m/s**" in shown
    assert shown.count("\n| ") == min(count, 12) + 1  # the header row and the 12 nearest at most
    assert "No joint of person" in rejected_joints_markdown(clean, clean.persons[0].person_id, 30)
