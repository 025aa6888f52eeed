"""Secrets stay secret (issue 17, item 4): never in a repr, an error or a log line; from
a mounted secrets file; and the SMTP password goes only to a server whose certificate
checks out."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from typer.testing import CliRunner

from onestop.alerts.messages import Notice
from onestop.alerts.notifier import Mailer
from onestop.common.settings import Settings
from onestop.consumers.store import shown_url
from onestop.streams.cli import app
from tests.conftest import suite_secret

SECRET = suite_secret("Mat-khau-9x!")


def test_passwords_are_in_no_repr_and_reach_a_child_process() -> None:
    settings = Settings(smtp_password=SECRET, kafka_password=SECRET,
                        database_url=f"postgresql+psycopg://onestop:{SECRET}@db/onestop")
    for shown in (repr(settings), str(settings)):
        assert SECRET not in shown
    environment = settings.environment()
    assert environment["ONESTOP_SMTP_PASSWORD"] == SECRET
    assert environment["ONESTOP_KAFKA_PASSWORD"] == SECRET


def test_a_password_may_come_from_a_mounted_secrets_file(tmp_path: Path) -> None:
    (tmp_path / "onestop_smtp_password").write_text(SECRET)
    assert Settings(_secrets_dir=tmp_path).smtp_password.get_secret_value() == SECRET


def test_the_database_password_may_come_alone_and_joins_its_url(tmp_path: Path) -> None:
    """The compose stack's way: a URL without a password, the password as a secret file."""
    (tmp_path / "onestop_database_password").write_text(SECRET + "\n")
    settings = Settings(_secrets_dir=tmp_path,
                        database_url="postgresql+psycopg://onestop@postgres:5432/onestop")
    assert settings.database_url == (
        "postgresql+psycopg://onestop:Mat-khau-9x%21@postgres:5432/onestop")
    assert SECRET not in repr(settings) and "Mat-khau" not in repr(settings)
    # A URL that names its own password keeps it.
    own = Settings(database_password="other", database_url="postgresql+psycopg://u:pw@h/d")
    assert own.database_url == "postgresql+psycopg://u:pw@h/d"


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+psycopg://onestop:s3cret@db:5432/onestop",
     "postgresql+psycopg://onestop:***@db:5432/onestop"),
    ("postgresql+psycopg://onestop:p@ss@db/onestop", "postgresql+psycopg://onestop:***@db/onestop"),
    ("postgresql+psycopg://onestop@db/onestop", "postgresql+psycopg://onestop@db/onestop"),
    ("sqlite:///onestop.db", "sqlite:///onestop.db"),
])
def test_database_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_a_database_error_does_not_print_the_password() -> None:
    port = free_port()  # nothing listens there
    for arguments in (["db", "current"], ["report", "--period", "2026-03"]):
        result = CliRunner().invoke(
            app, [*arguments, "--db", f"postgresql+psycopg://onestop:{SECRET}@127.0.0.1:{port}/x"])
        assert result.exit_code != 0
        assert "cannot use the database" in result.output or "onestop:***@" in result.output
        assert SECRET not in result.output


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def notice() -> Notice:
    return Notice("alert", "k", ("head@example.vn",), "Subject", ("Body",))


def serve(authority: trustme.CA, implicit: bool) -> tuple[Controller, Inbox]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    inbox = Inbox()
    port = free_port()
    if implicit:
        controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=context)
    else:
        controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context,
                                require_starttls=True)
    controller.start()
    return controller, inbox


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit-tls"])
def test_smtp_over_tls_checks_the_server_s_certificate(
    authority: trustme.CA, tmp_path: Path, implicit: bool
) -> None:
    controller, inbox = serve(authority, implicit)
    try:
        options = {"smtp_host": "127.0.0.1", "smtp_port": controller.port,
                   "smtp_starttls": not implicit, "smtp_implicit_tls": implicit}
        # A certificate no trusted authority signed: nothing is sent, the password neither.
        with pytest.raises(ssl.SSLCertVerificationError):
            Mailer(Settings(**options)).send(notice(), "head@example.vn")
        assert inbox.messages == []
        ca_file = tmp_path / "ca.pem"
        authority.cert_pem.write_to_path(str(ca_file))
        Mailer(Settings(**options, smtp_ca_file=str(ca_file))).send(notice(), "head@example.vn")
        assert [message.rcpt_tos for message in inbox.messages] == [["head@example.vn"]]
    finally:
        controller.stop()
