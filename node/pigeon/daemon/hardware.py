"""The hardware and its stand-ins, chosen by config: radio, display and buttons.

Hardware modules are imported here only when chosen (luma and RPi.GPIO inside the drivers, BlueZ
inside `pigeon.transport.ble`), so a laptop runs the node with `sim`, `png` and `virtual`.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pigeon.appmesh.fragment import MAX_VALUE_LENGTH as APP_MAX_VALUE_LENGTH
from pigeon.config import ButtonsSection, DisplaySection, RadioSection
from pigeon.drivers import Buttons, Display, GpioButtons, PngDisplay, Ssd1306Display, VirtualButtons
from pigeon.transport.base import Transport
from pigeon.transport.sim import APP_SERVICE, BITCHAT_SERVICE, RadioParams, SimMedium

BUTTON_NEXT: Final = "a"  # buttons.next_pin
BUTTON_SELECT: Final = "b"  # buttons.select_pin
BLE_MODULE: Final = "pigeon.transport.ble.transport"  # BlueZ libraries load lazily in it
# The longest bitchat packet a simulated link carries: one GATT value (512 bytes).
BITCHAT_FRAME_LIMIT: Final = 512

TransportFactory = Callable[[], Transport]


@dataclass(frozen=True, slots=True)
class RadioTransports:
    """Every service's transport on one BLE adapter, made together: our mesh's always, the Pigeon
    app's and bitchat's when they are on (None when off)."""

    mesh: Transport
    app: Transport | None = None
    bitchat: Transport | None = None


RadioFactory = Callable[[], RadioTransports]


class HardwareUnavailable(Exception):
    """The configured hardware (or its driver) is not there; the message says which."""


def make_display(section: DisplaySection) -> Display | None:
    """The configured panel, or None for "none". Raises DeviceNotFound for a missing panel."""
    if section.kind == "none":
        return None
    if section.kind == "png":
        return PngDisplay()
    return Ssd1306Display(
        port=section.i2c_bus, address=section.i2c_address, controller=section.kind
    )


def make_buttons(section: ButtonsSection) -> Buttons | None:
    """The configured buttons ("a" on next_pin, "b" on select_pin), or None for "none"."""
    if section.kind == "none":
        return None
    if section.kind == "virtual":
        return VirtualButtons((BUTTON_NEXT, BUTTON_SELECT))
    return GpioButtons({BUTTON_NEXT: section.next_pin, BUTTON_SELECT: section.select_pin})


def sim_transport_factory(
    medium: SimMedium, node_id: str, position: tuple[float, float]
) -> TransportFactory:
    """A fresh `SimTransport` at `position` on `medium` for each (re)start of the mesh."""
    x, y = position
    return lambda: medium.transport(node_id, x, y)


def sim_app_transport_factory(
    medium: SimMedium, node_id: str, position: tuple[float, float]
) -> TransportFactory:
    """The node's app-service `SimTransport` at `position`: the app's channel of the medium,
    offering the longest value length an app fragment can use (510)."""
    x, y = position
    return lambda: medium.transport(
        node_id, x, y, service=APP_SERVICE, frame_limit=APP_MAX_VALUE_LENGTH
    )


def sim_bitchat_transport_factory(
    medium: SimMedium, node_id: str, position: tuple[float, float]
) -> TransportFactory:
    """The node's bitchat-service `SimTransport` at `position`: bitchat's channel of the medium."""
    x, y = position
    return lambda: medium.transport(
        node_id, x, y, service=BITCHAT_SERVICE, frame_limit=BITCHAT_FRAME_LIMIT
    )


def make_sim_medium(seed: int | None = None) -> SimMedium:
    """A lossless real-time medium for a node that simulates its radio alone (tests, laptops)."""
    return SimMedium(RadioParams(), random.Random(seed))


def ble_radio_factory(section: RadioSection, *, app: bool, bitchat: bool) -> RadioFactory:
    """Our mesh's transport on the configured adapter, with the Pigeon app's (9E7B0001-...) and
    bitchat's (F47B5E2D-...) when on, made together at each start of the radio: their links ride
    our transport's adapter, GATT application, scanner and link slots, so none outlives the
    others. Raises HardwareUnavailable if the BLE transport cannot be loaded."""
    module = _import_ble()
    eviction = module.EvictionParams.from_config(
        section.link_idle_s, section.link_hard_idle_s, section.abuse_backoff_s
    )
    config = module.BleConfig(
        adapter=section.adapter,
        max_links=section.max_links,
        eviction=eviction,
        channels=section.channels,
    )

    def make() -> RadioTransports:
        services = module.ble_transports(config, app=app, bitchat=bitchat)
        return RadioTransports(services.mesh, services.app, services.bitchat)

    return make


def _import_ble() -> Any:
    try:
        return importlib.import_module(BLE_MODULE)
    except ImportError as exc:
        raise HardwareUnavailable(f"the BLE transport cannot be loaded: {exc}") from exc
