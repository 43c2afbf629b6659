"""The web UI: server-rendered pages plus the project's own small ES modules.

Pages read from the in-memory services for speed; every change goes through the JSON API
from the browser, so validation, authorization and the activity log live in one place.
See docs/ui.md for how to add a page.
"""
