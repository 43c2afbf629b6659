"""The fleet: satellites (servers), the WebSocket hub they dial, groups, metrics and installs.

Conductor side only. The agent lives in :mod:`sundial.satellite`; the two share nothing but
:mod:`sundial.protocol`.
"""
