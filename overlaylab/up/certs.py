"""A private CA for the lab, a server certificate per engine, one client certificate.

The engines' TCP API only ever speaks mutual TLS: an unauthenticated 2375 on a lab
network is exactly the habit the 2015 guides taught and nobody should copy.
File names follow docker's conventions (ca.pem, cert.pem, key.pem) so that
DOCKER_CERT_PATH can point straight at the client folder.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from overlaylab.providers.base import Node

VALIDITY = dt.timedelta(days=30)
# A certificate this close to its end is renewed by the next `up`, not used until it
# stops working in the middle of a test run.
RENEW_BEFORE = dt.timedelta(days=1)


class CertStore(Protocol):
    """Where a set of ca.pem / cert.pem / key.pem lives: a folder here, or on a node."""

    def read(self, name: str) -> bytes | None: ...

    def write(self, name: str, data: bytes, mode: int) -> None: ...


class FolderStore:
    """A folder of this machine (the client certificates, the local provider's nodes)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read(self, name: str) -> bytes | None:
        try:
            return (self.folder / name).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, name: str, data: bytes, mode: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / name
        path.write_bytes(data)
        path.chmod(mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    FolderStore(path.parent).write(path.name, _key_pem(key), 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _builder(
    subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


class LabCA:
    def __init__(self, tls_dir: Path, cluster: str) -> None:
        self.dir = tls_dir
        self.cluster = cluster
        self.cert_path = tls_dir / "ca.pem"
        self.key_path = tls_dir / "ca-key.pem"

    def ensure(self) -> bool:
        """Make the CA unless a usable one exists; True when a new one was made."""
        if self.key_path.exists() and _usable(_read(self.cert_path)):
            return False
        self.dir.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = f"overlaylab {self.cluster} CA"
        issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            _builder(name, issuer, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            # Key identifiers: OpenSSL's strict chain checks (urllib3 on newer Pythons)
            # reject chains without them ("Missing Authority Key Identifier").
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        _write_key(self.key_path, key)
        _write_cert(self.cert_path, cert)
        return True

    def _load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key

    def issue(
        self,
        out: Path | CertStore,
        common_name: str,
        *,
        server: bool,
        ips: list[ipaddress.IPv4Address] | None = None,
        dns_names: list[str] | None = None,
    ) -> bool:
        """Write ca.pem, cert.pem and key.pem to `out`; True when it (re)issued them.

        What is there is kept only while it still works: signed by this CA, not about
        to expire, and naming the addresses asked for (a node's address may change).
        """
        wanted_names = [*(dns_names or []), *(str(ip) for ip in ips or [])] if server else []
        store = FolderStore(out) if isinstance(out, Path) else out
        if self._still_good(store, wanted_names):
            return False
        ca_cert, ca_key = self._load()
        key = ec.generate_private_key(ec.SECP256R1())
        # A node's certificate is a client's too: a classic swarm manager reaches the
        # engines with it, as docker-machine's server certificates allowed.
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if server:
            usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
        builder = (
            _builder(common_name, ca_cert.subject, key.public_key())
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )
        if server:
            names: list[x509.GeneralName] = [x509.DNSName(n) for n in (dns_names or [])]
            names += [x509.IPAddress(ip) for ip in (ips or [])]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        # Keys are private (0600), and written before the certificate that names them.
        store.write("key.pem", _key_pem(key), 0o600)
        store.write("cert.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
        store.write("ca.pem", self.cert_path.read_bytes(), 0o644)
        return True

    def _still_good(self, store: CertStore, wanted_names: list[str]) -> bool:
        pem = store.read("cert.pem")
        if store.read("key.pem") is None or pem is None or not _usable(pem):
            return False
        try:
            if store.read("ca.pem") != self.cert_path.read_bytes():
                return False
            cert = x509.load_pem_x509_certificate(pem)
            cert.verify_directly_issued_by(self._load()[0])
        except (OSError, ValueError, TypeError, InvalidSignature):
            return False
        return sorted(_names_in(cert)) == sorted(wanted_names)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _usable(pem: bytes | None) -> bool:
    """The certificate parses, and is valid for a while yet."""
    if pem is None:
        return False
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return False
    return cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + RENEW_BEFORE


def _names_in(cert: x509.Certificate) -> list[str]:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    addresses = names.get_values_for_type(x509.IPAddress)
    return [*names.get_values_for_type(x509.DNSName), *map(str, addresses)]


class NodeStore:
    """The certificates of a node, placed through its provider (0600 keys included)."""

    def __init__(self, node: Node, folder: PurePosixPath) -> None:
        self.node = node
        self.folder = folder

    def read(self, name: str) -> bytes | None:
        return self.node.read_file(self.folder / name)

    def write(self, name: str, data: bytes, mode: int) -> None:
        self.node.put_file(self.folder / name, data, mode)
