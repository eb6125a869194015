"""The JSON HTTP API (`/api/v1/...`) for admins' systems: bearer keys, JSON in and out."""
