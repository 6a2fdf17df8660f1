"""Keep secrets and display tricks out of chat: redact keys and tokens, clean displayed names."""

from __future__ import annotations

import re
import unicodedata

REDACTED = "[REDACTED]"

_PEM = re.compile(
    r"(-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY-----)"
    r".*?"
    r"(-----END (?P=kind)PRIVATE KEY-----|\Z)",  # an unterminated block is redacted to the end
    re.DOTALL,
)
_TOKENS = re.compile(
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}\b"  # GitHub classic tokens
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"  # GitHub fine-grained tokens
    r"|\bxox[abposr]-[A-Za-z0-9-]{8,}"  # Slack tokens
    r"|\bsk-[A-Za-z0-9_-]{20,}"  # OpenAI/Anthropic-style API keys (sk-…, sk-proj-…, sk-ant-…)
)
# The value of an AWS secret key assignment (the key itself has no recognisable prefix).
_AWS_SECRET = re.compile(
    r"(?i)(aws_secret_access_key\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{30,}",
)
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
_DIFF_FILE = re.compile(r"^diff --git a/(?P<a>.*) b/(?P<b>.*)$")
_ENV_KEY = re.compile(r"^(\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.]*\s*[:=]).*$")
# Bidi embeddings/overrides/isolates and marks: they can make a name read differently from
# what it is ("Trojan Source").
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def redact(text: str) -> tuple[str, int]:
    """Replace private keys, tokens and ``.env`` contents; return the text and how many."""
    text, count = _redact_env_files(text)
    text, n = _PEM.subn(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", text)
    count += n
    text, n = _TOKENS.subn(REDACTED, text)
    count += n
    text, n = _AWS_SECRET.subn(lambda m: f"{m.group(1)}{REDACTED}", text)
    return text, count + n


def scrub_urls(text: str) -> str:
    """Drop the user-info (``user:token@``) from URLs, e.g. in git's error messages."""
    return _URL_USERINFO.sub(r"\1", text)


def is_env_file(path: str) -> bool:
    """``.env``, ``*.env`` and ``.env.*`` files, in any directory."""
    name = path.rsplit("/", 1)[-1]
    return name == ".env" or name.endswith(".env") or name.startswith(".env.")


def clean_display(text: str) -> str:
    """Strip control characters and bidi overrides from a name shown to a human.

    Undecodable bytes (lone surrogates from ``os.fsdecode``) become U+FFFD so the text can be sent.
    """
    return "".join(
        "\ufffd" if unicodedata.category(ch) == "Cs" else ch
        for ch in text
        if ch not in _BIDI and unicodedata.category(ch) != "Cc"
    )


def _redact_env_files(text: str) -> tuple[str, int]:
    """Blank every content line of an ``.env`` file's hunks in a unified diff.

    Added, removed and context lines alike: an old value is as secret as a new one.
    """
    if "diff --git " not in text:
        return text, 0
    out: list[str] = []
    count = 0
    in_env = in_hunk = False
    for line in text.splitlines(keepends=True):
        header = _DIFF_FILE.match(line.rstrip("\n"))
        if header:
            in_env = is_env_file(header["a"]) or is_env_file(header["b"])
            in_hunk = False
        elif in_env and line.startswith("@@"):
            in_hunk = True
        elif in_env and in_hunk and line[:1] in ("+", "-", " ") and line[1:].strip():
            body = line[1:].rstrip("\r\n")
            key = _ENV_KEY.match(body)
            kept = key.group(1) if key and not body.lstrip().startswith("#") else ""
            value = body[len(kept) :]
            if value.strip():
                ending = line[len(line.rstrip("\r\n")) :]
                line = f"{line[0]}{kept}{REDACTED}{ending}"
                count += 1
        out.append(line)
    return "".join(out), count
