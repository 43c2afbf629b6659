"""Job actions and notifications: web hooks, e-mail, channels, and the runner that fires them."""
