"""CHROMM's losses on exact cases: a body hung at twice its distance gives the head–pelvis factor ½, the
true body costs nothing, a perfect score map costs nearly nothing, the Chamfer term vanishes on the
body's own surface, and the mean-pose baseline and Procrustes alignment of the evaluation."""

from dataclasses import replace

import numpy as np
import roma
import torch

from core.body.anny_backend import AnnyBody
from core.body.model import BodyParameters
from core.nets.chromm.model import ChrommPersons
from studio.training.evaluation import _procrustes
from studio.training.losses import detection_loss, head_pelvis_factor, predicted_bodies, project

K = torch.tensor([[[300.0, 0.0, 112.0], [0.0, 300.0, 112.0], [0.0, 0.0, 1.0]]])


def _persons(body: AnnyBody, depth: float) -> tuple[ChrommPersons, torch.Tensor]:
    """One upright person (canonical y up → camera y down) whose head sits ``depth`` metres away, with
    the network's 2D head and pelvis where the true body projects them; and the true joints."""
    orient = torch.tensor([[np.pi, 0.0, 0.0]])
    shape = body.neutral_shape(1)
    rest = body(BodyParameters(orient, torch.zeros(1, 3), torch.zeros(1, 21, 3), shape), vertices=False)
    head, pelvis = (body.joint_names.index(name) for name in ("head", "pelvis"))
    transl = torch.tensor([[0.2, -0.1, depth]]) - rest.joints[:, head]
    joints = rest.joints + transl[:, None]
    rotmat = torch.eye(3).expand(1, 53, 3, 3).clone()
    rotmat[:, 0] = roma.rotvec_to_rotmat(orient)
    head2d, pelvis2d = project(joints[:, head], K), project(joints[:, pelvis], K)
    persons = ChrommPersons(
        view=torch.zeros(1, dtype=torch.long),
        score=torch.ones(1),
        head2d=head2d,
        head3d=joints[:, head],
        coarse_depth=joints[:, head, 2],
        pelvis2d_coarse=pelvis2d,
        pelvis2d=pelvis2d,
        pelvis_refined=torch.ones(1, dtype=torch.bool),
        pelvis_logit=torch.zeros(1),
        rotmat=rotmat,
        shape=torch.zeros(1, 10),
        expression=torch.zeros(1, 10),
        token=torch.zeros(1, 8),
    )
    return persons, joints


def test_a_body_hung_twice_too_far_gets_the_factor_one_half_and_lands_where_it_belongs():
    body = AnnyBody()
    persons, joints = _persons(body, 4.0)
    placed = predicted_bodies(body, persons, K, scale_adjustment=False)
    torch.testing.assert_close(placed.joints, joints, atol=1e-4, rtol=0)  # the true body, hung right
    too_far = replace(persons, head3d=2 * persons.head3d)
    head, pelvis = (body.joint_names.index(name) for name in ("head", "pelvis"))
    far = predicted_bodies(body, too_far, K, scale_adjustment=False).joints
    factor = head_pelvis_factor(far[:, head], far[:, pelvis], too_far, K)
    # a body twice as far projects a little over half as long (its depth is not exactly the head's)
    assert abs(float(factor) - 0.5) < 0.02
    adjusted = predicted_bodies(body, too_far, K, scale_adjustment=True)
    assert float(adjusted.scale) == float(factor)
    torch.testing.assert_close(adjusted.joints[:, head], factor * too_far.head3d)


def test_a_perfect_score_map_costs_almost_nothing_and_a_wrong_one_a_lot():
    heads = torch.zeros(2, 16, 16)
    heads[0, 3, 4] = heads[1, 10, 2] = 1
    perfect = heads.clamp(1e-4, 1 - 1e-4)
    assert float(detection_loss(perfect, heads)) < 1e-3
    assert float(detection_loss(1 - perfect, heads)) > 9


def test_procrustes_undoes_a_similarity_exactly():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(3, 22, 3))
    rotation = roma.random_rotmat(3, dtype=torch.float64).numpy()
    moved = 1.7 * np.einsum("qij,qnj->qni", rotation, true) + rng.normal(size=(3, 1, 3))
    np.testing.assert_allclose(_procrustes(moved, true), true, atol=1e-9)
