"""History from other tools, imported so that trends run on across the switch."""
