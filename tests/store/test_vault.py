"""The vault against real SQLCipher files: lock and unlock, records, atomicity, ephemeral mode."""

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.store.errors import Conflict, CorruptStore, Locked, NotFound, WrongKey
from pigeon.store.keeper import DataDir, VaultKeeper
from pigeon.store.keys import Argon2Params, read_vault_header
from pigeon.store.vault import Vault
from pigeon.store.vault_records import (
    Direction,
    FileInfo,
    Message,
    MessageState,
    OutboxEntry,
    SessionState,
    Verification,
)
from tests.store.conftest import CHEAP_ARGON2, PASSPHRASE


def text(message_id: str, body: str, contact: str = "alice", at: float = 1.0) -> Message:
    return Message(message_id, contact, Direction.OUT, MessageState.QUEUED, at, at, body=body)


def outbox(envelope_id: bytes, contact: str = "alice", **times: float) -> OutboxEntry:
    return OutboxEntry(
        envelope_id=envelope_id,
        contact_id=contact,
        message_id=None,
        priority=int(times.get("priority", 1)),
        envelope=b"env:" + envelope_id,
        created_at=times.get("created_at", 1.0),
        expires_at=times.get("expires_at", 1000.0),
        next_attempt_at=times.get("next_attempt_at", 1.0),
    )


@pytest.fixture
def vault(keeper: VaultKeeper) -> Vault:
    vault = keeper.initialise(PASSPHRASE)
    with vault.transaction() as tx:
        tx.add_contact("alice", "Alice", b"alice-card", 1.0)
    return vault


def test_locked_until_initialised_or_unlocked(keeper: VaultKeeper) -> None:
    assert not keeper.is_initialised
    with pytest.raises(Locked):
        _ = keeper.vault
    with pytest.raises(NotFound):
        keeper.unlock(PASSPHRASE)
    keeper.initialise(PASSPHRASE)
    assert keeper.is_unlocked
    with pytest.raises(Conflict):
        keeper.initialise(PASSPHRASE)
    keeper.lock()
    keeper.lock()
    with pytest.raises(Locked):
        _ = keeper.vault


def test_a_vault_closed_under_a_caller_raises_locked(keeper: VaultKeeper) -> None:
    vault = keeper.initialise(PASSPHRASE)
    keeper.lock()
    with pytest.raises(Locked):
        vault.contacts()


def test_wrong_passphrase_keeps_the_vault_locked(vault: Vault, keeper: VaultKeeper) -> None:
    keeper.lock()
    with pytest.raises(WrongKey):
        keeper.unlock("not the passphrase")
    assert not keeper.is_unlocked
    assert keeper.unlock(PASSPHRASE).contact("alice").display_name == "Alice"


def test_passphrase_change_rewraps_without_touching_the_database(
    vault: Vault, keeper: VaultKeeper, data_dir: DataDir
) -> None:
    keeper.lock()
    before = data_dir.vault_db.read_bytes()
    with pytest.raises(WrongKey):
        keeper.change_passphrase("wrong", "new passphrase")
    keeper.change_passphrase(PASSPHRASE, "new passphrase")
    assert data_dir.vault_db.read_bytes() == before
    with pytest.raises(WrongKey):
        keeper.unlock(PASSPHRASE)
    assert keeper.unlock("new passphrase").contact("alice").card == b"alice-card"


def test_unlock_rewraps_a_header_made_with_another_cost(vault: Vault, data_dir: DataDir) -> None:
    vault.close()
    stronger = Argon2Params(opslimit=2, memlimit_bytes=16384)
    keeper = VaultKeeper(data_dir, argon2=stronger)
    keeper.unlock(PASSPHRASE)
    assert read_vault_header(data_dir.vault_header).params == stronger
    keeper.lock()
    assert keeper.unlock(PASSPHRASE).contact("alice")
    keeper.lock()


