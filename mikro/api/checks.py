"""Kubernetes' value checks (apimachinery's `util/validation`), each returning its messages.

Pure. An empty list means the value is valid. Every pattern is matched with `fullmatch`, so
that a trailing newline never passes (Python's `$` would let it through). The messages are
apimachinery's own, so that users recognise them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(_LABEL)
DNS1123_SUBDOMAIN = re.compile(_LABEL + r"(\." + _LABEL + r")*")
WILDCARD_SUBDOMAIN = re.compile(r"\*\." + _LABEL + r"(\." + _LABEL + r")*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
IANA_SVC_NAME = re.compile(r"[-a-z0-9]+")

DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
WILDCARD_SUBDOMAIN_MSG = (
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which "
    "must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric "
    "character (e.g. '*.example.com', regex used for validation is "
    "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
    "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)

# Kubernetes' ingress path rules for Exact and Prefix (networking/validation).
INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
INVALID_PATH_SUFFIXES = ("/..", "/.")
# The characters of a URL path (RFC 3986 pchar and '/'); anything else (white space, quotes,
# braces, backslashes, control characters) cannot be part of a request path.
URL_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _pattern(value: Any, pattern: re.Pattern[str], message: str, max_length: int) -> list[str]:
    """A string of at most `max_length` characters matching `pattern` whole, in Kubernetes' words."""
    text = _text(value)
    if text is None:
        return ["must be a string"]
    out = []
    if len(text) > max_length:
        out.append(f"must be no more than {max_length} characters")
    if not pattern.fullmatch(text):
        out.append(message)
    return out


def dns1123_label(value: Any) -> list[str]:
    return _pattern(value, DNS1123_LABEL, DNS1123_LABEL_MSG, 63)


def dns1123_subdomain(value: Any) -> list[str]:
    return _pattern(value, DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_MSG, 253)


def wildcard_subdomain(value: Any) -> list[str]:
    return _pattern(value, WILDCARD_SUBDOMAIN, WILDCARD_SUBDOMAIN_MSG, 253)


def dns1035_label(value: Any) -> list[str]:
    return _pattern(value, DNS1035_LABEL, DNS1035_LABEL_MSG, 63)


def ingress_host(value: Any) -> list[str]:
    """A rule's or a TLS entry's host: a (wildcard) DNS subdomain, never an IP address."""
    text = _text(value)
    if text is None:
        return ["must be a string"]
    out = []
    if is_ip(text):
        out.append("must be a DNS name, not an IP address")
    out += wildcard_subdomain(text) if "*" in text else dns1123_subdomain(text)
    return out


def port_name(value: Any) -> list[str]:
    """IANA_SVC_NAME (RFC 6335), as `IsValidPortName`."""
    text = _text(value)
    if text is None:
        return ["must be a string"]
    out = []
    if len(text) > 15:
        out.append("must be no more than 15 characters")
    if not IANA_SVC_NAME.fullmatch(text):
        out.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in text:
        out.append("must not contain consecutive hyphens")
    if not re.search("[a-z]", text):
        out.append("must contain at least one letter (a-z)")
    if text.startswith("-") or text.endswith("-"):
        out.append("must not begin or end with a hyphen")
    return out


def config_key(value: Any) -> list[str]:
    """A ConfigMap or Secret key, as `IsConfigMapKey`: it becomes a file name in a volume."""
    text = _text(value)
    if text is None:
        return ["must be a string"]
    out = []
    if len(text) > 253:
        out.append("must be no more than 253 characters")
    if not CONFIG_KEY.fullmatch(text):
        out.append(CONFIG_KEY_MSG)
    if text == ".":
        out.append("must not be '.'")
    elif text == "..":
        out.append("must not be '..'")
    elif text.startswith(".."):
        out.append("must not start with '..'")
    return out


def local_descending_path(value: Any) -> list[str]:
    """A path inside a volume (`items[].path`, `subPath`): relative, no `..` element."""
    text = _text(value)
    if text is None:
        return ["must be a string"]
    out = []
    if text.startswith("/") or text.startswith("\\"):
        out.append("must be a relative path")
    if ".." in re.split(r"[/\\]", text):
        out.append("must not contain '..'")
    if "\x00" in text:
        out.append("must not contain a NUL character")
    return out


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def endpoint_ip(value: Any) -> list[str]:
    """An Endpoints address: a valid IP that is not special (validateNonSpecialIP)."""
    text = _text(value)
    if text is None:
        return ["must be a string"]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    if ip.is_unspecified:
        return [f"may not be unspecified ({'0.0.0.0' if ip.version == 4 else '::'})"]
    if ip.is_loopback:
        return ["may not be in the loopback range (127.0.0.0/8, ::1/128)"]
    if ip.is_link_local:
        return ["may not be in the link-local range (169.254.0.0/16, fe80::/10)"]
    if ip in ipaddress.ip_network("224.0.0.0/24") or ip in ipaddress.ip_network("ff02::/16"):
        return ["may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"]
    return []


def ingress_path(value: Any, path_type: str | None) -> list[str]:
    """An Ingress path: absolute; for Exact and Prefix, Kubernetes' forbidden sequences and the
    characters of a URL path only (what ingress-nginx's admission also refuses)."""
    text = _text(value)
    if text is None:
        return ["must be a string"]
    if not text.startswith("/"):
        return ["must be an absolute path"]
    out = []
    if path_type in ("Exact", "Prefix"):
        out += [f"must not contain '{seq}'" for seq in INVALID_PATH_SEQUENCES if seq in text]
        out += [f"cannot end with '{suffix}'" for suffix in INVALID_PATH_SUFFIXES if text.endswith(suffix)]
        if not URL_PATH.fullmatch(text):
            out.append(
                f"cannot be used with pathType {path_type}: only the characters of a URL path (RFC 3986) are allowed"
            )
    elif any(ord(ch) < 0x20 or ch == "\x7f" for ch in text):
        out.append("must not contain control characters")
    return out
