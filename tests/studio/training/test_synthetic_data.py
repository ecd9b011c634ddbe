"""Rendered synthetic scenes: the renders against analytic answers (ray–plane and ray–triangle depths,
re-posed bodies), the layout's promises, and the folder's resumable, settings-checked life cycle."""

import json
from dataclasses import fields, replace

import numpy as np
import pytest
import torch

from core.body.anny_backend import JOINT_NAMES as ANNY_JOINTS
from core.body.anny_backend import AnnyBody
from core.body.config import AnnyConfig
from core.body.model import BodyParameters
from core.errors import InputError
from studio.training.make_data import MakeSynthetic, SyntheticScenes, scene_path
from studio.training.render_scenes import BODY_PARTS, MIN_VISIBLE_FRACTION, SceneRenderer
from studio.training.sample import MultiViewSample
from studio.training.scene_layout import LayoutConfig, sample_layout

SIZE = 96


@pytest.fixture(scope="module")
def body():
    return AnnyBody(AnnyConfig())


@pytest.fixture(scope="module")
def renderer():
    return SceneRenderer()


@pytest.fixture(scope="module")
def rendered(body, renderer):
    """(layout, sample) of three random scenes with every kind of object."""
    layouts = [sample_layout(np.random.default_rng([7, i]), body, LayoutConfig(), SIZE) for i in range(3)]
    return [(layout, renderer.render(layout, f"scene {i}")) for i, layout in enumerate(layouts)]


