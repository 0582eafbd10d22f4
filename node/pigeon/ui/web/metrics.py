"""GET /metrics: the node's counters in Prometheus text format (counts only, never an identifier).

Behind the page's pairing like every route but /pair: a scraper uses a paired browser session's
cookie. Names are `pigeon_node_*`; counters since the process started end in `_total`.
"""

from __future__ import annotations

from aiohttp import web

from pigeon.ui.web.keys import STATUS
from pigeon.ui.web.ports import LinkState, NodeStatus

CONTENT_TYPE = "text/plain"  # with version=0.0.4 below, Prometheus's text exposition format


async def metrics(request: web.Request) -> web.StreamResponse:
    """The node's gauges and counters."""
    response = web.Response(text=render_metrics(request.app[STATUS].status()))
    response.content_type = CONTENT_TYPE
    response.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
    return response


def render_metrics(status: NodeStatus) -> str:
    """The exposition text for `status`."""
    app = status.appmesh
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, value: float, labels: str = "") -> None:
        full = f"pigeon_node_{name}"
        if not any(line.startswith(f"# TYPE {full} ") for line in lines):
            lines.extend((f"# HELP {full} {help_text}", f"# TYPE {full} {kind}"))
        lines.append(f"{full}{labels} {value:g}")

    metric("uptime_seconds", "gauge", "Seconds since the node started.", round(status.uptime_s))
    metric("radio_up", "gauge", "1 while the mesh radio runs.", status.radio_state is LinkState.UP)
    metric("neighbours", "gauge", "Mesh neighbours linked now.", len(status.neighbours))
    metric("spool_envelopes", "gauge", "Envelopes held for others.", status.spool_envelopes)
    metric("spool_bytes", "gauge", "Bytes of envelopes held for others.", status.spool_bytes)
    metric(
        "uplink_up", "gauge", "1 while a mailbox relay is connected.", status.uplink is LinkState.UP
    )
    metric(
        "carried_to_relays_total",
        "counter",
        "Neighbours' envelopes deposited at their relays.",
        status.carried_to_relays,
    )
    metric("appmesh_enabled", "gauge", "1 when the Pigeon app's mesh is relayed.", app.enabled)
    metric("appmesh_peers", "gauge", "App-mesh links up now.", app.peers)
    metric("appmesh_relayed_total", "counter", "App packets flooded on.", app.relayed)
    metric(
        "appmesh_handed_over_total",
        "counter",
        "Held app packets handed to a phone that linked.",
        app.handed_over,
    )
    for reason, count in app.dropped:
        metric(
            "appmesh_dropped_total",
            "counter",
            "App frames or packets dropped, by reason.",
            count,
            f'{{reason="{reason}"}}',
        )
    metric("appmesh_bridged_total", "counter", "App packets published to app relays.", app.bridged)
    metric(
        "appmesh_bridge_pending", "gauge", "App packets waiting for a relay.", app.bridge_pending
    )
    metric(
        "appmesh_relays_connected",
        "gauge",
        "App relays with an open connection.",
        app.relays_connected,
    )
    chat = status.bitchat
    metric("bitchat_enabled", "gauge", "1 when bitchat's mesh is relayed.", chat.enabled)
    metric("bitchat_links", "gauge", "bitchat links up now.", chat.links)
    metric("bitchat_peers", "gauge", "bitchat phones linked that announced themselves.", chat.peers)
    metric("bitchat_relayed_total", "counter", "bitchat packets forwarded.", chat.relayed)
    for reason, count in chat.dropped:
        metric(
            "bitchat_dropped_total",
            "counter",
            "bitchat packets dropped, by reason.",
            count,
            f'{{reason="{reason}"}}',
        )
    metric(
        "bitchat_public_heard_total", "counter", "bitchat public messages heard.", chat.public_heard
    )
    courier = chat.courier
    metric(
        "bitchat_courier_enabled", "gauge", "1 when the bitchat courier runs.", courier is not None
    )
    if courier is not None:
        for name, kind, text, value in (
            ("held", "gauge", "bitchat courier envelopes held.", courier.held),
            ("held_bytes", "gauge", "Ciphertext bytes of the envelopes held.", courier.held_bytes),
            ("accepted_total", "counter", "Courier deposits taken.", courier.accepted),
            ("refused_total", "counter", "Courier deposits declined.", courier.refused),
            (
                "handed_over_total",
                "counter",
                "Envelopes handed to their recipient.",
                courier.handed_over,
            ),
            ("expired_total", "counter", "Envelopes forgotten at their expiry.", courier.expired),
            ("sprayed_total", "counter", "Spray copies given to other couriers.", courier.sprayed),
        ):
            metric(f"bitchat_courier_{name}", kind, text, value)
    gateway = chat.gateway
    metric(
        "bitchat_gateway_enabled",
        "gauge",
        "1 when the bitchat Nostr gateway runs.",
        gateway is not None,
    )
    if gateway is not None:
        for name, kind, text, value in (
            ("relays_connected", "gauge", "Nostr relays connected.", gateway.relays_connected),
            ("published_total", "counter", "Carried events relays accepted.", gateway.published),
            ("refused_total", "counter", "Carried events refused.", gateway.refused),
            ("queued", "gauge", "Verified events waiting for a relay.", gateway.queued),
            ("parked_total", "counter", "Courier envelopes parked as drops.", gateway.parked),
            ("fetched_total", "counter", "Drops fetched and handed over.", gateway.fetched),
            ("rebroadcast_total", "counter", "Relay events put on the mesh.", gateway.rebroadcast),
        ):
            metric(f"bitchat_gateway_{name}", kind, text, value)
    return "\n".join(lines) + "\n"
