"""The conductor's services, handed to every verb as `call.services`.

Built and started in order by `sundial.app`; nothing here is a module-level singleton, so
tests and the CLI can build as many independent instances as they need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sundial.actions.daily import DailyCounters
from sundial.activity import ActivityLog
from sundial.auth.accounts import Accounts
from sundial.auth.apikeys import ApiKeyService
from sundial.auth.users import UserService
from sundial.config import Config
from sundial.events.service import EventService
from sundial.internal_jobs import InternalJobs
from sundial.jobs.launch import Launcher
from sundial.jobs.manager import JobManager
from sundial.live.bus import LiveBus
from sundial.logs import Logger, LogManager
from sundial.objects import ObjectStore
from sundial.state import StateService
from sundial.storage.engine import Storage
from sundial.storage.lists import ConfigList
from sundial.vault.rotation import Rotations
from sundial.vault.service import VaultService

if TYPE_CHECKING:
    from sundial.actions.service import ActionService
    from sundial.fleet.service import FleetService
    from sundial.maintenance import MaintenanceService
    from sundial.scheduler.service import SchedulerService


@dataclass
class Services:
    config: Config
    logs: LogManager
    storage: Storage
    lists: dict[str, ConfigList]
    users: UserService
    accounts: Accounts
    api_keys: ApiKeyService
    activity: ActivityLog
    objects: ObjectStore
    state: StateService
    events: EventService
    jobs: JobManager
    launcher: Launcher
    vault: VaultService  # secrets, the key in force, rotation hooks
    internal_jobs: InternalJobs
    rotations: Rotations  # both key-rotation front ends
    daily: DailyCounters  # today's counters: job stats, `day` limits, daily caps of hooks/channels/e-mail
    hostname: str
    started: float
    is_primary: Callable[[], bool] = lambda: True
    extras: dict[str, Any] = field(default_factory=dict)
    live: LiveBus = field(default_factory=LiveBus)  # the live channel's topics (the job manager's bus)
    actions: ActionService | None = None  # web hooks, e-mail, channels, job actions (set by app.py)
    fleet: FleetService | None = None  # satellites: hub, servers, groups, metrics (set by app.py)
    scheduler: SchedulerService | None = None  # the minute loop (set by app.py)
    maintenance: MaintenanceService | None = None  # daily upkeep, log archives, SQLite backups (set by app.py)

    def list(self, name: str) -> ConfigList:
        return self.lists[name]

    def logger(self, component: str) -> Logger:
        return self.logs.logger(component)
