"""Typed errors of the web room; handlers turn them into HTTP answers, never into tracebacks."""

from __future__ import annotations


class WebError(Exception):
    """Root of every error the web room raises."""


class PairingError(WebError):
    """A pairing attempt or a browser session operation was refused."""


class NoPairingWindow(PairingError):
    """No code is open: none was started, it expired, it was used, or too many tries ended it."""


class ClosedByWrongCodes(NoPairingWindow):
    """No code is open because the last one was closed by too many wrong codes."""


class WrongCode(PairingError):
    """The code did not match; `tries_left` more attempts are allowed in this window."""

    def __init__(self, tries_left: int) -> None:
        super().__init__(f"wrong pairing code, {tries_left} tries left")
        self.tries_left = tries_left


class UnknownSession(PairingError):
    """No paired browser has that session id (already revoked?)."""


class BadRequest(WebError, ValueError):
    """A request body, form or WebSocket message from the browser is malformed."""


class CertificateError(WebError):
    """The node's TLS certificate or key could not be created or loaded."""


class QrNotFound(BadRequest):
    """An uploaded picture holds no readable QR code (or is not a picture)."""


class ResetError(WebError):
    """The identity reset was refused or did not finish."""


class ResetNotPending(ResetError):
    """No reset was asked for on the node's buttons (or the request lapsed): nothing changed."""


class ResetFailed(ResetError):
    """The reset stopped at `step` (a short phrase such as "erasing the vault")."""

    def __init__(self, step: str) -> None:
        super().__init__(f"the identity reset failed while {step}")
        self.step = step
