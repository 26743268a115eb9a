"""The cluster's certificates: a CA, and the API server's certificate it signs.

kubectl (client-go) sends a bearer token only over TLS, so the API is served over HTTPS on
127.0.0.1 and the kubeconfig carries the CA, as on a real cluster. Also checks TLS Secrets'
key pairs for the ingress.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
from pathlib import Path
from typing import Any

from mikro.config import write_private

# cryptography is imported only when a certificate is made or checked: a restart with the
# certificates in place does not pay for loading it (0.1-0.3 s of CPU). The SANs found in the
# API certificate are remembered beside it (`SANS_SEEN`, keyed by the certificate's digest), so
# the restart's check of its addresses does not load it either.
SANS_SEEN = "apiserver.sans.json"


def _name(common: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _key_pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _seen_ips(directory: Path, crt: Path, ips: tuple[str, ...]) -> bool:
    """Whether `_has_ips` found these addresses in this very certificate before."""
    try:
        seen = json.loads((directory / SANS_SEEN).read_text())
        digest = hashlib.sha256(crt.read_bytes()).hexdigest()
    except (OSError, ValueError):
        return False
    if not isinstance(seen, dict) or seen.get("sha256") != digest or not isinstance(seen.get("ips"), list):
        return False
    return all(ip in seen["ips"] for ip in ips)


def _has_ips(crt: Path, ips: tuple[str, ...]) -> bool:
    from cryptography import x509

    try:
        data = crt.read_bytes()
        cert = x509.load_pem_x509_certificate(data)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    have = [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    _remember_ips(crt.parent, data, have)
    return all(ip in have for ip in ips)


def _remember_ips(directory: Path, crt_pem: bytes, ips: list[str]) -> None:
    try:
        seen = {"sha256": hashlib.sha256(crt_pem).hexdigest(), "ips": sorted(set(ips))}
        write_private(directory / SANS_SEEN, json.dumps(seen))
    except OSError:
        pass  # only a shortcut for the next start


def ensure(directory: Path, extra_ips: tuple[str, ...] = ()) -> tuple[Path, Path, Path]:
    """(ca.crt, apiserver.crt, apiserver.key) under `directory`, made on first use. `extra_ips`
    (the `kubernetes` ClusterIP, the gateway address pods reach the API on) are SANs of the
    API certificate, which is issued anew from the kept CA when it lacks one."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_crt, crt, key_path = directory / "ca.crt", directory / "apiserver.crt", directory / "apiserver.key"
    if ca_crt.exists() and crt.exists() and key_path.exists():
        if _seen_ips(directory, crt, extra_ips) or _has_ips(crt, extra_ips) or not (directory / "ca.key").exists():
            return ca_crt, crt, key_path
        return _issue_server(directory, extra_ips)
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=3650)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("mikro-ca"))
        .issuer_name(_name("mikro-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_private(ca_crt, ca.public_bytes(serialization.Encoding.PEM).decode())
    write_private(directory / "ca.key", _key_pem(ca_key))
    return _issue_server(directory, extra_ips)


def _issue_server(directory: Path, extra_ips: tuple[str, ...]) -> tuple[Path, Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_crt, crt, key_path = directory / "ca.crt", directory / "apiserver.crt", directory / "apiserver.key"
    ca = x509.load_pem_x509_certificate(ca_crt.read_bytes())
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=3650)
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
        x509.DNSName("kubernetes.default.svc.cluster.local"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in dict.fromkeys(extra_ips) if ip != "127.0.0.1"]
    san = x509.SubjectAlternativeName(names)
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("kube-apiserver"))
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(san, critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    pem = server.public_bytes(serialization.Encoding.PEM)
    write_private(crt, pem.decode())
    write_private(key_path, _key_pem(server_key))
    _remember_ips(directory, pem, ["127.0.0.1", *extra_ips])
    return ca_crt, crt, key_path


def valid_key_pair(cert_pem: bytes, key_pem: bytes) -> bool:
    """Whether a TLS Secret holds a PEM certificate and the private key that matches it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    fmt = (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)
