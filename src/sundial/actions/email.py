"""E-mail: the SMTP transport of `mail_settings` and the job notification messages.

Every message goes out as text plus HTML (multipart/alternative), so plain-text readers get a
complete message too. Custom bodies are Markdown with optional `<!-- Key: value -->` header
lines (Subject, From, Title, Button); Markdown's raw-HTML passthrough is off, so job data
expanded into a body cannot inject markup.
"""

from __future__ import annotations

import functools
import html
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any

from sundial.templates import expand

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

_HEADER = re.compile(r"^\s*<!--\s*([\w ]+?)\s*:\s*(.*?)\s*-->\s*$", re.MULTILINE)
EMAIL_RE = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+$")


@functools.cache
def _markdown() -> MarkdownIt:
    """The Markdown renderer, built for the first custom e-mail body (not at start-up)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False})


class EmailError(Exception):
    pass


@dataclass
class Message:
    to: list[str]
    subject: str
    text: str
    html: str
    sender: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class Mailer:
    """Sends through SMTP per `mail_settings` (`host`, `port`, `secure`, `auth`, `requireTLS`, ...)."""

    def __init__(self, settings: Mapping[str, Any], sender: str, email_format: str = "html") -> None:
        self.settings = dict(settings or {})
        self.sender = sender
        self.email_format = email_format

    def _options(self) -> dict[str, Any]:
        s = self.settings
        if s.get("sendmail"):
            raise EmailError("The sendmail transport is not supported; configure SMTP in mail_settings")
        auth: dict[str, Any] = s["auth"] if isinstance(s.get("auth"), dict) else {}
        tls: dict[str, Any] = s["tls"] if isinstance(s.get("tls"), dict) else {}
        secure = bool(s.get("secure"))
        start_tls: bool | None = None
        if s.get("ignoreTLS"):
            start_tls = False
        elif s.get("requireTLS"):
            start_tls = True
        options: dict[str, Any] = {
            "hostname": str(s.get("host") or "localhost"), "port": int(s.get("port") or (465 if secure else 25)),
            "use_tls": secure, "start_tls": None if secure else start_tls,
            "timeout": float(s.get("connectionTimeout", 30000)) / 1000 if s.get("connectionTimeout") else 30.0,
        }
        if tls.get("rejectUnauthorized") is False:
            options["validate_certs"] = False
            options["tls_context"] = _unverified_context()
        if auth.get("user"):
            options.update(username=str(auth["user"]), password=str(auth.get("pass") or ""))
        return options

    def build(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = message.sender or self.sender
        mail["To"] = ", ".join(message.to)
        mail["Subject"] = message.subject.replace("\n", " ")[:998]
        mail["Date"] = formatdate(localtime=True)
        mail["Message-ID"] = make_msgid(domain=(message.sender or self.sender).rpartition("@")[2] or None)
        for name, value in message.headers.items():
            mail[name] = value
        mail.set_content(message.text)
        if self.email_format != "text" and message.html:
            mail.add_alternative(message.html, subtype="html")
        return mail

    async def send(self, message: Message) -> None:
        """Deliver or raise EmailError with the server's reason (never the credentials)."""
        import aiosmtplib  # on first use: an idle conductor need not hold the SMTP client

        try:
            await aiosmtplib.send(self.build(message), recipients=message.to, **self._options())
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            raise EmailError(str(exc) or type(exc).__name__) from None


def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def recipients(csv: str, user_emails: list[str]) -> list[str]:
    """Addresses from users and the CSV field, de-duplicated, malformed ones dropped."""
    found = [e.strip() for e in [*user_emails, *re.split(r"[,;\s]+", csv or "")] if e and e.strip()]
    return list(dict.fromkeys(e for e in found if EMAIL_RE.match(e)))


# -- job messages -----------------------------------------------------------------------------
SUBJECTS = {
    "job_start": "Job Started: {title}",
    "job_progress": "Job In Progress: {title}",
    "job_success": "Job Completed Successfully: {title}",
    "job_fail": "Job Failed: {title}",
    "job_suspended": "Job Suspended: {title}",
}
INTROS = {
    "job_start": "A job has started.",
    "job_progress": "A job is in progress.",
    "job_success": "A job completed successfully.",
    "job_fail": "A job failed.",
    "job_suspended": "A job is suspended and requires human intervention.",
}


def job_template(condition: str, job: Mapping[str, Any]) -> str:
    """job_start at start; job_progress while running; else success or fail by the code."""
    if condition == "start":
        return "job_start"
    if not job.get("complete") and not job.get("final"):
        return "job_progress"
    return "job_fail" if job.get("code") else "job_success"


def job_rows(data: Mapping[str, Any], template: str) -> list[tuple[str, str]]:
    job, event = data["job"], data.get("event") or {}
    rows = [("Event", str(event.get("title") or job.get("event") or "")),
            ("Category", str((data.get("category") or {}).get("title") or job.get("category") or "")),
            ("Server", str(data.get("nice_server") or "")), ("Job ID", str(job.get("id", ""))),
            ("Source", str(job.get("source") or "")), ("Date/Time", data["display"]["date_time"])]
    if template != "job_start":
        rows.append(("Elapsed", data["display"]["elapsed"]))
    if template in ("job_success", "job_fail"):
        rows += [("Log Size", data["display"]["log_size"]), ("CPU", data["display"]["cpu"]),
                 ("Memory", data["display"]["mem"])]
    if template == "job_fail":
        rows += [("Error Code", str(job.get("code"))), ("Description", str(job.get("description") or ""))]
    return rows


