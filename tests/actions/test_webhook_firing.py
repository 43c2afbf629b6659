"""Web hook firing in-process against a local receiver: secrets, templates, retries, details, logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hook_receivers import Receiver

from sundial.actions import webhooks as webhooks_module
from sundial.actions.webhooks import WebHooks
from sundial.logs import LogManager
from sundial.netpolicy import AirgapRules, ProxySettings
from sundial.outbound import Outbound

SECRET = "s3cr3t-{{job.id}}-value"


class Items(dict[str, Any]):
    """Stands in for the in-memory web hook list (`get` and `in`)."""


@pytest.fixture
def hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(webhooks_module, "RETRY_BASE_DELAY", 0.01)
    logs = LogManager(tmp_path, columns=["component", "category", "code", "msg", "data"], debug_level=9,
                      hostname="test")
    items: Any = Items(saved={"id": "saved"})
    no_counters: Any = None  # only saved hooks fired by id are counted; these tests fire hook objects
    service = WebHooks(items, Outbound(AirgapRules(), ProxySettings()), no_counters, logs.logger("WebHook"))

    async def secrets(hook_id: str) -> dict[str, str]:
        return {"TOKEN": SECRET} if hook_id == "saved" else {}

    service.secret_source = secrets
    yield service, tmp_path / "WebHook.log"
    logs.close()


def hook(url: str, **extra: Any) -> dict[str, Any]:
    return {"id": "saved", "title": "T", "method": "POST", "url": url, "timeout": 5, "retries": 0,
            "headers": [{"name": "Authorization", "value": "Bearer {{ secrets.TOKEN }}"},
                        {"name": "Content-Type", "value": "application/json"}],
            "body": '{"job":"{{job.id}}","title":"{{event.title}}","missing":"{{job.nope}}","t":"{{secrets.TOKEN}}"}',
            **extra}


async def test_templates_and_secrets_reach_the_request_but_not_details_or_logs(hooks: Any) -> None:
    service, log_file = hooks
    receiver = Receiver()
    try:
        data = {"job": {"id": "j123", "data": {"x": "{{secrets.TOKEN}}"}}, "event": {"title": "Nightly"}}
        result = await service.fire(hook(receiver.url("/h?job={{job.id}}"), retries=1), data)
        await service.outbound.aclose()
    finally:
        receiver.close()
    assert result.code == 0 and result.description == "Success (HTTP 200 OK)"
    sent = receiver.hits[0]
    assert sent.path == "/h?job=j123"
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"  # a secret that looks like a macro stays verbatim
    assert json.loads(sent.body) == {"job": "j123", "title": "Nightly", "missing": "N/A", "t": SECRET}
    assert "**Method:** POST" in result.details and "**Max Retries:** 1" in result.details
    assert "(REDACTED)" in result.details and "s3cr3t" not in result.details
    text = log_file.read_text()
    assert "Firing web hook saved" in text and "s3cr3t" not in text and "Authorization" not in text


async def test_job_data_cannot_pull_secrets_in(hooks: Any) -> None:
    service, _ = hooks
    prepared = service.prepare({"url": "http://x/{{job.data.x}}", "method": "GET"},
                               {"job": {"data": {"x": "{{secrets.TOKEN}}"}}}, {"TOKEN": "v"})
    assert prepared.url == "http://x/N/A"
    assert prepared.body is None  # GET sends no body


async def test_retries_on_500_then_success(hooks: Any) -> None:
    service, _ = hooks
    receiver = Receiver(statuses=[500, 503])
    try:
        result = await service.fire(hook(receiver.url(), retries=2, id="unsaved"), {})
        assert result.code == 0 and len(receiver.hits) == 3
        failing = Receiver(statuses=[500, 500, 500])
        result = await service.fire(hook(failing.url("/f"), retries=1, id="unsaved"), {})
        assert result.code == "webhook"
        assert result.description == f"Error: HTTP 500 Internal Server Error: {failing.url('/f')}"
        assert len(failing.hits) == 2
        failing.close()
        not_retried = Receiver(statuses=[404])
        result = await service.fire(hook(not_retried.url(), retries=3, id="unsaved"), {})
        assert result.description.startswith("Error: HTTP 404 Not Found") and len(not_retried.hits) == 1
        not_retried.close()
    finally:
        await service.outbound.aclose()
        receiver.close()


async def test_timeout_and_unreachable_are_clear_errors(hooks: Any) -> None:
    service, _ = hooks
    slow = Receiver(delay=1.5)
    try:
        result = await service.fire(hook(slow.url(), timeout=0.3, id="unsaved"), {})
        assert result.code == "webhook"
        assert result.description == f"Error: Request timed out after 0 seconds: {slow.url()}" or \
            result.description.startswith("Error: Request timed out")
        result = await service.fire(hook("http://127.0.0.1:9/closed", id="unsaved"), {})
        assert result.code == "webhook" and result.description.startswith("Error: ")
        assert "http://127.0.0.1:9/closed" in result.description
    finally:
        await service.outbound.aclose()
        slow.close()


async def test_saved_hook_checks(hooks: Any) -> None:
    service, _ = hooks
    service.items["off"] = {"id": "off", "enabled": False}
    assert (await service.fire("nope", {})).description == "Error: Web Hook not found: nope"
    assert (await service.fire("off", {})).description == "Error: Web Hook is disabled: off"
    await service.outbound.aclose()
