"""The configuration of a whole reconstruction: one config dataclass per stage, gathered."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.body.config import BodyConfig
from core.cameras.config import CameraConfig
from core.engine.association import AssociationConfig
from core.engine.fusion import FusionConfig
from core.engine.joint_speed import JointSpeedConfig
from core.engine.refinement import RefinementConfig
from core.engine.scale import ScaleConfig
from core.engine.sync import SyncConfig
from core.engine.tracking import TrackingConfig
from core.engine.world_tracking import WorldTrackingConfig
from core.nets.config import NetworksConfig
from core.perception.config import BlazePoseConfig
from core.scene.ground import GroundConfig


@dataclass(frozen=True)
class ReconstructionConfig:
    """Settings of every test-time stage; saved with each reconstruction."""

    perception: BlazePoseConfig = field(default_factory=BlazePoseConfig)
    cameras: CameraConfig = field(default_factory=CameraConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    association: AssociationConfig = field(default_factory=AssociationConfig)
    world_tracking: WorldTrackingConfig = field(default_factory=WorldTrackingConfig)
    refinement: RefinementConfig = field(default_factory=RefinementConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    joint_speed: JointSpeedConfig = field(default_factory=JointSpeedConfig)
    ground: GroundConfig = field(default_factory=GroundConfig)
    body: BodyConfig = field(default_factory=BodyConfig)
    networks: NetworksConfig = field(default_factory=NetworksConfig)
