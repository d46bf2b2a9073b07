"""The station's TLS identity for SIP over TLS (SIPTLSPort): `<state>/tls/station.{crt,key}`.

A self-signed certificate is made with the `openssl` command at first start, so the TLS listener
works out of the box; an installer replaces the two files with a certificate its PBX trusts.
With VerifyServerCertificate, servers are verified against `<state>/tls/ca.pem` (the PBX's CA),
not the system bundle: pjsip's OpenSSL 1.0.2 stalls every incoming handshake when given Debian's
whole bundle (measured: the listener never answers a ClientHello).
"""
from __future__ import annotations

import logging
import os
import socket
import subprocess
from pathlib import Path


def station_tls_files(state_dir: str | os.PathLike, log: logging.Logger) -> dict[str, str]:
    """EngineConfig overrides (tls_cert_file, tls_key_file, tls_ca_file); empty paths when no
    certificate could be made (TLS then works only as a client)."""
    directory = Path(state_dir) / "tls"
    cert, key = directory / "station.crt", directory / "station.key"
    if not (cert.exists() and key.exists()):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = socket.gethostname() or "doorstation"
        try:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                            "-nodes", "-days", "3650", "-subj", f"/CN={name}",
                            "-addext", f"subjectAltName=DNS:{name},DNS:localhost,IP:127.0.0.1",
                            "-keyout", str(key), "-out", str(cert)],
                           check=True, capture_output=True, timeout=30)
            os.chmod(key, 0o600)
            log.info("made a self-signed SIP TLS certificate in %s", directory)
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("no SIP TLS certificate (openssl failed: %s): TLS works only as a client", e)
            return {"tls_ca_file": ca_file(directory)}
    return {"tls_cert_file": str(cert), "tls_key_file": str(key), "tls_ca_file": ca_file(directory)}


def ca_file(directory: Path) -> str:
    ca = directory / "ca.pem"
    return str(ca) if ca.exists() else ""
