"""Built-in configuration defaults (the bottom layer) and the sample config written on first start.

Key names and defaults follow the xyOps sample config so existing `conf/` folders work.
The configuration reference in docs/ is generated from this module, so it cannot drift.
"""

from __future__ import annotations

from typing import Any

DEFAULT_USER_PREFS: dict[str, Any] = {
    "language": "", "region": "", "num_format": "", "hour_cycle": "h12", "timezone": "",
    "color_acc": False, "privacy_mode": False, "notifications": False, "effects": True,
    "page_info": True, "contrast": "auto", "motion": "auto", "volume": 7,
    "filters": {"brightness": 100, "contrast": 100, "hue": 0, "saturation": 100, "sepia": 0,
                "grayscale": 0},
    "searches": [],
}

DEFAULTS: dict[str, Any] = {
    "base_app_url": "http://localhost:5522",
    "secret_key": "",
    "secret_write_salts": 64,
    "hostname": "",
    "masters": "",
    "temp_dir": "temp",
    "pid_file": "logs/sundial.pid",
    "debug_level": 5,
    "tick_precision_ms": 50,
    "maintenance": "04:00",
    "ttl": 300,
    "file_expiration": "5 years",
    "ping_freq_sec": 5,
    "ping_timeout_sec": 30,
    "max_jobs_per_min": 10000,
    "max_inline_job_log_size": 1048576,
    "max_jobs_per_workflow": 1000,
    "scheduler_stagger_ms": 50,
    "scheduler_max_catchup": 1000,
    "dead_job_timeout": 120,
    "job_env": {},
    "job_universal_actions": {"default": [], "workflow": []},
    "job_universal_limits": {"default": [], "workflow": []},
    "default_plugin_credentials": {kind: {"uid": "", "gid": ""}
                                   for kind in ("event", "action", "monitor", "scheduler")},
    "tz": "",
    "redirect_master_requests": False,
    "recover_admin": "",
    "config_overrides_file": "conf/overrides.json",
    "config_watch_sec": 3,
    "hooks": {},
    "default_user_privileges": {
        "create_events": True, "edit_events": True, "run_jobs": True, "tag_jobs": True,
        "create_tickets": True, "edit_tickets": True,
    },
    "default_user_prefs": DEFAULT_USER_PREFS,
    "email_from": "admin@localhost",
    "mail_settings": {"host": "localhost", "port": 25, "auth": {"user": "", "pass": ""}},
    "email_format": "html",
    "max_emails_per_day": 0,
    "log_dir": "logs",
    "log_filename": "[component].log",
    "log_columns": ["hires_epoch", "date", "hostname", "pid", "component", "category", "code",
                    "msg", "data"],
    "log_archive_path": "logs/archives/[yyyy]/[mm]/[dd]/[filename]-[yyyy]-[mm]-[dd].log.gz",
    "log_archive_keep": "30 days",
    "log_crashes": True,
    "db_maint": {"jobs": {"max_rows": 100000}, "alerts": {"max_rows": 100000},
                 "snapshots": {"max_rows": 100000}, "activity": {"max_rows": 100000},
                 "servers": {"max_rows": 10000}},
    "airgap": {
        "enabled": False,
        "whitelist": ["127.0.0.1/32", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128",
                      "fd00::/8", "169.254.0.0/16", "fe80::/10"],
        "blacklist": [],
    },
    "local_satellite": {"enabled": True},
    "satellite": {
        "enable_version_checks": False,
        "config": {"port": 5522, "secure": False, "host": "", "monitoring_enabled": True,
                   "quickmon_enabled": True},
    },
    "multi": {"master_list_file": "conf/masters.json", "master_timeout_sec": 10,
              "connect_timeout_sec": 3},
    "client": {"name": "Sundial", "items_per_page": 50},
    "Storage": {
        "url": "",
        "sqlite_file": "data/sundial.db",
        "pool_size": 5,
        "backups": 7,
    },
    "WebServer": {
        "port": 5522,
        "bind_address": "0.0.0.0",
        "max_upload_size": 1073741824,
        "max_json_size": 33554432,
        "timeout": 30,
        "https": True,
        "https_port": 5523,
        "https_cert_file": "conf/tls.crt",
        "https_key_file": "conf/tls.key",
        "https_force": False,
        "https_header_detect": {"Front-End-Https": "^on$", "X-Url-Scheme": "^https$",
                                "X-Forwarded-Protocol": "^https$", "X-Forwarded-Proto": "^https$",
                                "X-Forwarded-Ssl": "^on$"},
        "log_requests": False,
    },
    "User": {
        "session_expire_days": 365,
        "max_failed_logins_per_hour": 5,
        "max_forgot_passwords_per_hour": 3,
        "free_accounts": False,
        "use_bcrypt": True,
        "use_csrf": True,
        "self_delete": True,
        "valid_username_match": r"^[\w\-\.]+$",
        "cookie_settings": {"path": "/", "secure": "auto", "httpOnly": True, "sameSite": "Lax"},
    },
}

