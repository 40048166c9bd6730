"""The balancer's own TLS certificate for LAN mode: made once, kept in the data dir, pinned.

Nobody signs it: nodes pin its SHA-256 fingerprint at join time (bound to the join-token
proof), the GUI and the local node in this process are handed the fingerprint, and a LAN
client either trusts `tls/cert.pem` itself or pins the fingerprint `GET /v0/cluster` shows.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import StartupError

TLS_DIR = "tls"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
VALID_DAYS = 3650  # a pinned certificate that expires would strand every node that pinned it
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Certificate:
    """The balancer's certificate and key files, and the fingerprint peers pin."""

    cert_path: Path
    key_path: Path
    fingerprint: str  # sha256 hex of the DER certificate, lower case

    def server_context(self) -> ssl.SSLContext:
        """An SSL context serving this certificate (TLS 1.2 and up)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert_path, self.key_path)
        except (OSError, ssl.SSLError) as exc:
            raise StartupError(
                f"cannot use the TLS certificate in {self.cert_path.parent} ({exc}); "
                "delete that folder to make a new one (nodes that pinned the old one must "
                "then be given the new fingerprint)"
            ) from exc
        return context


def fingerprint_of(der: bytes) -> str:
    """sha256 hex of a DER certificate: what nodes pin and `/v0/cluster` shows."""
    return hashlib.sha256(der).hexdigest()


def normalize_fingerprint(text: str) -> str:
    """A fingerprint as typed (`AB:CD:…`, spaces, any case) in our form; ValueError if not one."""
    cleaned = re.sub(r"[\s:]", "", text).lower()
    if not _HEX_RE.match(cleaned):
        raise ValueError("a certificate fingerprint is 64 hex digits (SHA-256), colons allowed")
    return cleaned


def load_or_create(data_dir: Path, addresses: list[str]) -> Certificate:
    """The certificate in `data_dir/tls`, made on first use for these names and addresses.

    It is kept across restarts (nodes pinned it), even when the addresses change later: the
    names in it matter only to clients that trust the file itself, not to pinning peers.
    """
    folder = data_dir / TLS_DIR
    cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
    if cert_path.exists() or key_path.exists():
        return Certificate(cert_path, key_path, _read_fingerprint(cert_path))
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        cert_pem, key_pem = _make(addresses)
        _write(key_path, key_pem, 0o600)
        _write(cert_path, cert_pem, 0o644)
    except OSError as exc:
        raise StartupError(f"cannot write the TLS certificate in {folder}: {exc}") from exc
    return Certificate(cert_path, key_path, _read_fingerprint(cert_path))


def _read_fingerprint(cert_path: Path) -> str:
    try:
        pem = cert_path.read_text(encoding="ascii")
        return fingerprint_of(ssl.PEM_cert_to_DER_cert(pem))
    except (OSError, ValueError) as exc:
        raise StartupError(
            f"cannot read the TLS certificate {cert_path} ({exc}); delete its folder to make "
            "a new one (nodes that pinned the old one must then be given the new fingerprint)"
        ) from exc


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _make(addresses: list[str]) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM): EC P-256, self-signed, SANs for every name we answer to."""
    # Imported here: only a balancer serving TLS pays for loading it.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname() or "llmlb"
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for entry in ["localhost", host, f"{host}.local", "127.0.0.1", "::1", *addresses]:
        entry = entry.strip().strip("[]")
        if not entry or entry in seen or entry in {"0.0.0.0", "::"}:
            continue
        seen.add(entry)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(entry)))
        except ValueError:
            names.append(x509.DNSName(entry))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"llmlb on {host}"[:64])])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # a peer's clock a little behind
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