def test_interrupted_initialise_is_redone(data_dir: DataDir) -> None:
    data_dir.ensure()
    data_dir.vault_db.write_bytes(os.urandom(8192))  # an orphan without header: its key is lost
    keeper = VaultKeeper(data_dir, argon2=CHEAP_ARGON2)
    keeper.initialise(PASSPHRASE)
    keeper.lock()
    assert keeper.unlock(PASSPHRASE).contacts() == []
    keeper.lock()


def test_missing_or_foreign_vault_file_is_corrupt(vault: Vault, keeper: VaultKeeper) -> None:
    keeper.lock()
    path = keeper.data_dir.vault_db
    path.rename(path.with_name("moved"))
    with pytest.raises(CorruptStore, match="missing"):
        keeper.unlock(PASSPHRASE)
    path.write_bytes(os.urandom(16384))
    with pytest.raises(CorruptStore, match=r"vault\.db"):
        keeper.unlock(PASSPHRASE)


def test_contacts_start_unverified_and_verify_only_explicitly(vault: Vault) -> None:
    alice = vault.contact("alice")
    assert not alice.is_verified
    assert alice.verification is None
    assert alice.check_in_interval_s == 300.0
    with vault.transaction() as tx:
        tx.mark_verified("alice", "12345 67890", 5.0)
    assert vault.contact("alice").verification == Verification(5.0, "12345 67890")
    with vault.transaction() as tx:
        tx.replace_card("alice", b"new card")  # a new key is a new person until checked again
    assert not vault.contact("alice").is_verified
    with vault.transaction() as tx:
        tx.mark_verified("alice", "1", 6.0)
        tx.clear_verification("alice")
        tx.rename_contact("alice", "Alice B.")
        tx.set_check_in_interval("alice", 60.0)
    alice = vault.contact("alice")
    assert (alice.display_name, alice.is_verified, alice.check_in_interval_s) == (
        "Alice B.",
        False,
        60.0,
    )


def test_contact_errors(vault: Vault) -> None:
    with pytest.raises(Conflict), vault.transaction() as tx:
        tx.add_contact("alice", "Again", b"", 2.0)
    with vault.transaction() as tx:
        with pytest.raises(NotFound):
            tx.rename_contact("bob", "Bob")
        with pytest.raises(NotFound):
            tx.mark_verified("bob", "1", 1.0)
        with pytest.raises(NotFound):
            tx.remove_contact("bob")
    with pytest.raises(ValueError, match="positive"), vault.transaction() as tx:
        tx.set_check_in_interval("alice", 0)


def test_reprs_hide_names_cards_bodies_and_states(vault: Vault) -> None:
    shown = (
        repr(vault.contact("alice"))
        + repr(text("m", "the body"))
        + repr(SessionState(1, b"ratchet-state", 1.0))
    )
    for secret in ("Alice", "alice-card", "the body", "ratchet-state"):
        assert secret not in shown


def test_session_saved_with_its_message_in_one_transaction(vault: Vault) -> None:
    with vault.transaction() as tx:
        assert tx.claim_incoming(b"env-1", 2.0)
        tx.save_session("alice", SessionState(1, b"state-1", 2.0))
        tx.append_message(text("m1", "hello"))

    def step_then_fail() -> None:
        with vault.transaction() as tx:
            assert tx.claim_incoming(b"env-2", 3.0)
            tx.save_session("alice", SessionState(1, b"state-2", 3.0))
            tx.append_message(text("m2", "lost with its ratchet step"))
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        step_then_fail()
    assert vault.session("alice") == SessionState(1, b"state-1", 2.0)
    assert [m.message_id for m in vault.messages("alice")] == ["m1"]
    assert not vault.incoming_seen(b"env-2")


def test_incoming_envelopes_are_claimed_once(vault: Vault) -> None:
    with vault.transaction() as tx:
        assert tx.claim_incoming(b"e", 1.0)
        assert not tx.claim_incoming(b"e", 2.0)
        tx.claim_incoming(b"old", 0.5)
        assert tx.forget_incoming_before(1.0) == 1
    assert vault.incoming_seen(b"e")
    assert not vault.incoming_seen(b"old")


