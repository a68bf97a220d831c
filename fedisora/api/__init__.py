"""The Mastodon-compatible client API and fedisora's own render endpoints.

Modules: :mod:`~fedisora.api.http` (the frame every endpoint runs in: bearer tokens, scopes,
rate limits, ``{"error": ...}``, CORS, paths with and without a trailing slash),
:mod:`~fedisora.api.params` (query string, form data and JSON bodies alike),
:mod:`~fedisora.api.pagination` (``max_id``/``since_id``/``min_id`` and ``Link`` headers),
:mod:`~fedisora.api.oauth`, :mod:`~fedisora.api.instance`, :mod:`~fedisora.api.accounts`,
:mod:`~fedisora.api.statuses`, :mod:`~fedisora.api.timelines` (timelines, notifications,
trends) and :mod:`~fedisora.api.entities` (batch-loading serializers; its docstring says how
clips, comments, remixes and fedisora's notification types look to Mastodon clients).

What differs from Mastodon, on purpose:

- Statuses are clips (one ``video`` attachment) or comments (replies). ``POST /api/v1/statuses``
  without ``in_reply_to_id`` needs exactly one ``media_ids`` entry naming a finished render of
  the caller's; text-only posts and polls are refused with 422.
- Remixes are quote posts (``quoted_status_id`` in, ``quote`` out); a remix notification is
  Mastodon's ``quote`` type.
- Notifications are never grouped: ``/api/v2/notifications`` answers ``ungrouped-<id>`` groups.
- The password grant stays available (Mastodon 4.4 removed it), rate-limited per client IP.
"""
