"""VAPIX faults: the one error type that crosses every boundary (commands -> control socket -> HTTP).

A fault carries exactly the five fields the spec shows (Fault, FaultCode, FaultSubCode, FaultReason,
FaultMsg) plus the HTTP status the front end answers with. Builders below name the cases the spec's
fault tables list, so command code says *what* went wrong, never how it is encoded.
"""
from __future__ import annotations


class VapixFault(Exception):
    """A VAPIX fault. `http_status` is 400 for every fault the spec shows, 503 when the supervisor is down."""

    def __init__(self, fault: str, code: str, subcode: str | None, reason: str,
                 msg: str | None = None, http_status: int = 400):
        super().__init__(reason)
        self.fault = fault
        self.code = code
        self.subcode = subcode
        self.reason = reason
        self.msg = msg
        self.http_status = http_status

    def to_dict(self) -> dict:
        return {"Fault": self.fault, "FaultCode": self.code, "FaultSubCode": self.subcode,
                "FaultReason": self.reason, "FaultMsg": self.msg}

    def to_wire(self) -> dict:
        """Form used on the control socket (round-trips through from_wire)."""
        return {**self.to_dict(), "HttpStatus": self.http_status}

    @classmethod
    def from_wire(cls, d: dict) -> "VapixFault":
        return cls(str(d.get("Fault")), str(d.get("FaultCode")), d.get("FaultSubCode"),
                   str(d.get("FaultReason")), d.get("FaultMsg"), int(d.get("HttpStatus", 400)))

    def __repr__(self) -> str:
        return f"VapixFault({self.fault}, {self.code}, {self.subcode}, {self.reason!r})"


def invalid_arg(reason: str, msg: str | None = None) -> VapixFault:
    """Invalid data: the request contains invalid values."""
    return VapixFault("env:Sender", "ter:InvalidArgVal", "ter:InvalidArgVal", reason, msg)


def missing_arg(reason: str, msg: str | None = None) -> VapixFault:
    """Missing data: the request does not contain all required data."""
    return VapixFault("env:Sender", "ter:InvalidArgs", None, reason, msg)


def not_found(reason: str, msg: str | None = None) -> VapixFault:
    return VapixFault("env:Sender", "ter:InvalidArgVal", "ter:NotFound", reason, msg)


def action_failed(reason: str, msg: str | None = None) -> VapixFault:
    return VapixFault("env:Receiver", "ter:Action", "ter:Failure", reason, msg)


def not_supported(reason: str, msg: str | None = None) -> VapixFault:
    return VapixFault("env:Receiver", "ter:ActionNotSupported", "ter:NotSupported", reason, msg)


def unknown_action(action: str) -> VapixFault:
    return VapixFault("env:Sender", "ter:ActionNotSupported", "ter:NotSupported",
                      f"Unknown action: {action[:80]}")


def malformed(reason: str) -> VapixFault:
    """The request could not be decoded at all (bad JSON, bad key syntax, too large)."""
    return VapixFault("env:Sender", "ter:InvalidArgs", "ter:MalformedRequest", reason)


def unavailable(reason: str = "The door station service is not running") -> VapixFault:
    return VapixFault("env:Receiver", "ter:Action", "ter:ServiceUnavailable", reason, http_status=503)


def not_authorized(reason: str = "Not authorized for this command") -> VapixFault:
    return VapixFault("env:Sender", "ter:NotAuthorized", "ter:OperationProhibited", reason, http_status=403)
