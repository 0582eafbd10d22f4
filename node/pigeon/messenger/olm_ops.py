"""Olm steps for the messenger over stored bytes (sans-IO: the vault transaction is passed in).

The account (owner secret `olm-account`) and each session are sealed vodozemac pickles under a
pickle key derived from the identity seed (the vault around them is encrypted too). Every step
that changes the account (a pre-key message opened, a one-time key spent, the fallback key
rotated) stores it in the caller's transaction, so a spent key and the message it opened
commit together or not at all. Parsed objects are cached by the exact bytes they were last
stored as: a transaction that rolled back leaves other bytes in the vault, so the cache misses.
Raises the crypto room's errors (CryptoError) on bad input from outside, changing nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from typing import Final

from pigeon.crypto.app_bundle import AppIdentityBundle, AppPrekeyBundle
from pigeon.crypto.app_card import AppContactCard
from pigeon.crypto.errors import StateMisuse
from pigeon.crypto.olm_account import OlmAccount
from pigeon.crypto.olm_session import OlmSession
from pigeon.crypto.olm_wire import OlmMessage
from pigeon.crypto.signing import SigningKey
from pigeon.store.vault import VaultTransaction

ACCOUNT_SECRET: Final = "olm-account"
PICKLE_LABEL: Final = b"pigeon/olm-pickle-key/v1"
CACHE_SIZE: Final = 32


class OlmOps:
    """Olm account and session steps for one identity (see the module docstring)."""

    def __init__(self, signing_key: SigningKey, seed: bytes) -> None:
        self._signing_key = signing_key
        self._pickle_key = hmac.digest(seed, PICKLE_LABEL, hashlib.sha256)
        self._account: tuple[bytes, OlmAccount] | None = None
        self._cache: OrderedDict[bytes, OlmSession] = OrderedDict()

    def forget(self) -> None:
        """Drop everything parsed (it holds secrets): the vault is being locked."""
        self._account = None
        self._cache.clear()

    # -- the account ---------------------------------------------------------------------------

    def account(self, tx: VaultTransaction, now: float) -> OlmAccount:
        """Our account as stored (created and stored on first use)."""
        stored = tx.owner_secret(ACCOUNT_SECRET)
        if stored is None:
            account = OlmAccount.create(self._signing_key, now)
            self.save_account(tx, account, now)
            return account
        if self._account is not None and self._account[0] == stored:
            return self._account[1]
        account = OlmAccount.from_bytes(stored, self._pickle_key, self._signing_key)
        self._account = (stored, account)
        return account

    def save_account(self, tx: VaultTransaction, account: OlmAccount, now: float) -> None:
        """Store `account` in the transaction (call after every change to it)."""
        blob = account.to_bytes(self._pickle_key)
        tx.put_owner_secret(ACCOUNT_SECRET, blob, now)
        self._account = (blob, account)

    def fallback_bundle(self, tx: VaultTransaction, now: float) -> AppPrekeyBundle:
        """Our current fallback prekey bundle, rotated first when it is due."""
        account = self.account(tx, now)
        if account.rotate_fallback_if_due(now):
            self.save_account(tx, account, now)
        return account.fallback_prekey_bundle()

    def one_time_bundle(self, tx: VaultTransaction, now: float) -> AppPrekeyBundle:
        """A fresh one-time prekey bundle (the account, keeping it, is stored in `tx`)."""
        account = self.account(tx, now)
        self._account = None
        (bundle,) = account.publish_one_time_prekeys(1)
        self.save_account(tx, account, now)
        return bundle

    def card_bundle(self, tx: VaultTransaction) -> AppPrekeyBundle:
        """Our current fallback prekey bundle, for our card (the account exists from unlock;
        `rotate_if_due` changes it on its schedule)."""
        stored = tx.owner_secret(ACCOUNT_SECRET)
        if stored is None:
            raise StateMisuse("the Olm account is made at unlock")
        return self.account(tx, 0.0).fallback_prekey_bundle()

    def app_card(self, tx: VaultTransaction, name: str, relays: list[str]) -> AppContactCard:
        """Our card in the Pigeon app's form, carrying our current fallback prekey bundle."""
        bundle = self.card_bundle(tx)
        return AppContactCard.build(self._signing_key, bundle.identity, name, relays, bundle)

    def rotate_if_due(self, tx: VaultTransaction, now: float) -> None:
        """Rotate the fallback key on its schedule (the replay cache drops retired keys)."""
        self.fallback_bundle(tx, now)

    # -- sessions ------------------------------------------------------------------------------

    def outbound(self, tx: VaultTransaction, peer: AppPrekeyBundle, now: float) -> bytes:
        """A new session to `peer`'s verified bundle; raises CryptoError for a bad bundle."""
        return self._keep(OlmSession.outbound(self.account(tx, now), peer))

    def inbound(
        self, tx: VaultTransaction, sender: AppIdentityBundle, message: OlmMessage, now: float
    ) -> tuple[bytes, bytes, OlmAccount]:
        """(session state, plaintext, changed account) of the session a pre-key message opens.

        The account (a one-time key spent, the replay cache grown) is not stored: the caller
        stores it with `save_account` in the transaction that stores what the message opened.
        """
        account = self.account(tx, now)
        self._account = None  # changed from here on: unsaved, it must be read again
        session, plaintext = OlmSession.inbound(account, sender, message)
        return self._keep(session), plaintext, account

    def matches(self, state: bytes, message: OlmMessage) -> bool:
        """Whether pre-key `message` belongs to stored session `state`."""
        return self._peek(state).matches(message)

    def encrypt(self, state: bytes, plaintext: bytes) -> tuple[bytes, OlmMessage]:
        """(new session state, Olm message)."""
        session = self._take(state)
        message = session.encrypt_message(plaintext)
        return self._keep(session), message

    def decrypt(self, state: bytes, message: OlmMessage) -> tuple[bytes, bytes]:
        """(new session state, plaintext); raises CryptoError and changes nothing on failure."""
        session = self._peek(state)
        plaintext = session.decrypt_message(message)
        self._cache.pop(state, None)
        return self._keep(session), plaintext

    def _peek(self, state: bytes) -> OlmSession:
        session = self._cache.get(state)
        if session is None:
            session = OlmSession.from_bytes(state, self._pickle_key)
            self._cache[state] = session
            self._trim()
        return session

    def _take(self, state: bytes) -> OlmSession:
        session = self._cache.pop(state, None)
        return session or OlmSession.from_bytes(state, self._pickle_key)

    def _keep(self, session: OlmSession) -> bytes:
        state = session.to_bytes(self._pickle_key)
        self._cache[state] = session
        self._trim()
        return state

    def _trim(self) -> None:
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
