"""The lab CA and its certificates (files under tmp_path only)."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from lab_specs import LAB_YML, run_for

from overlaylab.context import LabContext
from overlaylab.layout import LabLayout
from overlaylab.progress import Progress
from overlaylab.providers.local import LocalProvider
from overlaylab.spec import load_spec
from overlaylab.up.certs import LabCA
from overlaylab.up.steps.tls import ensure_tls

NODE_IP = ipaddress.IPv4Address("192.168.99.11")


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.ca = LabCA(tmp / "tls", "lab")
        self.ca.ensure()
        self.server_dir = tmp / "nodes" / "node1" / "tls"
        self.client_dir = tmp / "tls" / "client"
        self.ca.issue(
            self.server_dir, "node1", server=True, ips=[NODE_IP], dns_names=["node1", "localhost"]
        )
        self.ca.issue(self.client_dir, "overlaylab-client", server=False)
        self.ca_cert = load(self.ca.cert_path)
        self.server = load(self.server_dir / "cert.pem")
        self.client = load(self.client_dir / "cert.pem")


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab(tmp_path)


def eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_ca_is_a_ca(lab: Lab) -> None:
    constraints = lab.ca_cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert lab.ca_cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert lab.ca_cert.subject == lab.ca_cert.issuer
    assert "lab" in lab.ca_cert.subject.rfc4514_string()


def test_server_cert_names_and_usage(lab: Lab) -> None:
    san = lab.server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [NODE_IP]
    assert sorted(san.get_values_for_type(x509.DNSName)) == ["localhost", "node1"]
    # A client's too: a classic swarm manager reaches the engines with it.
    assert eku(lab.server) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert lab.server.issuer == lab.ca_cert.subject


def test_client_cert_usage(lab: Lab) -> None:
    assert eku(lab.client) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert lab.client.issuer == lab.ca_cert.subject


def test_signatures_verify_with_the_ca_key(lab: Lab) -> None:
    public = lab.ca_cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    for cert in (lab.server, lab.client, lab.ca_cert):
        assert cert.signature_hash_algorithm is not None
        public.verify(
            cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
        )
    # A foreign CA's key must not verify them.
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(InvalidSignature):
        stranger.verify(
            lab.server.signature, lab.server.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256())
        )


def test_chain_verifies_with_cryptography_policy(lab: Lab) -> None:
    verification = pytest.importorskip("cryptography.x509.verification")
    if not hasattr(verification, "ExtensionPolicy"):
        pytest.skip("cryptography < 45 has no ExtensionPolicy")
    policy = verification.ExtensionPolicy
    # Relax only what web PKI demands and a private lab CA may omit: the authority key
    # identifier, and (for client certificates) a subjectAltName.
    server_ee = policy.webpki_defaults_ee().may_be_present(
        x509.AuthorityKeyIdentifier, verification.Criticality.AGNOSTIC, None
    )
    client_ee = server_ee.may_be_present(
        x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None
    )

    def builder(ee: object = server_ee) -> object:
        return (
            verification.PolicyBuilder()
            .store(verification.Store([lab.ca_cert]))
            .extension_policies(ca_policy=policy.webpki_defaults_ca(), ee_policy=ee)
        )

    chain = builder().build_server_verifier(verification.IPAddress(NODE_IP)).verify(lab.server, [])
    assert chain[-1] == lab.ca_cert
    builder().build_server_verifier(verification.DNSName("node1")).verify(lab.server, [])
    builder(client_ee).build_client_verifier().verify(lab.client, [])
    with pytest.raises(verification.VerificationError):
        other = verification.IPAddress(ipaddress.IPv4Address("192.168.99.12"))
        builder().build_server_verifier(other).verify(lab.server, [])
    builder(client_ee).build_client_verifier().verify(lab.server, [])  # the swarm master's use
    with pytest.raises(verification.VerificationError):  # clientAuth only: never a server
        builder().build_server_verifier(verification.DNSName("node1")).verify(lab.client, [])


def handshake(lab: Lab, hostname: str, client_flags: int = 0) -> str:
    """Mutual TLS over a socketpair with the lab's files; returns the TLS version."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(lab.server_dir / "cert.pem", lab.server_dir / "key.pem")
    server_ctx.load_verify_locations(lab.server_dir / "ca.pem")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(lab.client_dir / "ca.pem")
    client_ctx.load_cert_chain(lab.client_dir / "cert.pem", lab.client_dir / "key.pem")
    client_ctx.verify_flags |= client_flags
    left, right = socket.socketpair()
    left.settimeout(5)
    right.settimeout(5)

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(left, server_side=True) as conn:
                conn.recv(1)
        except (ssl.SSLError, OSError):
            pass

    worker = threading.Thread(target=serve)
    worker.start()
    try:
        with client_ctx.wrap_socket(right, server_hostname=hostname) as conn:
            conn.sendall(b"x")
            version = conn.version() or ""
    finally:
        right.close()
        worker.join(5)
        left.close()
    return version


