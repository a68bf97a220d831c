"""Mastodon's streaming API underneath: stream types and per-viewer messages
(:mod:`~fedisora.streaming.channels`) and how events travel between processes
(:mod:`~fedisora.streaming.broker`). The endpoints are in :mod:`fedisora.api.streaming`."""
