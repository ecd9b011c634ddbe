"""Pi3X: multi-view images to per-pixel 3D points, confidences, camera poses and a metric scale.

A DINOv2 encoder turns each frame into patch tokens; a decoder alternates attention within each frame
and across all frames; head decoders and heads then read the last two decoder layers. The state dict
matches the published checkpoint, including its multimodal branch (depth / ray / pose conditioning),
which is kept as parameters only: the forward here is the images-only path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import nn

from core.nets.image_map import IMAGENET_MEAN, IMAGENET_STD
from core.nets.pi3x.decoders import HEAD_DIM, ContextDecoder, HeadDecoder, decoder_block
from core.nets.pi3x.heads import CameraHead, ConvHead, pose_matrix
from core.nets.pi3x.rope2d import RoPE2D, token_positions
from core.nets.vit import DinoV2, PatchEmbed

PATCH_SIZE = 14
MAX_LOG_DEPTH = 15.0
"""Raw log-depth is clamped here before ``exp`` so that an untrained or extreme output stays finite."""


def depth_encoder(dim: int, depth: int, num_registers: int) -> DinoV2:
    """The multimodal depth encoder: DINOv2 on (depth, mask), patch embedding last as in the checkpoint."""
    encoder = DinoV2(dim, depth, dim // HEAD_DIM, num_registers=num_registers)
    del encoder.patch_embed
    encoder.patch_embed = PatchEmbed(PATCH_SIZE, 2, dim)
    return encoder


class Pi3X(nn.Module):
    """Pi3X with checkpoint-compatible names; the defaults are the released model."""

    def __init__(
        self,
        encoder_depth: int = 24,
        decoder_depth: int = 36,
        point_decoder_depth: int = 5,
        conf_decoder_depth: int = 5,
        camera_decoder_depth: int = 5,
        metric_decoder_depth: int = 5,
        dim: int = 1024,
        camera_dim: int = 512,
        metric_dim: int = 512,
        num_registers: int = 5,
        encoder_registers: int = 4,
        use_multimodal: bool = True,
        depth_encoder_depth: int = 24,
        pose_inject_depth: int = 5,
        head_width: int = 256,
    ) -> None:
        """``head_width``: channels of the point and confidence heads' first upsampling stage (halved at
        each of the next two; the released model's 256)."""
        super().__init__()
        if decoder_depth < 2:
            raise ValueError("the heads read the last two decoder blocks, so the decoder needs at least two")
        self.num_registers = num_registers
        self.use_multimodal = use_multimodal
        self.rope = RoPE2D(base=100.0)

        self.encoder = DinoV2(dim, encoder_depth, dim // HEAD_DIM, num_registers=encoder_registers)
        self.decoder = nn.ModuleList(decoder_block(dim, self.rope) for _ in range(decoder_depth))
        self.register_token = nn.Parameter(torch.zeros(1, 1, num_registers, dim))
        if use_multimodal:
            self.depth_encoder = depth_encoder(dim, depth_encoder_depth, encoder_registers)
            self.depth_emb = nn.Parameter(torch.zeros(1, 1, dim))
            self.ray_embed = PatchEmbed(PATCH_SIZE, 2, dim)
            self.pose_inject_blk = nn.ModuleList(decoder_block(dim, None) for _ in range(pose_inject_depth))

        features = 2 * dim
        self.point_decoder = HeadDecoder(features, dim, dim, point_decoder_depth, self.rope)
        head_dims = dict(stage_dims=(head_width, head_width // 2, head_width // 4), last_dim=head_width // 8)
        self.point_head = ConvHead(dim, out_channels=(2, 1), **head_dims)
        self.camera_decoder = HeadDecoder(features, dim, camera_dim, camera_decoder_depth, self.rope)
        self.camera_head = CameraHead(camera_dim)
        self.metric_token = nn.Parameter(torch.zeros(1, 1, features))
        self.metric_decoder = ContextDecoder(
            features, metric_dim, metric_dim, metric_decoder_depth, self.rope
        )
        self.metric_head = nn.Linear(metric_dim, 1)
        self.conf_decoder = HeadDecoder(features, dim, dim, conf_decoder_depth, self.rope)
        self.conf_head = ConvHead(dim, out_channels=(1,), **head_dims)

        self.register_buffer("image_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("image_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    @classmethod
    def from_key_shapes(cls, shapes: Mapping[str, Sequence[int]]) -> Pi3X:
        """The model these keys and shapes describe (depths, widths, multimodal or not); whether the keys
        then match it exactly is checked by ``core.nets.checkpoints.build_from_keys``.

        Builds under the caller's default device, so wrap it in ``torch.device("meta")`` to only plan.
        """
        return cls(**cls.arguments_from_key_shapes(shapes))

    @staticmethod
    def arguments_from_key_shapes(shapes: Mapping[str, Sequence[int]]) -> dict[str, int | bool]:
        """The constructor's arguments that these keys and shapes describe."""

        def count(prefix: str) -> int:
            pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
            return len({match[1] for key in shapes if (match := pattern.match(key))})

        use_multimodal = "depth_emb" in shapes
        return dict(
            encoder_depth=count("encoder.blocks."),
            decoder_depth=count("decoder."),
            point_decoder_depth=count("point_decoder.blocks."),
            conf_decoder_depth=count("conf_decoder.blocks."),
            camera_decoder_depth=count("camera_decoder.blocks."),
            metric_decoder_depth=count("metric_decoder.blocks."),
            dim=shapes["register_token"][-1],
            camera_dim=shapes["camera_decoder.linear_out.weight"][0],
            metric_dim=shapes["metric_decoder.projects_x.weight"][0],
            num_registers=shapes["register_token"][-2],
            encoder_registers=shapes.get("encoder.register_tokens", (1, 0))[1],
            use_multimodal=use_multimodal,
            depth_encoder_depth=count("depth_encoder.blocks.") if use_multimodal else 0,
            pose_inject_depth=count("pose_inject_blk.") if use_multimodal else 0,
            head_width=shapes["point_head.upsample_blocks.0.0.0.weight"][1],
        )

    def forward(
        self, images: Float[torch.Tensor, "B N 3 H W"], trace: dict[str, Any] | None = None
    ) -> dict[str, torch.Tensor]:
        """Reconstruct ``N`` views in [0, 1] (H, W multiples of 14); ``trace`` collects intermediates.

        Returns metric ``points`` (B, N, H, W, 3) in the predicted world frame and ``local_points`` in
        each camera's frame; ``conf`` logits (B, N, H, W, 1); camera-to-world ``camera_poses``
        (B, N, 4, 4, OpenCV axes, metric translation); the ``metric`` scale (B,); unit ``rays``.
        """
        return self.reconstruct(images, trace)[0]

    def reconstruct(
        self, images: Float[torch.Tensor, "B N 3 H W"], trace: dict[str, Any] | None = None
    ) -> tuple[dict[str, torch.Tensor], Float[torch.Tensor, "BN T F"]]:
        """``forward``'s outputs and the decoder features they came from (see ``decode``), which CHROMM
        reads at each person's head."""
        batch, frames, _, height, width = images.shape
        if height % PATCH_SIZE or width % PATCH_SIZE:
            raise ValueError(f"image size {height}x{width} is not a multiple of the {PATCH_SIZE}-pixel patch")
        rows, cols = height // PATCH_SIZE, width // PATCH_SIZE
        normalised = ((images - self.image_mean) / self.image_std).flatten(0, 1)
        patches = self.encode(normalised, rows, cols, trace)
        features, positions = self.decode(patches, batch, rows, cols, trace)
        return self.predict(features, positions, batch, rows, cols, trace), features

    def encode(
        self, images: Float[torch.Tensor, "BN 3 H W"], rows: int, cols: int, trace: dict[str, Any] | None
    ) -> Float[torch.Tensor, "BN P D"]:
        """Normalised patch tokens of every frame."""
        block_outputs: list[torch.Tensor] | None = None if trace is None else []
        tokens = self.encoder(images, block_outputs)
        if trace is not None:
            trace["encoder_pos_embed"] = self.encoder.position_embedding(rows, cols)
            trace["encoder_blocks"] = block_outputs
            trace["encoder_tokens"] = tokens
        return self.encoder.split_tokens(tokens)[2]

    def decode(
        self,
        patches: Float[torch.Tensor, "BN P D"],
        batch: int,
        rows: int,
        cols: int,
        trace: dict[str, Any] | None,
    ) -> tuple[Float[torch.Tensor, "BN T F"], Int[torch.Tensor, "BN T 2"]]:
        """Registers + patches through the decoder; even blocks attend within a frame, odd ones across frames.

        Returns the concatenated outputs of the last two blocks (F = 2·D channels) and the tokens' RoPE
        positions.
        """
        registers = self.register_token.expand(batch, len(patches) // batch, -1, -1).flatten(0, 1)
        x = torch.cat([registers, patches], dim=1)
        frame_shape, scene_shape = x.shape, (batch, -1, x.shape[-1])
        positions = token_positions(rows, cols, self.num_registers, x.device).expand(len(x), -1, -1)
        scene_positions = positions.reshape(batch, -1, 2)
        block_outputs = []
        for index, block in enumerate(self.decoder):
            previous = x
            if index % 2:
                x = block(x.reshape(scene_shape), scene_positions).reshape(frame_shape)
            else:
                x = block(x, positions)
            if trace is not None:
                block_outputs.append(x)
        features = torch.cat([previous, x], dim=-1)
        if trace is not None:
            trace["decoder_blocks"] = block_outputs
            trace["decoder_concat"] = features
        return features, positions

    def predict(
        self,
        features: Float[torch.Tensor, "BN T F"],
        positions: Int[torch.Tensor, "BN T 2"],
        batch: int,
        rows: int,
        cols: int,
        trace: dict[str, Any] | None,
    ) -> dict[str, torch.Tensor]:
        """Head decoders (under any autocast), then the heads and the geometry in float32."""
        point_tokens = self.point_decoder(features, positions)
        camera_tokens = self.camera_decoder(features, positions)
        scene_positions = positions.reshape(batch, -1, 2)
        metric_tokens = self.metric_decoder(
            self.metric_token.expand(batch, -1, -1),
            features.reshape(batch, -1, features.shape[-1]),
            scene_positions.new_zeros(batch, 1, 2),
            scene_positions,
        )
        conf_tokens = self.conf_decoder(features, positions)
        patch_start = self.num_registers
        with torch.autocast(features.device.type, enabled=False):
            xy, log_depth = self.point_head(point_tokens[:, patch_start:].float(), rows, cols)
            (conf,) = self.conf_head(conf_tokens[:, patch_start:].float(), rows, cols)
            camera = self.camera_head(camera_tokens[:, patch_start:].float())
            metric_raw = self.metric_head(metric_tokens.float())
            outputs = assemble_geometry(
                *(maps.permute(0, 2, 3, 1).unflatten(0, (batch, -1)) for maps in (xy, log_depth, conf)),
                camera.rotation.unflatten(0, (batch, -1)),
                camera.translation.unflatten(0, (batch, -1)),
                metric_raw.reshape(batch).exp(),
            )
        if trace is not None:
            trace.update(
                point_decoder=point_tokens,
                camera_decoder=camera_tokens,
                metric_decoder=metric_tokens,
                conf_decoder=conf_tokens,
                point_xy=xy,
                point_log_depth=log_depth,
                camera_features=camera.features,
                camera_translation=camera.translation,
                camera_rotation_9d=camera.rotation_9d,
                metric_raw=metric_raw,
            )
        return outputs


def assemble_geometry(
    xy: Float[torch.Tensor, "B N H W 2"],
    log_depth: Float[torch.Tensor, "B N H W 1"],
    conf: Float[torch.Tensor, "B N H W 1"],
    rotation: Float[torch.Tensor, "B N 3 3"],
    translation: Float[torch.Tensor, "B N 3"],
    metric: Float[torch.Tensor, " B"],
) -> dict[str, torch.Tensor]:
    """Metric camera-frame and world points, rays and poses from the raw head outputs.

    The network predicts each pixel as ``(x/z, y/z)`` and ``log z`` in a scale-free frame; the metric
    token's scale multiplies depths and camera translations alike.
    """
    scale = metric[:, None, None]
    depth = torch.exp(log_depth.clamp(max=MAX_LOG_DEPTH))
    local_points = torch.cat([xy * depth, depth], dim=-1) * scale[..., None, None]
    metric_translation = translation * scale
    points = torch.einsum("bnij,bnhwj->bnhwi", rotation, local_points) + metric_translation[:, :, None, None]
    return {
        "points": points,
        "local_points": local_points,
        "conf": conf,
        "camera_poses": pose_matrix(rotation, metric_translation),
        "metric": metric,
        "rays": F.normalize(torch.cat([xy, torch.ones_like(depth)], dim=-1), dim=-1),
    }
