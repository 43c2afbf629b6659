"""Scheduler: timing objects, trigger kinds and (later) the tick loop and catch-up."""
