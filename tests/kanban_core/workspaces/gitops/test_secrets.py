"""Secret redaction in diffs and logs, and display-name cleaning."""

from __future__ import annotations

import pytest

from kanban_core.workspaces.gitops.secrets import REDACTED, clean_display, redact, scrub_urls

PEM_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
PEM_DIFF = (
    "diff --git a/id_ed25519 b/id_ed25519\n"
    "--- /dev/null\n+++ b/id_ed25519\n@@ -0,0 +1,4 @@\n"
    "+-----BEGIN OPENSSH PRIVATE KEY-----\n"
    f"+{PEM_BODY}\n+{PEM_BODY[::-1]}\n"
    "+-----END OPENSSH PRIVATE KEY-----\n"
)


def test_a_private_key_block_is_redacted_keeping_its_markers() -> None:
    text, n = redact(PEM_DIFF)
    assert n == 1
    assert PEM_BODY not in text
    assert PEM_BODY[::-1] not in text
    assert "-----BEGIN OPENSSH PRIVATE KEY-----" in text
    assert "-----END OPENSSH PRIVATE KEY-----" in text
    assert REDACTED in text


def test_an_unterminated_private_key_is_redacted_to_the_end() -> None:
    text, n = redact(f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n")
    assert n == 1
    assert PEM_BODY not in text


@pytest.mark.parametrize(
    "secret",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "ASIAIOSFODNN7EXAMPLE",
        "ghp_" + "a1B2c3D4e5" * 4,
        "gho_" + "Z" * 36,
        "ghs_" + "0" * 36,
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEF",
        "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
        "xoxp-1234567890-abcdef",
        "sk-proj-" + "x" * 40,
        "sk-ant-api03-" + "Y" * 30,
    ],
)
def test_tokens_are_redacted(secret: str) -> None:
    text, n = redact(f'+token = "{secret}"  # keep this comment\n')
    assert secret not in text
    assert n == 1
    assert text == f'+token = "{REDACTED}"  # keep this comment\n'


@pytest.mark.parametrize(
    "harmless",
    ["task-force-one-two-three-four-five", "AKIA123", "ghp_short", "sk-learn", "desk-lamp"],
)
def test_ordinary_text_is_left_alone(harmless: str) -> None:
    assert redact(f"+{harmless}\n") == (f"+{harmless}\n", 0)


def test_an_aws_secret_assignment_is_redacted() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # noqa: S105 (AWS's documented example)
    text, n = redact(f"aws_secret_access_key = {secret}\n")
    assert (secret in text, n) == (False, 1)


@pytest.mark.parametrize("name", [".env", "config/prod.env", ".env.local", "svc/.env"])
def test_env_file_contents_are_redacted_in_a_diff(name: str) -> None:
    patch = (
        f"diff --git a/{name} b/{name}\n--- a/{name}\n+++ b/{name}\n@@ -1,3 +1,3 @@\n"
        " DEBUG=1\n-DB_PASSWORD=old-hunter2\n+DB_PASSWORD=new-hunter2\n+# rotated by ops\n"
        "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n"
        "-PASSWORD=visible-in-code\n+x = 1\n"
    )
    text, n = redact(patch)
    assert "hunter2" not in text
    assert "rotated by ops" not in text
    assert f"+DB_PASSWORD={REDACTED}\n" in text
    assert f" DEBUG={REDACTED}\n" in text
    assert "-PASSWORD=visible-in-code" in text  # not an .env file
    assert f"+++ b/{name}" in text
    assert n == 4


def test_an_env_example_name_that_only_looks_alike_is_not_an_env_file() -> None:
    patch = "diff --git a/environment.py b/environment.py\n@@ -0,0 +1 @@\n+KEY=value\n"
    assert redact(patch) == (patch, 0)


def test_clean_display_strips_controls_and_bidi_but_keeps_unicode() -> None:
    assert clean_display("ümlaut\u202e txt.exe\u202c\x1b[31m\n新") == "ümlaut txt.exe[31m新"
    assert clean_display("a\u2066b\u2069c\x00") == "abc"


def test_clean_display_makes_undecodable_bytes_sendable() -> None:
    shown = clean_display("bad-\udcff.txt")
    assert shown == "bad-\ufffd.txt"
    shown.encode("utf-8")


def test_scrub_urls_drops_credentials() -> None:
    msg = "fatal: unable to access 'https://x-access-token:ghs_abc@github.com/o/r.git/': 403"
    assert scrub_urls(msg) == "fatal: unable to access 'https://github.com/o/r.git/': 403"
