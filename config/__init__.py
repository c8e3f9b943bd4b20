"""Runtime settings and the example organisation configuration."""