def _pixel_rays(K: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Camera-frame rays (z = 1) through the centres of pixels (rows, cols), (N, 3)."""
    return np.stack([cols, rows, np.ones_like(cols)], axis=-1) @ np.linalg.inv(K.astype(float)).T


def _first_hit_depth(rays: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Naive reference: the z of each ray's (from the camera centre) nearest hit among ``triangles``
    (F, 3, 3, camera frame), Möller–Trumbore against every triangle; inf where it hits none."""
    a, e1, e2 = triangles[:, 0], triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]
    p = np.cross(rays[:, None], e2[None])  # (N, F, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = 1.0 / np.einsum("nfi,fi->nf", p, e1)
        s = -a[None]  # ray origin minus the first corner
        u = np.einsum("fi,nfi->nf", s[0], p) * inverse
        q = np.cross(s, e1[None])  # (1, F, 3)
        v = np.einsum("ni,fi->nf", rays, q[0]) * inverse
        t = np.einsum("fi,fi->f", e2, q[0])[None] * inverse
    hit = (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    return np.where(hit, t, np.inf).min(axis=1)


def test_floor_depth_is_the_ray_plane_depth(body, renderer):
    layout = sample_layout(np.random.default_rng(3), body, LayoutConfig(boxes=(0, 0), walls=(0, 0)), SIZE)
    sample = renderer.render(layout, "floor")
    for v in range(sample.num_views):
        rows, cols = np.nonzero((sample.masks[v] == -1) & np.isfinite(sample.depth[v]))  # the floor only
        assert len(rows) > SIZE * SIZE / 4
        world_rays = _pixel_rays(sample.K[v], rows, cols) @ sample.R[v].astype(float)  # R^T ray
        height = layout.cameras.centers[v, 2]
        expected = height / -world_rays[:, 2]  # z-depth: the camera-frame ray has z = 1
        np.testing.assert_allclose(sample.depth[v, rows, cols], expected, rtol=1e-3)


def test_body_depth_is_the_first_hit_of_the_pixel_ray(rendered, renderer):
    layout, sample = rendered[0]
    for v in range(sample.num_views):
        for p in range(sample.num_persons):
            rows, cols = np.nonzero(sample.masks[v] == p)
            camera_vertices = layout.people.vertices[p] @ layout.cameras.R[v].T + layout.cameras.t[v]
            expected = _first_hit_depth(_pixel_rays(sample.K[v], rows, cols), camera_vertices[renderer.faces])
            hit = np.isfinite(expected)
            assert hit.mean() > 0.97  # a silhouette pixel may miss by rounding
            error = np.abs(sample.depth[v, rows, cols][hit] - expected[hit])
            assert np.mean(error < 1e-3) > 0.99 and error.max() < 0.05  # a grazing ray may pick another fold


def test_a_visible_head_projects_into_its_own_mask_unless_something_nearer_hides_it(rendered):
    checked = 0
    for layout, sample in rendered:
        head = layout.people.joints[:, ANNY_JOINTS.index("head")]
        for v, p in zip(*np.nonzero(sample.visible), strict=True):
            col, row = np.round(sample.head2d[v, p]).astype(int)
            window = sample.masks[v, max(row - 2, 0) : row + 3, max(col - 2, 0) : col + 3]
            head_depth = (layout.cameras.R[v] @ head[p] + layout.cameras.t[v])[2]
            assert (window == p).any() or sample.depth[v, row, col] < head_depth - 0.05
            checked += 1
    assert checked >= 6


def test_masks_depth_and_visible_agree(rendered):
    for _, sample in rendered:
        P = sample.num_persons
        assert sample.masks.dtype == np.int16 and sample.masks.min() >= -1 and sample.masks.max() < P
        assert np.isfinite(sample.depth[sample.masks >= 0]).all()
        counts = (sample.masks[:, None] == np.arange(P)[None, :, None, None]).sum(axis=(2, 3))  # (V, P)
        inside = np.all((sample.head2d >= -0.5) & (sample.head2d < SIZE - 0.5), axis=-1)
        np.testing.assert_array_equal(sample.visible, inside & (counts >= MIN_VISIBLE_FRACTION * SIZE**2))
        assert sample.visible.any()


def test_people_stand_on_the_floor_and_keep_apart(rendered):
    gap = LayoutConfig().person_gap
    for layout, _ in rendered:
        vertices = layout.people.vertices
        np.testing.assert_allclose(vertices[..., 2].min(axis=1), 0.0, atol=1e-5)
        for i in range(len(vertices)):
            for j in range(i):
                xy_i, xy_j = vertices[i, :, :2], vertices[j, :, :2]
                assert np.linalg.norm(xy_i[:, None] - xy_j[None], axis=-1).min() >= gap


def test_camera_frame_bodies_repose_into_the_camera_frame(rendered, body):
    layout, sample = rendered[1]
    V, P = sample.num_views, sample.num_persons
    posed = body(
        BodyParameters(
            global_orient=torch.as_tensor(sample.global_orient.reshape(V * P, 3)),
            transl=torch.as_tensor(sample.transl.reshape(V * P, 3)),
            body_pose=torch.as_tensor(sample.body_pose.reshape(V * P, 21, 3)),
            shape=torch.as_tensor(np.tile(sample.shape, (V, 1))),
        )
    )
    vertices = posed.vertices.numpy().reshape(V, P, -1, 3)
    expected = np.einsum("vij,pnj->vpni", layout.cameras.R, layout.people.vertices)
    np.testing.assert_allclose(vertices, expected + layout.cameras.t[:, None, None], atol=2e-4)
    head = posed.joints.numpy().reshape(V, P, -1, 3)[:, :, ANNY_JOINTS.index("head")]
    projected = np.einsum("vij,vpj->vpi", sample.K, head)
    np.testing.assert_allclose(sample.head2d, projected[..., :2] / projected[..., 2:], atol=1e-2)


def test_body_parts_tell_left_from_right(renderer, body):
    rest = body(
        BodyParameters(torch.zeros(1, 3), torch.zeros(1, 3), torch.zeros(1, 21, 3), body.neutral_shape(1))
    )
    x = rest.vertices[0, :, 0].numpy()  # canonical frame: left is +x, the arms out along ±x
    for limb in ("upper_arm", "lower_arm", "hand", "upper_leg", "foot"):
        left = renderer.parts == BODY_PARTS.index(f"left_{limb}")
        right = renderer.parts == BODY_PARTS.index(f"right_{limb}")
        assert left.sum() > 5 and right.sum() > 5
        assert (x[left] > 0).all() and (x[right] < 0).all()


def test_a_scene_is_a_function_of_its_seed_and_index(rendered, body, renderer):
    layout = sample_layout(np.random.default_rng([7, 2]), body, LayoutConfig(), SIZE)
    again = renderer.render(layout, "scene 2")
    for f in fields(MultiViewSample):
        np.testing.assert_array_equal(getattr(again, f.name), getattr(rendered[2][1], f.name))


def test_sample_round_trip(rendered, tmp_path):
    sample = rendered[0][1]
    loaded = MultiViewSample.load(sample.save(tmp_path / "one.npz"))
    for f in fields(MultiViewSample):
        value, back = getattr(sample, f.name), getattr(loaded, f.name)
        assert type(back) is type(value) and getattr(back, "dtype", None) == getattr(value, "dtype", None)
        np.testing.assert_array_equal(back, value)


def test_make_synthetic_resumes_identically_and_refuses_other_settings(tmp_path, capsys):
    job = MakeSynthetic(out=tmp_path / "scenes", scenes=3, seed=4, image_size=64, workers=2)
    assert job.run() == job.out  # two spawned workers
    assert str(job.out) in capsys.readouterr().out
    first = [MultiViewSample.load(scene_path(job.out, i)) for i in range(3)]
    kept = {
        i: (scene_path(job.out, i).read_bytes(), scene_path(job.out, i).stat().st_mtime_ns) for i in (0, 2)
    }
    scene_path(job.out, 1).unlink()

    replace(job, workers=1).run()  # in this process
    remade = MultiViewSample.load(scene_path(job.out, 1))
    for f in fields(MultiViewSample):
        np.testing.assert_array_equal(getattr(remade, f.name), getattr(first[1], f.name))
    for i, (data, mtime) in kept.items():
        assert (
            scene_path(job.out, i).read_bytes() == data and scene_path(job.out, i).stat().st_mtime_ns == mtime
        )

    with pytest.raises(InputError, match=r"scenes.*seed: 4 there, 5 now") as error:
        replace(job, seed=5).run()
    assert str(job.out) in str(error.value)
    with pytest.raises(InputError, match=r"layout\.views: \[2, 4\] there, \[3, 3\] now"):
        replace(job, layout=LayoutConfig(views=(3, 3))).run()

    dataset = SyntheticScenes(job.out)
    assert len(dataset) == 3 and dataset.settings == job.settings()
    np.testing.assert_array_equal(dataset[1].images, first[1].images)


def test_other_folders_are_refused(tmp_path):
    with pytest.raises(InputError, match=str(tmp_path)):
        SyntheticScenes(tmp_path)  # empty
    (tmp_path / "meta.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InputError, match="not a synthetic scene folder"):
        SyntheticScenes(tmp_path)
    with pytest.raises(InputError, match="not a synthetic scene folder"):
        MakeSynthetic(out=tmp_path, scenes=1, workers=1).run()
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"")
    with pytest.raises(InputError, match=f"{foreign}: not empty"):
        MakeSynthetic(out=foreign, scenes=1, workers=1).run()
    started = tmp_path / "started"
    MakeSynthetic(out=started, scenes=0, workers=1).run()
    with pytest.raises(InputError, match=f"{started}: no scenes"):
        SyntheticScenes(started)


def test_a_layout_that_cannot_be_drawn_is_refused():
    with pytest.raises(InputError, match=r"persons \(0, 2\).*views \(3, 2\)"):
        LayoutConfig(persons=(0, 2), views=(3, 2))
