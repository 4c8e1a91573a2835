"""Settings, auth, errors and metrics of the gateway."""
