"""Detection and persons on real footage other than the demo: CMU's Panoptic dome (five HD views from
above, three people per instant), scored against the people in full view labelled by hand."""

import numpy as np
import pytest

from core.config import ReconstructionConfig
from studio.assets import DOME, examples_directory
from studio.dome_bench import detection_config, score_dome

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (examples_directory() / DOME).is_dir(),
        reason="dome clips not installed (python -m studio assets)",
    ),
]


def test_recall_and_finer_tiles_find_the_people_the_detector_alone_misses():
    default = ReconstructionConfig()
    alone = score_dome(detection_config(default, fine_tile_scale=0.0, recall=False))
    recall = score_dome(default)
    both = score_dome(detection_config(default, fine_tile_scale=0.5, recall=True))
    assert (alone.labelled == both.labelled).all() and alone.labelled.sum() == 55

    def share(score):
        return score.detected.sum() / score.labelled.sum()

    assert share(alone) < 0.78 and share(recall) >= 0.83 and share(both) >= 0.87  # 74.5, 85.5, 89.1 %
    for better, worse in ((recall, alone), (both, recall)):  # no view loses anyone
        assert (better.detected.sum(axis=0) >= worse.detected.sum(axis=0)).all()
    assert (both.detected.sum(axis=0) / both.labelled.sum(axis=0)).min() >= 0.8
    # Persons per instant (3 each): no instant worse, and none off by more than one.
    assert (np.abs(both.persons - 3) <= np.abs(alone.persons - 3)).all() and (both.persons == 3).sum() >= 4
    assert np.abs(recall.persons - 3).max() <= 1
