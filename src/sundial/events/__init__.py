"""Event records: what to run (plugin, params), where (targets, algo), when (triggers), and how (limits,
actions)."""
