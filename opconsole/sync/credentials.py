"""The console's API token: $OPCONSOLE_TOKEN (CI, kiosks), else the OS keyring, else a clear refusal.

Never a silent plaintext fallback: keyring's fail and null backends, and every keyrings.alt backend
(files in the home directory, plaintext or protected by a password typed at each start), are refused.
"""

from __future__ import annotations

import os

from opconsole.errors import OpconsoleError

SERVICE = "opconsole"
REFUSED_MODULES = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")
NO_KEYRING_HELP = ("set OPCONSOLE_TOKEN in the environment (CI, kiosks), or run opconsole where an OS keyring "
                   "is unlocked (Secret Service / GNOME Keyring, KWallet, macOS Keychain, Windows Credential Locker)")


class CredentialsError(OpconsoleError):
    pass


def token_for(url: str) -> str:
    token = os.environ.get("OPCONSOLE_TOKEN", "").strip()
    if token:
        return token
    token = secure_keyring().get_password(SERVICE, url)
    if not token:
        raise CredentialsError(f"not logged in to {url}: run `opconsole login {url}`, or set OPCONSOLE_TOKEN")
    return token


def save_token(url: str, token: str) -> str:
    """Store the token for `url` in the OS keyring; the keyring's name."""
    keyring = secure_keyring()
    try:
        keyring.set_password(SERVICE, url, token)
    except Exception as exc:  # keyring backends raise their own errors (locked, denied, D-Bus gone)
        raise CredentialsError(f"the keyring ({keyring_name(keyring)}) refused to store the token: {exc}") from None
    return keyring_name(keyring)


def secure_keyring():
    """The OS keyring, if it is one that keeps secrets safe."""
    import keyring
    from keyring.backends.chainer import ChainerBackend

    backend = keyring.get_keyring()
    parts = list(backend.backends) if isinstance(backend, ChainerBackend) else [backend]
    refused = [part for part in parts if part.__class__.__module__.startswith(REFUSED_MODULES)]
    if not parts or len(refused) == len(parts):
        names = ", ".join(keyring_name(part) for part in parts) or "none"
        raise CredentialsError(f"no secure keyring on this machine (found: {names}); the token was not stored "
                               f"and is never written in plain text: {NO_KEYRING_HELP}")
    if refused and isinstance(backend, ChainerBackend):
        raise CredentialsError(f"the keyring chain includes {keyring_name(refused[0])}, which keeps secrets in "
                               f"a plain file; remove keyrings.alt or {NO_KEYRING_HELP}")
    return backend


def keyring_name(backend: object) -> str:
    cls = backend.__class__
    return f"{cls.__module__}.{cls.__name__}"
