"""Users, sessions, API keys, privileges and roles."""
