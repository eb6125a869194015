"""Channel adapters: how one rendered message leaves the building (Twilio SMS, SMTP email, or the log)."""
