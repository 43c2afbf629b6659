"""The verb API: one module per area, each declaring its verbs on a VerbRouter."""