def test_mutual_tls_handshake_with_openssl(lab: Lab) -> None:
    assert handshake(lab, str(NODE_IP)).startswith("TLS")
    assert handshake(lab, "node1").startswith("TLS")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(lab, "192.168.99.12")


def test_certificates_pass_x509_strict(lab: Lab) -> None:
    assert handshake(lab, str(NODE_IP), ssl.VERIFY_X509_STRICT).startswith("TLS")


def test_files_and_permissions(lab: Lab) -> None:
    for folder in (lab.server_dir, lab.client_dir):
        assert (folder / "ca.pem").read_bytes() == lab.ca.cert_path.read_bytes()
        assert (folder / "key.pem").stat().st_mode & 0o777 == 0o600
    assert lab.ca.key_path.stat().st_mode & 0o777 == 0o600


def test_issue_and_ensure_are_idempotent(lab: Lab) -> None:
    before = {
        p: p.read_bytes()
        for p in (
            lab.ca.cert_path,
            lab.ca.key_path,
            lab.server_dir / "cert.pem",
            lab.server_dir / "key.pem",
            lab.client_dir / "cert.pem",
        )
    }
    lab.ca.ensure()
    assert lab.ca.ensure() is False
    assert not lab.ca.issue(
        lab.server_dir, "node1", server=True, ips=[NODE_IP], dns_names=["node1", "localhost"]
    )
    assert not lab.ca.issue(lab.client_dir, "overlaylab-client", server=False)
    assert {p: p.read_bytes() for p in before} == before


def test_a_node_whose_address_changed_gets_a_new_certificate(lab: Lab) -> None:
    moved = ipaddress.IPv4Address("192.168.99.21")
    assert lab.ca.issue(
        lab.server_dir, "node1", server=True, ips=[moved], dns_names=["node1", "localhost"]
    )
    names = load(lab.server_dir / "cert.pem").extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert names.value.get_values_for_type(x509.IPAddress) == [moved]


def test_issue_needs_both_cert_and_key_to_skip(lab: Lab) -> None:
    old = (lab.server_dir / "cert.pem").read_bytes()
    (lab.server_dir / "key.pem").unlink()
    lab.ca.issue(lab.server_dir, "node1", server=True, ips=[NODE_IP], dns_names=["node1"])
    assert (lab.server_dir / "cert.pem").read_bytes() != old
    assert (lab.server_dir / "key.pem").exists()


def test_ensure_tls_issues_for_every_engine_node(tmp_path: Path) -> None:
    spec = load_spec(LAB_YML)
    layout = LabLayout.for_cluster(spec.name, tmp_path)
    provider = LocalProvider(spec, layout)
    ctx = LabContext(spec, LAB_YML, LAB_YML.parent, layout, provider, Progress(quiet=True))
    assert ensure_tls(ctx, run_for(ctx)) is True
    for node in spec.engine_nodes:
        cert = load(layout.node_dir(node.name) / "tls" / "cert.pem")
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.IPAddress) == [node.address]
        assert node.name in san.get_values_for_type(x509.DNSName)
    assert not (layout.node_dir("kv") / "tls").exists()
    assert eku(load(layout.client_cert_dir / "cert.pem")) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert ensure_tls(ctx, run_for(ctx)) is False
