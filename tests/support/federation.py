"""Several real homeservers federating on loopback, for tests.

Federation is always HTTPS: each homeserver gets a TLS federation listener with
a certificate for ``localhost`` from a test CA that every homeserver trusts.
Server names are ``localhost:<federation port>``, so no DNS, SRV or
well-known look-up is involved, and 127.0.0.1 is allowed as a federation
target (Synapse blocks private ranges by default).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from harness import RunningHomeserver, client_listener

from lgwan_chat.homeserver import free_port


def make_tls(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, certificate for localhost, its key), written into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lgwan-chat test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "localhost.pem", directory / "localhost.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def federating_homeserver(data_dir: Path, backend: str, tls: tuple[Path, Path, Path],
                          modules: list | None = None, extra: dict | None = None) -> RunningHomeserver:
    """A homeserver named ``localhost:<port>`` with a TLS federation listener on that port."""
    ca, cert, key = tls
    federation_port, internet_port, lgwan_port = free_port(), free_port(), free_port()

    federation = {
        "listeners": [
            client_listener(internet_port, "internet"),
            client_listener(lgwan_port, "lgwan"),
            {"port": federation_port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": True,
             "tag": "federation", "resources": [{"names": ["federation"], "compress": False}]},
        ],
        "tls_certificate_path": str(cert),
        "tls_private_key_path": str(key),
        "federation_custom_ca_list": [str(ca)],
        "ip_range_whitelist": ["127.0.0.1"],
    }
    return RunningHomeserver(data_dir, backend, modules=modules, extra={**federation, **(extra or {})},
                             spec={"server_name": f"localhost:{federation_port}", "internet_port": internet_port,
                                   "lgwan_port": lgwan_port})


@contextlib.contextmanager
def stock_homeservers(tmp_path_factory, tls: tuple[Path, Path, Path], names: tuple[str, ...]) -> Iterator[list]:
    """Stock Synapse homeservers (no suite module, SQLite) federating with the test's own, started
    in order and always closed."""
    servers = [federating_homeserver(tmp_path_factory.mktemp(name), "sqlite", tls, modules=[]) for name in names]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.close()
