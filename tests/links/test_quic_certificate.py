"""The QUIC certificate, written in DER by hand (links/quic_certificate.py), is what an X.509
library reads back: its fields, a valid self-signature, the matching key, and the fingerprint
NAT traversal publishes."""

from __future__ import annotations

import datetime
import hashlib
import subprocess
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mycelium.links import quic_certificate
from mycelium.links.quic_certificate import fingerprint, self_signed

NAME = "ab" * 32 + "-0001-" + "cd" * 8  # a router id's text: longer than a CN may be


def test_the_certificate_reads_back_with_its_fields_and_a_valid_signature() -> None:
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    cert_pem, key_pem = self_signed(NAME)
    after = datetime.datetime.now(datetime.UTC)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.version is x509.Version.v3
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == NAME[:64]
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert not alt.critical and alt.value.get_values_for_type(x509.DNSName) == [NAME]
    assert 0 < cert.serial_number < 2**159
    day, validity = datetime.timedelta(days=1), datetime.timedelta(days=3650)
    assert before - day <= cert.not_valid_before_utc <= after - day
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == validity + day
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    key = serialization.load_pem_private_key(key_pem, None)
    assert key.public_key() == public
    # What cryptography itself would write for the same certificate and key, byte for byte.
    assert cert.public_bytes(serialization.Encoding.PEM) == cert_pem
    pkcs8 = serialization.PrivateFormat.PKCS8
    assert key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()) == (
        key_pem
    )


def test_the_fingerprint_is_the_sha256_of_the_der_certificate() -> None:
    cert_pem, _ = self_signed(NAME)
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    assert fingerprint(cert_pem) == hashlib.sha256(der).digest()
    assert fingerprint(self_signed(NAME)[0]) != fingerprint(cert_pem)  # a new key each time


def test_dates_from_2050_on_are_generalized_time() -> None:
    last = datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=datetime.UTC).timestamp()
    assert quic_certificate._time(int(last)) == b"\x17\x0d491231235959Z"
    assert quic_certificate._time(int(last) + 1) == b"\x18\x0f20500101000000Z"


def test_long_lengths_and_integers_are_minimal_der() -> None:
    assert quic_certificate._der(0x04, b"x" * 0x80)[:3] == b"\x04\x81\x80"
    assert quic_certificate._der(0x04, b"x" * 0x100)[:4] == b"\x04\x82\x01\x00"
    assert quic_certificate._integer(0) == b"\x02\x01\x00"
    assert quic_certificate._integer(0x7F) == b"\x02\x01\x7f"
    assert quic_certificate._integer(0x80) == b"\x02\x02\x00\x80"


def test_making_it_loads_neither_cryptography_nor_qh3s_asyncio_layer() -> None:
    # The QUIC links load qh3's core and no more (links/qh3_core.py); the certificate must not
    # add cryptography's elliptic curves (1.7 MB) or the rest of the qh3 package.
    probe = (
        "import sys\n"
        "from mycelium.links.quic_certificate import self_signed\n"
        "self_signed('x')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('cryptography', 'qh3.asyncio'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
