"""Launching jobs from events: the checks every source shares (API, scheduler, actions, retries)."""

from __future__ import annotations

from typing import Any, Protocol

from sundial.jobs.build import LaunchError, LaunchSettings, expand_params, first_enabled, job_from_event
from sundial.jobs.daystats import check_day_limits
from sundial.jobs.manager import JobManager
from sundial.storage.lists import ConfigList


class Settings(Protocol):
    """The part of `sundial.config.Config` a launch reads."""

    def get(self, path: str, default: Any = None) -> Any: ...


def allows_manual_runs(event: dict[str, Any]) -> bool:
    return any(isinstance(t, dict) and t.get("type") == "manual" and t.get("enabled")
               for t in event.get("triggers") or [])


class Launcher:
    def __init__(self, manager: JobManager, lists: dict[str, ConfigList], config: Settings) -> None:
        self.manager = manager
        self.lists = lists
        self.config = config
        manager.retry_gate = self.check_retry

    def settings(self) -> LaunchSettings:
        """Read at every launch, so a configuration change applies to the next job."""
        def mapping(path: str) -> dict[str, Any]:
            value = self.config.get(path)
            return value if isinstance(value, dict) else {}

        return LaunchSettings(job_env=mapping("job_env"), universal_actions=mapping("job_universal_actions"),
                              universal_limits=mapping("job_universal_limits"),
                              credentials=mapping("default_plugin_credentials.event"))

    async def launch(self, event: dict[str, Any], overrides: dict[str, Any], *, source: str,
                     username: str = "", api_key: str = "", manual: bool = False) -> dict[str, Any]:
        """Build, check and accept one job; raises LaunchError before anything is stored."""
        job = self.build(event, overrides, source=source, username=username, api_key=api_key, manual=manual)
        return await self.manager.accept(job)

    def build(self, event: dict[str, Any], overrides: dict[str, Any], *, source: str, username: str = "",
              api_key: str = "", manual: bool = False) -> dict[str, Any]:
        """The checked job for an event, not yet stored (the scheduler stores batches itself)."""
        test = bool(overrides.get("test"))
        if manual and not test and not allows_manual_runs(event):
            raise LaunchError(f"Event does not allow manual job runs: {event.get('id')}", "event")
        category = self.lists["categories"].get(str(event.get("category")))
        if category is None:
            raise LaunchError(f"Category not found: {event.get('category')}", "event")
        plugin = self._plugin(event)
        if not test:
            self._check_enabled(event, category, plugin)
        job = job_from_event(event, overrides, category=category, plugin=plugin, settings=self.settings())
        job["source"] = source
        if username:
            job["username"] = username
        if api_key:
            job["api_key"] = api_key
        queue = first_enabled(job["limits"], "queue")
        if queue and float(queue.get("amount") or 0) > 0 and not first_enabled(job["limits"], "job"):
            raise LaunchError("A queue limit needs a job limit", "event")
        if self.manager.daily is not None:
            check_day_limits(job, self.manager.daily)
        expand_params(job, [str(f["id"]) for f in event.get("fields") or [] if isinstance(f, dict) and "id" in f])
        return job

    def _plugin(self, event: dict[str, Any]) -> dict[str, Any] | None:
        plugin_id = str(event.get("plugin") or "")
        if event.get("type") == "workflow" or plugin_id.startswith("_"):
            return None
        plugin = self.lists["plugins"].get(plugin_id)
        if plugin is None:
            raise LaunchError(f"Plugin not found: {plugin_id}", "event")
        return plugin

    @staticmethod
    def _check_enabled(event: dict[str, Any], category: dict[str, Any], plugin: dict[str, Any] | None) -> None:
        if not event.get("enabled"):
            raise LaunchError(f"Event is disabled: {event.get('title')}", "event")
        if not category.get("enabled", True):
            raise LaunchError(f"Category is disabled: {category.get('title')}", "event")
        if plugin is not None and not plugin.get("enabled", True):
            raise LaunchError(f"Plugin is disabled: {plugin.get('title')}", "event")

    def check_retry(self, job: dict[str, Any]) -> None:
        """The launch checks a retry passes again (events-and-jobs §8.4: retries take the launch
        path): its event still exists and is enabled (unless a test), and no `day` limit is used
        up (manual sources excepted). It keeps the limits and actions of the failed attempt, so
        nothing is appended twice. Raises LaunchError; the failed job then ends without a retry."""
        if job.get("type") != "adhoc":  # workflow job nodes have no event of their own
            event = self.lists["events"].get(str(job.get("event") or ""))
            if event is None:
                raise LaunchError(f"Event not found: {job.get('event')}", "event")
            if not job.get("test") and not event.get("enabled"):
                raise LaunchError(f"Event is disabled: {event.get('title')}", "event")
        if self.manager.daily is not None:
            check_day_limits(job, self.manager.daily)
