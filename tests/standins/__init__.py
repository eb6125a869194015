"""Local protocol stand-ins (Slack Web API, Twilio REST, SMTP) and request builders for tests."""
