"""Scheduler: timing objects, trigger kinds, the minute loop with catch-up, exactly-once slots, plugins."""