def job_message(data: Mapping[str, Any], template: str, to: list[str], product: str) -> Message:
    """The stock notification for one job: subject, text and HTML with the same content."""
    title = str((data.get("event") or {}).get("title") or data["job"].get("event") or "")
    subject = f"{product}: " + SUBJECTS[template].format(title=title)
    rows = job_rows(data, template)
    links = data["links"]
    notes = str((data.get("event") or {}).get("notes") or "")
    extra = str((data.get("action") or {}).get("text") or "").strip()
    text_lines = [INTROS[template], "", *(f"{k}: {v}" for k, v in rows), "", f"Job Details: {links['job_details']}"]
    if template != "job_start":
        text_lines.append(f"Job Log: {links['job_log']}")
    if template in ("job_success", "job_fail"):
        text_lines += ["", "Output Files:", links["job_files"]]
    if extra:
        text_lines += ["", extra]
    if notes:
        text_lines += ["", "Event Notes:", notes]
    button = links["job_details"] + ("&resume=1" if template == "job_suspended" else "")
    if template == "job_suspended":
        text_lines[text_lines.index(f"Job Details: {links['job_details']}")] = f"Resume or abort: {button}"
    body_html = _html_page(subject, INTROS[template], rows, button, notes, extra)
    return Message(to=to, subject=subject, text="\n".join(text_lines) + "\n", html=body_html)


def _html_page(title: str, intro: str, rows: list[tuple[str, str]], button: str, notes: str, extra: str) -> str:
    esc = html.escape
    table = "".join(f"<tr><th align=\"left\" style=\"padding:4px 12px 4px 0\">{esc(k)}</th>"
                    f"<td style=\"padding:4px 0\">{esc(v)}</td></tr>" for k, v in rows)
    parts = [f"<h2 style=\"margin:0 0 12px 0\">{esc(title)}</h2>", f"<p>{esc(intro)}</p>",
             f"<table style=\"border-collapse:collapse\">{table}</table>",
             f"<p><a href=\"{esc(button, quote=True)}\">View Job Details</a></p>"]
    if extra:
        parts.append(f"<p>{esc(extra)}</p>")
    if notes:
        parts.append(f"<h3>Event Notes</h3><pre style=\"white-space:pre-wrap\">{esc(notes)}</pre>")
    return _wrap_html("".join(parts))


def _wrap_html(inner: str) -> str:
    return ("<!DOCTYPE html><html><body style=\"font-family:sans-serif;font-size:14px;color:#222\">"
            f"{inner}</body></html>")


def custom_message(body: str, data: Mapping[str, Any], to: list[str], product: str) -> Message:
    """An action's own Markdown body: header comments become Subject/From/Title/Button."""
    expanded = expand(body, dict(data), "n/a")
    headers = {m.group(1).strip().lower().replace(" ", "_"): m.group(2) for m in _HEADER.finditer(expanded)}
    text = _HEADER.sub("", expanded).strip() + "\n"
    subject = headers.get("subject") or f"{product} Notification"
    inner = ""
    if headers.get("title"):
        inner += f"<h2>{html.escape(headers['title'])}</h2>"
    inner += _markdown().render(text)
    if headers.get("button"):
        label, _, url = headers["button"].partition("|")
        url = url.strip() or label.strip()
        inner += f"<p><a href=\"{html.escape(url, quote=True)}\">{html.escape(label.strip() or url)}</a></p>"
    return Message(to=to, subject=subject, text=text, html=_wrap_html(inner), sender=headers.get("from", ""))


def password_reset_message(user: Mapping[str, Any], link: str, expires: str, product: str) -> Message:
    """The forgot-password e-mail: who asked (IP), the one-time link and when it stops working."""
    name = str(user.get("full_name") or user.get("username") or "")
    subject = f"{product}: Reset your password"
    intro = (f"Hello {name}, someone (hopefully you) asked to reset the password of the {product} account "
             f"'{user.get('username', '')}'. The link below works once, until {expires}.")
    outro = "If you did not ask for this, ignore this message: your password stays as it is."
    text = f"{intro}\n\nReset your password: {link}\n\n{outro}\n"
    esc = html.escape
    inner = (f"<h2 style=\"margin:0 0 12px 0\">{esc(subject)}</h2><p>{esc(intro)}</p>"
             f"<p><a href=\"{esc(link, quote=True)}\">Reset your password</a></p><p>{esc(outro)}</p>")
    return Message(to=[str(user.get("email") or "")], subject=subject, text=text, html=_wrap_html(inner))


def password_changed_message(user: Mapping[str, Any], when: str, ip: str, product: str) -> Message:
    """The notice after a self-service password change, so an owner spots a change they did not make.
    It names the time and client address, never the password."""
    name = str(user.get("full_name") or user.get("username") or "")
    subject = f"{product}: Your password was changed"
    intro = (f"Hello {name}, the password of the {product} account '{user.get('username', '')}' "
             f"was changed on {when}" + (f" from {ip}." if ip else "."))
    outro = ("If you did not change it, reset your password at once with the 'Forgot password' link "
             "and tell your administrator.")
    text = f"{intro}\n\n{outro}\n"
    esc = html.escape
    inner = f"<h2 style=\"margin:0 0 12px 0\">{esc(subject)}</h2><p>{esc(intro)}</p><p>{esc(outro)}</p>"
    return Message(to=[str(user.get("email") or "")], subject=subject, text=text, html=_wrap_html(inner))