def test_session_needs_a_contact_and_can_be_deleted(vault: Vault) -> None:
    with pytest.raises(NotFound), vault.transaction() as tx:
        tx.save_session("bob", SessionState(1, b"s", 1.0))
    with vault.transaction() as tx:
        tx.save_session("alice", SessionState(2, b"s", 1.0))
        tx.delete_session("alice")
    assert vault.session("alice") is None


def test_message_history_pages_and_states(vault: Vault) -> None:
    with vault.transaction() as tx:
        for n in range(10):
            tx.append_message(text(f"m{n}", f"body {n}", at=float(n)))
    page = vault.messages("alice", limit=3)
    assert [m.message_id for m in page] == ["m7", "m8", "m9"]
    older = vault.messages("alice", before_seq=page[0].seq, limit=3)
    assert [m.message_id for m in older] == ["m4", "m5", "m6"]
    with vault.transaction() as tx:
        tx.set_message_state("m9", MessageState.FAILED, 20.0, "expired")
        tx.set_message_state("m8", MessageState.DELIVERED, 21.0)
        tx.delete_message("m0")
    failed = vault.message("m9")
    assert (failed.state, failed.failure_reason, failed.updated_at) == (
        MessageState.FAILED,
        "expired",
        20.0,
    )
    assert vault.message("m8").state is MessageState.DELIVERED
    with pytest.raises(NotFound):
        vault.message("m0")
    with pytest.raises(Conflict), vault.transaction() as tx:
        tx.append_message(text("m1", "duplicate id"))
    with pytest.raises(NotFound), vault.transaction() as tx:
        tx.append_message(text("x", "to nobody", contact="bob"))


def test_message_must_have_a_body_or_a_file() -> None:
    with pytest.raises(ValueError, match="either"):
        Message("m", "c", Direction.IN, MessageState.RECEIVED, 1.0, 1.0)
    with pytest.raises(ValueError, match="either"):
        Message("m", "c", Direction.IN, MessageState.RECEIVED, 1.0, 1.0, body="b", file_id="f")


def test_outbox_retries_by_schedule_and_expires(vault: Vault) -> None:
    with vault.transaction() as tx:
        tx.enqueue(outbox(b"a", next_attempt_at=5.0, priority=1))
        tx.enqueue(outbox(b"b", next_attempt_at=1.0, priority=9))
        tx.enqueue(outbox(b"c", next_attempt_at=1.0, expires_at=3.0))
    assert [e.envelope_id for e in vault.outbox_due(now=2.0)] == [b"b", b"c"]
    assert [e.envelope_id for e in vault.outbox_due(now=6.0)] == [b"b", b"a"]
    with vault.transaction() as tx:
        tx.reschedule(b"b", 50.0)
        expired = tx.expire_outbox(now=4.0)
        assert tx.remove_from_outbox(b"a")
        assert not tx.remove_from_outbox(b"a")
    assert [e.envelope_id for e in expired] == [b"c"]
    entry = vault.outbox_entry(b"b")
    assert entry is not None
    assert (entry.attempts, entry.next_attempt_at) == (1, 50.0)
    assert [e.envelope_id for e in vault.outbox_for_contact("alice")] == [b"b"]
    with pytest.raises(Conflict), vault.transaction() as tx:
        tx.enqueue(outbox(b"b"))
    with pytest.raises(NotFound), vault.transaction() as tx:
        tx.reschedule(b"zz", 1.0)


def test_settings_and_owner_secrets(vault: Vault) -> None:
    with vault.transaction() as tx:
        tx.put_setting("ephemeral", "no")
        tx.put_setting("ephemeral", "yes")
        tx.put_setting("gone", "x")
        tx.delete_setting("gone")
        tx.put_owner_secret("identity", b"\x01" * 64, 1.0)
    assert vault.setting("ephemeral") == "yes"
    assert vault.setting("gone") is None
    assert vault.owner_secret("identity") == b"\x01" * 64
    assert vault.owner_secret("other") is None


