"""Ray, started on this machine or joined at an address: the one place the studio imports ray.

Imported lazily (by ``batch`` and by the page started with ``--ray-address``), never by core.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from core.errors import InputError

CONNECT_TIMEOUT_S = 5.0
"""How long an address may take to answer before it counts as unreachable (Ray itself retries for
minutes)."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError("Ray is not installed: pip install -e '.[batch]' (ray==2.60.0)") from None
    return ray


def check_reachable(address: str) -> None:
    """Fail at once, naming the address, where nothing listens at ``HOST:PORT`` or ``ray://HOST:PORT``
    (``auto`` is left to Ray, which says at once when no local cluster runs)."""
    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise InputError(f"Ray address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise InputError(
            f"Ray address {address}: unreachable ({error.strerror or error}); start a cluster there with "
            "`ray start --head` or leave --address out to run on this machine"
        ) from None


class RayCluster:
    """A context manager: Ray joined at ``address`` (left running on exit) or, without one, a local
    Ray on ``num_cpus`` cores without a dashboard (shut down on exit)."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self._started_here = False
        self.ray: Any = None

    def __enter__(self) -> RayCluster:
        return self.connect()

    def connect(self) -> RayCluster:
        """Start or join Ray (nothing to do where this process already has it)."""
        ray = self.ray = import_ray()
        if ray.is_initialized():
            return self
        quiet = {"log_to_driver": False, "configure_logging": False}
        if self.address is None:
            ray.init(num_cpus=self.num_cpus, include_dashboard=False, **quiet)
            self._started_here = True
            return self
        check_reachable(self.address)
        try:
            ray.init(address=self.address, **quiet)
        except (ConnectionError, RuntimeError) as error:
            hint = ""
            if os.environ.get("RAY_AUTH_MODE") != "token":
                hint = (
                    "; a cluster with token authentication (`ray start` turns it on since Ray 2.59) needs "
                    "RAY_AUTH_MODE=token here, and its token in RAY_AUTH_TOKEN or ~/.ray/auth_token"
                )
            raise InputError(f"Ray address {self.address}: cannot join the cluster ({error}){hint}") from None
        return self

    def __exit__(self, *exc_info) -> None:
        if self._started_here:
            self.ray.shutdown()

    def capacity(self, cpus_per_task: float, gpus_per_task: float) -> int:
        """Tasks of this shape the cluster can run at once (at least 1: more then wait for resources).

        Raises:
            InputError: the cluster has no GPU and tasks ask for one.
        """
        resources = self.ray.cluster_resources()
        slots = [resources.get("CPU", 0) // cpus_per_task] if cpus_per_task > 0 else []
        if gpus_per_task > 0:
            if resources.get("GPU", 0) < gpus_per_task:
                raise InputError(
                    f"--gpus-per-task {gpus_per_task}: the Ray cluster has {resources.get('GPU', 0):g} GPUs"
                )
            slots.append(resources["GPU"] // gpus_per_task)
        return max(1, int(min(slots))) if slots else 1

    def remote(self, function: Callable, cpus: float, gpus: float, retries: int) -> Any:
        """``function`` as a Ray task of that shape, retried ``retries`` times when its worker dies."""
        return self.ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=retries)(function)
