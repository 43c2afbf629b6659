"""admin_send_test_email: one message through the configured SMTP server, the outcome as a result."""

from __future__ import annotations

from hook_receivers import SmtpSink, wait_for

from harness import login


def test_test_email_is_delivered_and_failures_are_reported(fresh_conductor):
    sink, closed = SmtpSink(), False
    proc = fresh_conductor(settings={"mail_settings.host": "127.0.0.1", "mail_settings.port": sink.port,
                                     "email_from": "sundial@example.com"}).start()
    admin = login(proc.url, "admin", "admin")
    try:
        sent = admin.ok("admin_send_test_email", {"to": "ops@example.com"})
        assert sent["err"] is False and sent["description"] == "Test e-mail sent to ops@example.com."
        assert "ops@example.com" in sent["details"]
        rcpt, parsed = wait_for(lambda: sink.messages and sink.messages[0], 10, "the test message")
        assert rcpt == ["ops@example.com"] and parsed["From"] == "sundial@example.com"
        assert "e-mail delivery works" in parsed.get_body(("plain",)).get_content()
        sink.close()
        closed = True
        failed = admin.ok("admin_send_test_email", {"to": "ops@example.com"})
        assert failed["err"] and failed["description"].startswith("Failed to send test e-mail")
        assert admin.call("admin_send_test_email", {"to": "not-an-address"})["code"] == "api"
        assert admin.call("admin_send_test_email", {}) == {"code": "api", "description": "Missing parameter: to"}
    finally:
        admin.close()
        if not closed:
            sink.close()