def test_file_chunks_resume_after_reopen(vault: Vault, keeper: VaultKeeper) -> None:
    info = FileInfo("f1", "alice", "report.pdf", 10, 4, 1.0)
    with vault.transaction() as tx:
        tx.add_file(info)
        assert tx.put_chunk("f1", 0, b"aaa")
        assert tx.put_chunk("f1", 2, b"ccc")
        assert not tx.put_chunk("f1", 2, b"ccc")
        tx.append_message(
            Message("m", "alice", Direction.IN, MessageState.RECEIVED, 1.0, 1.0, file_id="f1")
        )
    keeper.lock()
    vault = keeper.unlock(PASSPHRASE)
    assert vault.file_info("f1") == info
    assert vault.missing_chunks("f1") == [1, 3]
    assert vault.chunk("f1", 2) == b"ccc"
    assert vault.chunk("f1", 1) is None
    with pytest.raises(ValueError, match="range"), vault.transaction() as tx:
        tx.put_chunk("f1", 4, b"x")
    with pytest.raises(NotFound), vault.transaction() as tx:
        tx.put_chunk("nope", 0, b"x")
    with pytest.raises(NotFound):
        vault.missing_chunks("nope")
    with vault.transaction() as tx:
        tx.delete_file("f1")
    assert vault.file_info("f1") is None
    assert vault.chunk("f1", 0) is None


def test_removing_a_contact_removes_everything_about_them(vault: Vault) -> None:
    with vault.transaction() as tx:
        tx.add_contact("bob", "Bob", b"bob-card", 2.0)
        for who in ("alice", "bob"):
            tx.save_session(who, SessionState(1, b"s", 1.0))
            tx.append_message(text(f"m-{who}", "hi", contact=who))
            tx.enqueue(outbox(who.encode(), contact=who))
            tx.add_file(FileInfo(f"f-{who}", who, "n", 1, 1, 1.0))
            tx.put_chunk(f"f-{who}", 0, b"x")
            tx.add_waiting(who, [f"m-{who}"])
        tx.remove_contact("alice")
    assert [c.contact_id for c in vault.contacts()] == ["bob"]
    assert vault.waiting("alice") == []
    assert vault.waiting("bob") == ["m-bob"]
    assert vault.session("alice") is None
    assert vault.messages("alice") == []
    assert vault.outbox_for_contact("alice") == []
    assert vault.file_info("f-alice") is None
    assert vault._db.fetchone("SELECT count(*) FROM file_chunks") == (1,)
    assert vault.messages("bob") != []


def test_waiting_messages_keep_their_order_and_each_id_waits_once(vault: Vault) -> None:
    with vault.transaction() as tx:
        tx.add_waiting("alice", ["m2", "m1"])
        tx.add_waiting("alice", ["m3", "m2"])  # a requeue behind what waits already
    assert vault.waiting("alice") == ["m2", "m1", "m3"]
    with vault.transaction() as tx:
        assert tx.take_waiting("alice") == ["m2", "m1", "m3"]
    assert vault.waiting("alice") == []
    with pytest.raises(NotFound), vault.transaction() as tx:
        tx.add_waiting("nobody", ["m4"])


def test_ephemeral_history_is_gone_after_restart_but_the_rest_persists(data_dir: DataDir) -> None:
    keeper = VaultKeeper(data_dir, argon2=CHEAP_ARGON2, ephemeral=True)
    vault = keeper.initialise(PASSPHRASE)
    assert vault.ephemeral
    with vault.transaction() as tx:
        tx.add_contact("alice", "Alice", b"card", 1.0)
        tx.save_session("alice", SessionState(1, b"s", 1.0))
        tx.append_message(text("m1", "a disappearing message"))
        tx.enqueue(outbox(b"e1"))
        tx.add_file(FileInfo("f", "alice", "n", 1, 1, 1.0))
        tx.put_chunk("f", 0, b"chunk")
    assert [m.message_id for m in vault.messages("alice")] == ["m1"]
    assert vault._db.fetchone("SELECT count(*) FROM main.messages") == (0,)
    keeper.lock()
    vault = keeper.unlock(PASSPHRASE)
    assert vault.messages("alice") == []
    assert vault.file_info("f") is None
    assert vault.contact("alice").card == b"card"
    assert vault.session("alice") is not None
    assert vault.outbox_entry(b"e1") is not None
    keeper.lock()


