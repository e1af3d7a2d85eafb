"""The one error a connector raises (its own module, so the egress policy can share it)."""


class ConnectorError(Exception):
    """The source is unreachable, timed out, refused auth, answered garbage, or may not be
    reached (the egress policy).

    str() is a clear operator-readable message (no stack traces, no secrets).
    """
