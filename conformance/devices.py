"""Which devices a run asks for (``--devices``) and which of them an adapter can use."""
from __future__ import annotations

KNOWN_DEVICES = ("cpu", "gpu", "tpu")


def parse_devices(value: str) -> tuple[str, ...] | None:
    """``auto`` -> None (use whatever each adapter finds); ``cpu,gpu`` -> ("cpu", "gpu")."""
    value = (value or "auto").strip().lower()
    if value == "auto":
        return None
    devices = tuple(dict.fromkeys(d.strip() for d in value.split(",") if d.strip()))
    unknown = [d for d in devices if d not in KNOWN_DEVICES]
    if unknown or not devices:
        raise ValueError(f"--devices: unknown device(s) {unknown or [value]}; expected 'auto' or a "
                         f"comma-separated subset of {', '.join(KNOWN_DEVICES)}")
    return devices


def devices_to_test(requested: tuple[str, ...] | None, present: list[str]) -> list[str]:
    """Devices to parametrize over: the requested ones (present or not), or for auto those present."""
    if requested is None:
        return [d for d in KNOWN_DEVICES if d in present] or ["cpu"]
    return list(requested)


def absence_reason(adapter_name: str, device: str, present: list[str]) -> str:
    return (f"device {device!r} is not available to {adapter_name} on this machine "
            f"(present: {', '.join(present) or 'none'})")
