"""Typed errors of the crypto room: one root, input faults apart from local misuse.

Faults in bytes that came from outside (`MalformedInput`, `InvalidSignature`, `WeakKey`,
`DecryptFailed`, `Replayed`) are the peer's; `StateMisuse` is ours. Messages never carry
key material or plaintext.
"""


class CryptoError(Exception):
    """Root of every error raised by `pigeon.crypto`."""


class MalformedInput(CryptoError, ValueError):
    """Bytes or text from outside do not parse: wrong length, version, field or encoding."""


class InvalidSignature(CryptoError, ValueError):
    """A signature does not verify under the claimed key."""


class WeakKey(CryptoError, ValueError):
    """A public key is small-order, not on the curve, or gives an all-zero shared secret."""


class BundleMismatch(CryptoError, ValueError):
    """A peer's identity bundle names another key than its handshake or Olm message proved."""


class DecryptFailed(CryptoError):
    """Authenticated decryption failed; no state was changed."""


class SkipLimitExceeded(DecryptFailed):
    """A ratchet header would skip more message keys than allowed; nothing was derived."""


class Replayed(CryptoError):
    """A message, handshake or challenge was seen before or is too old."""


class StateMisuse(CryptoError):
    """Our own caller used an object in the wrong state (a bug on our side, not the peer's)."""


class NonceExhausted(CryptoError):
    """A Noise cipher state has used all 2^64-1 nonces; the session must be replaced."""


class UnknownPrekey(CryptoError, ValueError):
    """An Olm pre-key message names a prekey we never published, already used or retired."""


class WrongInitiator(CryptoError, ValueError):
    """A peer opened a session although the lower Ed25519 key, which initiates, is ours."""