def test_switching_to_ephemeral_erases_persisted_history(data_dir: DataDir) -> None:
    keeper = VaultKeeper(data_dir, argon2=CHEAP_ARGON2)
    vault = keeper.initialise(PASSPHRASE)
    with vault.transaction() as tx:
        tx.add_contact("alice", "Alice", b"card", 1.0)
        tx.append_message(text("m1", "kept until ephemeral mode"))
    keeper.lock()
    keeper = VaultKeeper(data_dir, argon2=CHEAP_ARGON2, ephemeral=True)
    assert keeper.unlock(PASSPHRASE).messages("alice") == []
    keeper.lock()
    keeper = VaultKeeper(data_dir, argon2=CHEAP_ARGON2)
    assert keeper.unlock(PASSPHRASE).messages("alice") == []
    keeper.lock()


def test_vault_files_are_private(vault: Vault, data_dir: DataDir) -> None:
    assert data_dir.root.stat().st_mode & 0o077 == 0
    assert Path(data_dir.vault_header).stat().st_mode & 0o077 == 0


@settings(max_examples=12, deadline=None)
@given(
    st.lists(st.sampled_from(["alice", "bob"]), min_size=1, max_size=40),
    st.integers(min_value=1, max_value=7),
)
def test_paging_backwards_returns_each_contacts_history_once_in_order(
    authors: list[str], page_size: int
) -> None:
    with tempfile.TemporaryDirectory() as root:
        keeper = VaultKeeper(DataDir(Path(root)), argon2=CHEAP_ARGON2)
        vault = keeper.initialise(PASSPHRASE)
        with vault.transaction() as tx:
            tx.add_contact("alice", "A", b"", 0.0)
            tx.add_contact("bob", "B", b"", 0.0)
            for n, author in enumerate(authors):
                tx.append_message(text(f"m{n}", f"body {n}", contact=author, at=float(n)))
        for contact in ("alice", "bob"):
            pages: list[str] = []
            page = vault.messages(contact, limit=page_size)
            while page:
                pages = [m.message_id for m in page] + pages
                page = vault.messages(contact, before_seq=page[0].seq, limit=page_size)
            expected = [f"m{n}" for n, author in enumerate(authors) if author == contact]
            assert pages == expected
        keeper.lock()


def test_a_contact_removed_in_a_transaction_takes_no_more_writes_in_it(vault: Vault) -> None:
    with vault.transaction() as tx:
        tx.append_message(text("m1", "before"))
        tx.remove_contact("alice")
        with pytest.raises(NotFound):
            tx.append_message(text("m2", "after"))
        with pytest.raises(NotFound):
            tx.save_session("alice", SessionState(1, b"s", 1.0))


@settings(max_examples=12, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["alice", "bob"]), st.booleans()), max_size=30),
    st.integers(min_value=0, max_value=35),
)
def test_incoming_after_counts_one_contacts_incoming_messages_above_a_seq(
    messages: list[tuple[str, bool]], after_seq: int
) -> None:
    with tempfile.TemporaryDirectory() as root:
        keeper = VaultKeeper(DataDir(Path(root)), argon2=CHEAP_ARGON2)
        vault = keeper.initialise(PASSPHRASE)
        with vault.transaction() as tx:
            tx.add_contact("alice", "A", b"", 0.0)
            tx.add_contact("bob", "B", b"", 0.0)
            for n, (author, incoming) in enumerate(messages):
                direction = Direction.IN if incoming else Direction.OUT
                state = MessageState.RECEIVED if incoming else MessageState.SENT
                tx.append_message(Message(f"m{n}", author, direction, state, 1.0, 1.0, "hi"))
        for contact in ("alice", "bob"):
            history = vault.messages(contact, limit=100)
            expected = sum(m.direction is Direction.IN and m.seq > after_seq for m in history)
            assert vault.incoming_after(contact, after_seq) == expected
        keeper.lock()
