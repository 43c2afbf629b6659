"""One module per area of the UI; each holds a `PageSet`."""
