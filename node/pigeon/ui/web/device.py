"""The node status page and the device panel (OLED mirror and virtual buttons)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pigeon.ui.web.errors import BadRequest
from pigeon.ui.web.keys import PANEL, STATUS
from pigeon.ui.web.ports import (
    PANEL_BUTTONS,
    AppMeshStatus,
    CourierStatus,
    GatewayStatus,
    NodeStatus,
)
from pigeon.ui.web.render import render_fragment, render_page
from pigeon.ui.web.requests import read_json, require_str


async def node_page(request: web.Request) -> web.StreamResponse:
    """Neighbours, spool, uplink, relays, radio, uptime and version."""
    status = request.app[STATUS].status()
    return render_page(
        request, "node.html", title="Node", page="node", section="node", status=status
    )


async def node_live(request: web.Request) -> web.StreamResponse:
    """The status block alone, for the page's periodic refresh."""
    status = request.app[STATUS].status()
    text = render_fragment(request, "status_body.html", status=status)
    return web.Response(text=text, content_type="text/html")


async def status_json(request: web.Request) -> web.StreamResponse:
    """GET /api/status."""
    return web.json_response(_status_dict(request.app[STATUS].status()))


def _status_dict(status: NodeStatus) -> dict[str, Any]:
    return {
        "node_name": status.node_name,
        "version": status.version,
        "uptime_s": status.uptime_s,
        "radio": {"kind": status.radio_kind, "state": status.radio_state.value},
        "neighbours": [{"id": n.short_id, "rssi_dbm": n.rssi_dbm} for n in status.neighbours],
        "spool": {"envelopes": status.spool_envelopes, "bytes": status.spool_bytes},
        "uplink": status.uplink.value,
        "carried_to_relays": status.carried_to_relays,
        "card_problem": status.card_problem,
        "relays": [
            {"url": r.url, "state": r.state.value, "detail": r.detail} for r in status.relays
        ],
        "appmesh": _appmesh_dict(status.appmesh),
        "bitchat": {
            "enabled": status.bitchat.enabled,
            "links": status.bitchat.links,
            "peers": status.bitchat.peers,
            "relayed": status.bitchat.relayed,
            "dropped": dict(status.bitchat.dropped),
            "public_heard": status.bitchat.public_heard,
            "courier": _courier(status.bitchat.courier),
            "gateway": _gateway(status.bitchat.gateway),
        },
    }


def _courier(courier: CourierStatus | None) -> dict[str, Any] | None:
    if courier is None:
        return None
    return {
        "held": courier.held,
        "held_bytes": courier.held_bytes,
        "accepted": courier.accepted,
        "refused": courier.refused,
        "handed_over": courier.handed_over,
        "expired": courier.expired,
        "sprayed": courier.sprayed,
    }


def _gateway(gateway: GatewayStatus | None) -> dict[str, Any] | None:
    if gateway is None:
        return None
    return {
        "relays": gateway.relays,
        "relays_connected": gateway.relays_connected,
        "published": gateway.published,
        "refused": gateway.refused,
        "queued": gateway.queued,
        "parked": gateway.parked,
        "fetched": gateway.fetched,
        "rebroadcast": gateway.rebroadcast,
    }


def _appmesh_dict(appmesh: AppMeshStatus) -> dict[str, Any]:
    return {
        "enabled": appmesh.enabled,
        "peers": appmesh.peers,
        "relayed": appmesh.relayed,
        "handed_over": appmesh.handed_over,
        "dropped": dict(appmesh.dropped),
        "bridged": appmesh.bridged,
        "bridge_pending": appmesh.bridge_pending,
        "relays": list(appmesh.relays),
        "relays_connected": appmesh.relays_connected,
    }


async def device_page(request: web.Request) -> web.StreamResponse:
    """The OLED mirror, with buttons when they are virtual."""
    panel = request.app[PANEL]
    return render_page(
        request,
        "device.html",
        title="Device",
        page="device",
        section="device",
        buttons=panel.buttons_available(),
        asleep=panel.asleep(),
        sleep_after_min=max(1, round(panel.sleep_after_s() / 60)),
    )


async def frame_png(request: web.Request) -> web.StreamResponse:
    """GET /api/panel/frame.png: the OLED's current frame."""
    return web.Response(body=request.app[PANEL].frame_png(), content_type="image/png")


async def panel_state(request: web.Request) -> web.StreamResponse:
    """GET /api/panel/state: {"asleep": the screensaver shows, "buttons": they are virtual}."""
    panel = request.app[PANEL]
    return web.json_response({"asleep": panel.asleep(), "buttons": panel.buttons_available()})


async def press(request: web.Request) -> web.StreamResponse:
    """POST /api/panel/press {"button": "a"|"b"}."""
    return await _button(request, pressed=True)


async def release(request: web.Request) -> web.StreamResponse:
    """POST /api/panel/release {"button": "a"|"b"}."""
    return await _button(request, pressed=False)


async def _button(request: web.Request, *, pressed: bool) -> web.StreamResponse:
    panel = request.app[PANEL]
    if not panel.buttons_available():
        raise web.HTTPConflict(text="this node has hardware buttons")
    button = require_str(await read_json(request), "button", max_len=8)
    if button not in PANEL_BUTTONS:
        raise BadRequest("unknown button")
    if pressed:
        panel.press(button)
    else:
        panel.release(button)
    return web.json_response({"ok": True})