SAMPLE_CONFIG = """\
// Sundial configuration. Whole-line // comments are allowed in this file.
// Precedence, lowest first: built-in defaults < this file < command-line flags
// < environment (SUNDIAL_key, SUNDIAL_Section__key; XYOPS_ also accepted)
// < conf/overrides.json (written by the server: generated secret_key, UI edits).
// See docs/configuration.md for every key.
{
\t// Public URL used in links, emails and web hooks.
\t"base_app_url": "http://localhost:5522",

\t// 1 (quiet) to 10 (verbose).
\t"debug_level": 5,

\t// Daily maintenance time (server local time, HH:MM).
\t"maintenance": "04:00",

\t"WebServer": {
\t\t"port": 5522,
\t\t"https_port": 5523
\t},

\t// Storage: leave "url" empty for the embedded SQLite file (data/sundial.db),
\t// or set a PostgreSQL URL such as "postgresql://user@db.example.com/sundial".
\t"Storage": {
\t\t"url": ""
\t},

\t// Start a satellite agent on this machine so jobs run with no extra set-up.
\t"local_satellite": {
\t\t"enabled": true
\t}
}
"""

# One line per key for the generated configuration reference (docs/configuration.md).
DESCRIPTIONS: dict[str, str] = {
    "base_app_url": "Public URL of the conductor, used in links, e-mails and web hooks.",
    "secret_key": "Signs tokens, authenticates satellites and peers, encrypts secrets. Generated on first start.",
    "secret_write_salts": "Fresh secret-encryption salts kept derived in memory (one scrypt each, ~30 ms of CPU, "
                          "done in the background 10 s after start and after saves), so a burst of secret saves "
                          "needs no scrypt while it waits. Never written anywhere; 4 is the minimum.",
    "hostname": "Host ID of this conductor (default: the OS hostname, lower-cased).",
    "masters": "Comma-separated conductor host list (multi-conductor).",
    "temp_dir": "Scratch space for uploads and plugin bundles.",
    "pid_file": "Where the running conductor writes its process ID.",
    "debug_level": "Log verbosity, 1 (quiet) to 10 (verbose).",
    "tick_precision_ms": "Internal timer granularity.",
    "maintenance": "Daily maintenance time (server local time, HH:MM).",
    "ttl": "Cache-Control max-age (seconds) of cacheable API responses such as searches.",
    "file_expiration": "Default lifetime of uploaded files.",
    "ping_freq_sec": "WebSocket keep-alive ping interval.",
    "ping_timeout_sec": "Seconds without a pong before a socket is considered dead.",
    "max_jobs_per_min": "Global job-start emergency brake (launches per minute; 0 = off).",
    "max_inline_job_log_size": "Job logs up to this size are kept inline in the job record; larger ones are gzipped.",
    "max_jobs_per_workflow": "Most sub-jobs one workflow run may start.",
    "scheduler_stagger_ms": "Pause between waves of scheduled launches falling on the same minute; waves grow so a "
                            "minute is handed over within about a second (0 = all at once).",
    "scheduler_max_catchup": "Most missed runs a catch-up event replays after downtime (the newest are kept).",
    "dead_job_timeout": "Seconds without updates before a running job is declared dead.",
    "job_env": "Environment variables added to every job.",
    "job_universal_actions": "Actions appended to every job after its category's, as xyOps action objects: "
                             "`default` for plain jobs, `workflow` for workflow runs; only enabled ones; test "
                             "runs get them only with test_actions. xyOps ships a snapshot-on-error action here; "
                             "Sundial ships none because server snapshots do not exist yet (such an action would "
                             "fail at once with code `snapshot`), see docs/compatibility.md.",
    "job_universal_limits": "Limits appended to every job after its category's (`default` for plain jobs, "
                            "`workflow` for workflow runs; only enabled ones; test runs get them only with "
                            "test_limits). For single-instance limits (job, queue, retry, file, tag) the event's "
                            "and category's come first.",
    "default_plugin_credentials": "Run-as user and group (`uid`, `gid`: a name, or a numeric id written as a "
                                  "string such as \"1000\") per plugin type: `event` (jobs, on the satellite), "
                                  "`action` and `scheduler` (on the conductor), `monitor` (accepted, not applied "
                                  "yet); used when the plugin sets none. Empty = the account of the process that "
                                  "runs it. Linux/macOS.",
    "tz": "Default time zone of the scheduler and UI (IANA name; empty = the process zone).",
    "redirect_master_requests": "Answer API calls on a non-primary conductor with a 302 to the primary.",
    "recover_admin": "USER:PASS creates or resets a hidden emergency administrator at every start.",
    "config_overrides_file": "Server-written overrides (generated secret_key, UI edits). Applied last.",
    "config_watch_sec": "How often (seconds) the conductor checks conf/config.json and the overrides file for "
                        "changes and reloads them live (0 = only on SIGHUP). An invalid file keeps the running "
                        "config and logs an error; port, storage, log paths and secret_key need a restart.",
    "hooks": "System hooks keyed by activity action.",
    "default_user_privileges": "Privileges the UI proposes for new users.",
    "default_user_prefs": "UI preferences given to new users (only for keys they do not set).",
    "email_from": "Sender address of notification e-mails.",
    "mail_settings": "SMTP transport: host, port, auth, secure.",
    "email_format": "html or text.",
    "max_emails_per_day": "0 = unlimited.",
    "log_dir": "Folder of the component logs and job logs.",
    "log_filename": "[component].log gives one file per component; a literal name gives one combined log.",
    "log_columns": "Columns of each bracketed log row, in order.",
    "log_archive_path": "Nightly gzip archive target ([yyyy] [mm] [dd] [filename] placeholders); empty = off.",
    "log_archive_keep": "Delete archives older than this (e.g. 30 days); empty = keep forever.",
    "log_crashes": "Write uncaught crashes to crash.log.",
    "db_maint": "Row caps per database index, enforced by daily maintenance.",
    "airgap": "Outbound allow/deny CIDR lists for the conductor's HTTP client.",
    "local_satellite": "Start a satellite on the conductor's own machine.",
    "satellite": "What satellites are told: their config, version checks.",
    "multi": "Multi-conductor settings.",
    "client": "Settings sent to the web UI.",
    "Storage": "Database: url (empty = embedded SQLite at sqlite_file; or postgresql://...), pool_size, "
               "schema (PostgreSQL search path), backups (daily online SQLite copies kept in data/backups; "
               "0 = none).",
    "WebServer": "Listeners and request limits: port, bind_address, max_upload_size, max_json_size, "
                 "https (on by default: self-signed certificate generated on first start), https_port, "
                 "certificate files, https_force (redirect HTTP to HTTPS), https_header_detect (proxy "
                 "headers that mark a request as HTTPS). See docs/tls.md.",
    "WebServer.https": "Serve HTTPS on https_port beside HTTP (self-signed certificate generated on first "
                       "start when the certificate files are left at their defaults).",
    "WebServer.https_port": "HTTPS listener port.",
    "WebServer.https_cert_file": "PEM certificate (chain) for HTTPS; must match https_key_file.",
    "WebServer.https_key_file": "PEM private key for HTTPS (unencrypted, mode 0600).",
    "WebServer.https_force": "Redirect plain HTTP requests to HTTPS (not /health, WebSockets or local clients).",
    "WebServer.https_header_detect": "Request headers (name: regex) that mark a request as HTTPS behind a proxy.",
    "Storage.backups": "Daily online SQLite backups kept (gzip) in data/backups; 0 = none.",
    "User": "Accounts: session_expire_days, lockout threshold, use_csrf, cookie_settings, username pattern.",
}
