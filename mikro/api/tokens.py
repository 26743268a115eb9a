"""ServiceAccount tokens: signed JWTs as kube-apiserver's TokenRequest issues them (ES256, the
`kubernetes.io` private claim naming the ServiceAccount and its uid), and their verification.

PyJWT does the JOSE part (header, base64url, the registered claims exp/nbf/iat/aud, and pinning
the algorithm so an `alg: none` or HMAC-confusion token is refused); `cryptography` makes the key.
Pure apart from the key file `load_or_create` reads or writes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

# PyJWT and cryptography (0.15 s of CPU to import) are imported when the first token is issued
# or checked, not while the control plane boots: the key is read (or made) then too.

ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCE = ISSUER  # the API server's own audience, the default of a TokenRequest
ALGORITHM = "ES256"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600  # upstream refuses shorter: "may not specify a duration less than 10 minutes"
MAX_EXPIRATION = 2**32


@dataclass(frozen=True)
class Claims:
    namespace: str
    name: str
    uid: str
    expires: int
    pod: tuple[str, str] | None = None  # (name, uid) of the pod a token is bound to

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


def _generate() -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _load_or_create(path: Path) -> ec.EllipticCurvePrivateKey:
    """The signing key kept at `path` (mode 0600), made when there is none."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key
    key = _generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


class Issuer:
    """Signs and checks tokens with one key: given, or obtained by `load` at its first use."""

    def __init__(
        self, key: ec.EllipticCurvePrivateKey | None = None, load: Callable[[], ec.EllipticCurvePrivateKey] = _generate
    ) -> None:
        self._key = key
        self._load = load
        self._lock = threading.Lock()

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = self._load()
        return self._key

    @classmethod
    def ephemeral(cls) -> Issuer:
        return cls(load=_generate)

    @classmethod
    def load_or_create(cls, path: Path) -> Issuer:
        """The signing key kept at `path` (mode 0600), read or made at the first token."""
        return cls(load=lambda: _load_or_create(path))

    def load_now(self) -> None:
        """Read (or make) the key now, with the imports it needs."""
        _ = self.key

    def issue(
        self,
        namespace: str,
        name: str,
        uid: str,
        now: int,
        expiration_seconds: int = DEFAULT_EXPIRATION,
        audiences: list[str] | None = None,
        bound: dict[str, Any] | None = None,
    ) -> tuple[str, int]:
        """(token, expiry as a Unix time)."""
        expires = now + expiration_seconds
        private: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
        if bound and bound.get("kind") in ("Pod", "Secret") and bound.get("name"):
            private[bound["kind"].lower()] = {"name": bound["name"], "uid": bound.get("uid", "")}
        claims = {
            "iss": ISSUER,
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "aud": audiences or [AUDIENCE],
            "iat": now,
            "nbf": now,
            "exp": expires,
            "kubernetes.io": private,
        }
        import jwt

        return jwt.encode(claims, self.key, algorithm=ALGORITHM), expires

    def verify(self, token: str, now: int | None = None) -> Claims | None:
        """The ServiceAccount a token names, if this issuer signed it for the API server's
        audience and it has not expired; None otherwise."""
        import jwt

        try:
            options: dict[str, Any] = {"require": ["exp", "iat", "sub"]}
            if now is not None:
                options["verify_exp"] = False
            data = jwt.decode(
                token, self.key.public_key(), algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER, options=options
            )
        except jwt.PyJWTError:
            return None
        if now is not None and int(data["exp"]) <= now:
            return None
        private = data.get("kubernetes.io")
        if not isinstance(private, dict):
            return None
        sa = private.get("serviceaccount") or {}
        namespace, name, uid = private.get("namespace"), sa.get("name"), sa.get("uid")
        if not (isinstance(namespace, str) and isinstance(name, str) and isinstance(uid, str)):
            return None
        if data["sub"] != f"system:serviceaccount:{namespace}:{name}":
            return None
        pod = private.get("pod")
        bound = (str(pod.get("name", "")), str(pod.get("uid", ""))) if isinstance(pod, dict) else None
        return Claims(namespace, name, uid, int(data["exp"]), bound)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")
