"""Who may run each axcall command: one static table, read by the API without importing the
command modules, and checked against every registered handler (daemon.commands.command).

Get* commands read (viewer); Call and TerminateCall place and end calls (operator); everything that
changes the configuration is admin. docs/auth.md describes the roles.
"""
from __future__ import annotations

from daemon.faults import unknown_action

ROLES = ("viewer", "operator", "admin")

COMMAND_ROLES: dict[str, str] = {
    # viewer
    "GetAudioCodecs": "viewer",
    "GetCallStatus": "viewer",
    "GetCallStatuses": "viewer",
    "GetDTMFConfiguration": "viewer",
    "GetDTMFConfigurations": "viewer",
    "GetDTMFEvent": "viewer",
    "GetDTMFEvents": "viewer",
    "GetDTMFTrigger": "viewer",
    "GetDTMFTriggers": "viewer",
    "GetDefaultAudioCodecs": "viewer",
    "GetSIPAccount": "viewer",
    "GetSIPAccountStatus": "viewer",
    "GetSIPAccountStatuses": "viewer",
    "GetSIPAccounts": "viewer",
    "GetSIPConfiguration": "viewer",
    "GetServiceCapabilities": "viewer",
    "GetSupportedAudioCodecs": "viewer",
    "GetSupportedMediaEncryptionModes": "viewer",
    "GetSupportedSIPAccountAttributes": "viewer",
    "GetSupportedSIPConfigurationAttributes": "viewer",
    "GetVMSCallConfiguration": "viewer",
    # operator
    "Call": "operator",
    "TerminateCall": "operator",
    # admin
    "RemoveDTMFConfiguration": "admin",
    "RemoveDTMFConfigurations": "admin",
    "RemoveDTMFEvent": "admin",
    "RemoveDTMFEvents": "admin",
    "RemoveDTMFTrigger": "admin",
    "RemoveDTMFTriggers": "admin",
    "RemoveSIPAccount": "admin",
    "RemoveSIPAccounts": "admin",
    "SetAudioCodecs": "admin",
    "SetDTMFConfiguration": "admin",
    "SetDTMFConfigurations": "admin",
    "SetDTMFEvent": "admin",
    "SetDTMFEvents": "admin",
    "SetDTMFTrigger": "admin",
    "SetDTMFTriggers": "admin",
    "SetSIPAccount": "admin",
    "SetSIPAccounts": "admin",
    "SetSIPConfiguration": "admin",
    "SetVMSCallConfiguration": "admin",
}

# Reads whose answer is a function of the store alone (plus the SIP stack's codec list, fixed for a
# supervisor's life; each supervisor start commits to the store). The API may answer them again
# from daemon/api/answers.py until the store changes. Live state (calls, registrations) is not here.
STORE_ANSWERED = frozenset({
    "GetAudioCodecs", "GetDefaultAudioCodecs", "GetSupportedAudioCodecs",
    "GetDTMFConfiguration", "GetDTMFConfigurations", "GetDTMFEvent", "GetDTMFEvents",
    "GetDTMFTrigger", "GetDTMFTriggers",
    "GetSIPAccount", "GetSIPAccounts", "GetSIPConfiguration", "GetVMSCallConfiguration",
    "GetServiceCapabilities", "GetSupportedMediaEncryptionModes",
    "GetSupportedSIPAccountAttributes", "GetSupportedSIPConfigurationAttributes",
})

# Reads of the supervisor's live state that bump its live stamp (daemon/control/livestamp.py) at
# every change: answered again while neither the stamp nor the store changed. None of these
# depends on the clock (CallStatus has start and stop times, no duration).
LIVE_ANSWERED = frozenset({"GetCallStatus", "GetCallStatuses", "GetSIPAccountStatus",
                           "GetSIPAccountStatuses"})

ANSWERED_AGAIN = STORE_ANSWERED | LIVE_ANSWERED


def command_role(name: str) -> str:
    """Minimum role for axcall:<name>; faults.unknown_action for a command we do not have."""
    role = COMMAND_ROLES.get(name)
    if role is None:
        raise unknown_action(name)
    return role


def role_allows(user_role: str, needed: str) -> bool:
    return ROLES.index(user_role) >= ROLES.index(needed)
