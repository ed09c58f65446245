"""A private CA for tests, made with the ``openssl`` binary (no Python crypto package needed)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@dataclass(frozen=True)
class Pki:
    """A CA and the certificates it signed, all PEM files in one directory."""

    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.crt"

    def cert(self, name: str) -> Path:
        return self.root / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.root / f"{name}.key"

    def issue(self, name: str, cn: str, *, san: str = "", client: bool = False) -> Path:
        """Sign a certificate for ``cn`` (server unless ``client``); return its path."""
        key, csr, crt = self.key(name), self.root / f"{name}.csr", self.cert(name)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                 "-out", str(csr), "-subj", f"/CN={cn}")  # fmt: skip
        ext = self.root / f"{name}.ext"
        usage = "clientAuth" if client else "serverAuth"
        lines = [f"extendedKeyUsage={usage}"]
        if san:
            lines.append(f"subjectAltName={san}")
        ext.write_text("\n".join(lines) + "\n")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey",
                 str(self.key("ca")), "-CAcreateserial", "-days", "2", "-out", str(crt),
                 "-extfile", str(ext))  # fmt: skip
        return crt


def make_pki(root: Path, *, server_san: str = "DNS:localhost,IP:127.0.0.1") -> Pki:
    """Create a CA under ``root`` and a ``server`` certificate for 127.0.0.1/localhost."""
    root.mkdir(parents=True, exist_ok=True)
    pki = Pki(root)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", str(pki.key("ca")), "-out", str(pki.ca),
             "-subj", "/CN=Logbot test CA")  # fmt: skip
    pki.issue("server", "localhost", san=server_san)
    return pki
