"""The Mastodon-compatible client API and fedisora's own render endpoints."""
