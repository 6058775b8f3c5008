"""Which devices a run asks for (``--devices``) and which of them an adapter can use.

``--devices`` lists plain devices (cpu, gpu, tpu: every family runs on each) and device meshes
``<platform>:<N>`` (cpu:8, gpu:2: the distribution family runs split over N devices of that platform).
A CPU mesh needs N virtual devices in the test process, set up before the frameworks start:
``prepare_process`` does it from the environment (JAX: XLA's host platform device count; TensorFlow:
ELECTRA_CPU_DEVICES, which the TF adapters turn into logical devices).
"""
from __future__ import annotations

import os
import re

KNOWN_DEVICES = ("cpu", "gpu", "tpu")
_MESH = re.compile(r"(cpu|gpu|tpu):([0-9]+)")
#: XLA's flag for N virtual CPU devices in one process (read when JAX or TF's XLA starts)
HOST_DEVICE_FLAG = "--xla_force_host_platform_device_count"
#: how many logical CPU devices the TF adapters create (tf.config.set_logical_device_configuration)
CPU_DEVICES_VARIABLE = "ELECTRA_CPU_DEVICES"


def parse_devices(value: str) -> tuple[str, ...] | None:
    """``auto`` -> None (use whatever each adapter finds); ``cpu,gpu,cpu:8`` -> ("cpu", "gpu", "cpu:8")."""
    value = (value or "auto").strip().lower()
    if value == "auto":
        return None
    devices = tuple(dict.fromkeys(d.strip() for d in value.split(",") if d.strip()))
    unknown = [d for d in devices if d not in KNOWN_DEVICES and not _MESH.fullmatch(d)]
    small = [d for d in devices if _MESH.fullmatch(d) and int(_MESH.fullmatch(d)[2]) < 2]
    if unknown or small or not devices:
        raise ValueError(f"--devices: unknown device(s) {unknown or small or [value]}; expected 'auto' or a "
                         f"comma-separated list of {', '.join(KNOWN_DEVICES)} and meshes <platform>:<N> (N >= 2)")
    return devices


def devices_to_test(requested: tuple[str, ...] | None, present: list[str]) -> list[str]:
    """Plain devices to parametrize over: the requested ones (present or not; a mesh's platform counts as
    requested, ``cpu:8`` alone runs every family on cpu too), or for auto those present."""
    if requested is None:
        return [d for d in KNOWN_DEVICES if d in present] or ["cpu"]
    return list(dict.fromkeys(d.split(":")[0] for d in requested))


def meshes(requested: tuple[str, ...] | None) -> list[tuple[str, int]]:
    """The requested device meshes as (platform, N); none for auto."""
    return [(m[1], int(m[2])) for d in requested or () for m in [_MESH.fullmatch(d)] if m]


def prepare_process(requested: tuple[str, ...] | None) -> None:
    """Make the largest CPU mesh requested available to this process: XLA's host device count in
    XLA_FLAGS (effective only if JAX has not started yet) and ELECTRA_CPU_DEVICES for TensorFlow."""
    count = max((n for platform, n in meshes(requested) if platform == "cpu"), default=0)
    if not count:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if HOST_DEVICE_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {HOST_DEVICE_FLAG}={count}".strip()
    os.environ.setdefault(CPU_DEVICES_VARIABLE, str(count))


def absence_reason(adapter_name: str, device: str, present: list[str]) -> str:
    return (f"device {device!r} is not available to {adapter_name} on this machine "
            f"(present: {', '.join(present) or 'none'})")
