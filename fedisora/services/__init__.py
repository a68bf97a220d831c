"""Use cases shared by the Mastodon API, the web UI and federation. No HTTP in here."""
