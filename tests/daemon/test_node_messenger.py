"""`NodeMessenger.deposit_target`: only verified contacts with relay hints get deposits."""

from __future__ import annotations

from pathlib import Path

from pigeon.crypto.card import ContactCard
from pigeon.daemon.node_messenger import NodeMessenger
from pigeon.daemon.relay_bridge import DepositTarget
from pigeon.mesh.packet import Packet
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool

from ..messenger.helpers import CHEAP_ARGON2, PASSPHRASE, T0

RELAY = "ws://127.0.0.1:9/v1"


def opened(root: Path) -> NodeMessenger:
    data_dir = DataDir(root)
    messenger = NodeMessenger(VaultKeeper(data_dir, argon2=CHEAP_ARGON2), open_spool(data_dir))
    messenger.initialise(PASSPHRASE, T0)
    return messenger


def first_packet(a: NodeMessenger, contact_id: str) -> Packet:
    a.send_text(contact_id, "hi", T0)
    (packet,) = a.take_outgoing()
    return packet


def test_a_deposit_goes_only_to_a_verified_contact_with_relay_hints(tmp_path: Path) -> None:
    a, b, c = opened(tmp_path / "a"), opened(tmp_path / "b"), opened(tmp_path / "c")
    b.set_profile("B", (RELAY,))
    b_id = a.add_contact(b.own_card_text(), "B", T0).id
    c_id = a.add_contact(c.own_card_text(), "C", T0).id  # C's card names no relay
    to_b, to_c = first_packet(a, b_id), first_packet(a, c_id)
    assert a.recipient_of(to_b.packet_id) == b_id
    assert a.deposit_target(to_b) is None  # not verified yet
    a.mark_verified(b_id, a.safety_number(b_id), T0)
    a.mark_verified(c_id, a.safety_number(c_id), T0)
    b_key = ContactCard.from_text(b.own_card_text()).mailbox_key
    assert a.deposit_target(to_b) == DepositTarget(b_key, (RELAY,))
    assert a.deposit_target(to_c) is None  # no relay hints
    a.lock(T0)
    assert a.deposit_target(to_b) is None  # locked: nobody to ask
