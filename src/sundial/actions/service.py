"""The actions service: web hooks, e-mail, channels and the job action runner, wired once.

Built by `sundial.app` after the other services and registered in the job manager's
condition hooks and suspend gate. Secrets for web hooks come from a pluggable source (`set_secret_source`)
so the vault can provide `{{ secrets.NAME }}` without this package knowing its internals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sundial.actions.email import EmailError, Mailer, Message
from sundial.actions.hookdata import DEFAULT_HOSTNAME_STRIP, SiteInfo, job_hook_data
from sundial.actions.runner import ActionRunner
from sundial.actions.webhooks import LOG_COMPONENT, SecretSource, WebHooks
from sundial.jobs.build import log_token
from sundial.outbound import Outbound

if TYPE_CHECKING:
    from sundial.services import Services


class ActionService:
    def __init__(self, services: Services, outbound: Outbound | None = None) -> None:
        self.services = services
        config = services.config
        self.outbound = outbound or Outbound.from_config(config.get("airgap"))
        self.counters = services.daily  # shared with the job stats; loaded and flushed by the job manager
        self.web_hooks = WebHooks(services.list("web_hooks"), self.outbound, self.counters,
                                  services.logger(LOG_COMPONENT), config.get("web_hook_custom_opts") or {})
        self.site = self._site_info()
        self.runner = ActionRunner(self)
        services.jobs.condition_hooks.append(self.runner.on_condition)
        services.jobs.suspend_gate = self.runner.suspender.gate

    def _site_info(self) -> SiteInfo:
        config, templates = self.services.config, self.services.config.get("hook_text_templates")
        return SiteInfo(
            base_url=str(config.get("base_app_url") or "http://localhost:5522"),
            product=str(config.get("client.name") or "Sundial"), host_id=self.services.hostname,
            hostname_strip=str(config.get("hostname_display_strip") or DEFAULT_HOSTNAME_STRIP),
            log_token=lambda job_id: log_token(job_id, str(config.get("secret_key") or "")),
            text_templates=templates if isinstance(templates, dict) else None)

    def refresh_site(self) -> None:
        """After a config reload: links and texts of the next messages use the new values."""
        self.site = self._site_info()

    def set_secret_source(self, source: SecretSource) -> None:
        """Plug in `{{ secrets.NAME }}` for saved hooks: `await source(hook_id)` -> {name: value}."""
        self.web_hooks.secret_source = source

    def hook_data(self, job: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
        lists = self.services.lists
        server_id = str(job.get("server") or "")
        server = next((s for s in self.services.jobs.fleet.online_servers() if s.get("id") == server_id), None) \
            if server_id else None
        return job_hook_data(job, action, site=self.site, event=lists["events"].get(str(job.get("event") or "")),
                             category=lists["categories"].get(str(job.get("category") or "")),
                             plugin=lists["plugins"].get(str(job.get("plugin") or "")), server=server)

    async def send_email(self, message: Message) -> None:
        """Send one message, counted against `max_emails_per_day`."""
        limit = int(self.services.config.get("max_emails_per_day") or 0)
        if await self.counters.take("emails.sent", limit) is None:
            raise EmailError(f"Maximum daily email limit has been reached ({limit}/day)")
        await self.mailer().send(message)

    def mailer(self) -> Mailer:
        """Built per message from the live config, so an edited `mail_settings` applies at once."""
        config = self.services.config
        return Mailer(config.get("mail_settings") or {}, str(config.get("email_from") or "admin@localhost"),
                      str(config.get("email_format") or "html"))

    async def aclose(self) -> None:
        await self.outbound.aclose()
