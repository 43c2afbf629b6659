"""The live channel: an in-process pub/sub (`bus`) fed from where data arrives (`feeds`).

The WebSocket endpoint that users connect to is `sundial.api.live`; this package knows
nothing of sockets or HTTP, so the job manager and the fleet can publish without any
dependency on the API layer.
"""
