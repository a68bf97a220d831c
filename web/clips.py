"""Clips as the web pages show them, local and remote, and the logged-in user's feed.

A remote clip (from a fedisora peer, Mastodon, PeerTube, Loops...) is played through this
server's media proxy (never stored here, never fetched by the viewer's browser from the peer),
once its provenance check has fetched the video, with the label that check gave it
(``_provenance.html``). Its text
is the peer's, so it is untrusted: the caption is re-rendered here from the stored plain text
(escaped by :func:`fedisora.services.text.render_html`, links ``rel="nofollow noopener ugc"``),
never from markup; every other remote string goes through the templates' autoescaping; and a
remote URL is used only when it is plain ``http(s)``.

Who sees what is decided by the same batch rules as the API's timelines
(:func:`fedisora.api.visibility.visible_statuses` and ``hidden_account_ids``).

A remote clip whose provenance check found it ``invalid`` is shown collapsed: its video is
neither loaded nor played (no poster, ``preload="none"``) until the viewer opens it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from activitypub.objects import web_url
from fedisora import urls
from fedisora.api.visibility import hidden_account_ids, visible_statuses
from fedisora.fastload import by_ids
from fedisora.federation.media_proxy import proxied_poster, proxied_video, video_checked
from fedisora.ids import row_id
from fedisora.models import Account, Clip, MediaFile, TimelineEntry, Visibility
from fedisora.services.text import render_html
from fedisora.services.visibility import shown_sensitive
from web.pages import render
from web.sessions import current_session

__all__ = [
    "PAGE",
    "ClipCard",
    "author_href",
    "clip_cards",
    "max_id_param",
    "profile_path",
    "remote_html",
    "routes",
    "session_account",
    "web_url",
]

PAGE = 20
UGC_REL = "nofollow noopener ugc"
"""The ``rel`` of every link to a remote author's content."""

_VISIBILITY_BADGES = {
    Visibility.UNLISTED: "unlisted",
    Visibility.FOLLOWERS: "followers only",
    Visibility.DIRECT: "direct",
}


@dataclass(frozen=True)
class ClipCard:
    """Everything ``_clip.html`` shows of one clip."""

    clip: Clip
    author: Account
    media: MediaFile | None
    caption_html: Markup
    video_src: str | None
    poster_src: str | None
    author_href: str | None
    """The author's profile page: here for a local author, on its own instance for a remote
    one (None when the peer gave no http(s) URL)."""
    origin_href: str | None
    """A remote clip's page on its own instance."""
    page_href: str | None
    """A local clip's page here (remote clips have theirs at :attr:`origin_href`)."""
    booster: Account | None = None

    @property
    def remote(self) -> bool:
        return not self.clip.local

    @property
    def sensitive(self) -> bool:
        """Shown behind a click: the clip's own flag, or its author marked sensitive."""
        return shown_sensitive(self.clip, self.author)

    @property
    def visibility_badge(self) -> str | None:
        return _VISIBILITY_BADGES.get(Visibility(self.clip.visibility))

    @property
    def provenance_state(self) -> str:
        prov = (self.media.provenance if self.media else None) or {}
        return str(prov.get("state") or "unverified")

    @property
    def silent(self) -> bool:
        """Known to have no sound (its claim says so): the player offers no unmute."""
        return self.media is not None and self.media.has_sound() is False

    @property
    def awaiting_check(self) -> bool:
        """A remote clip whose video is not shown until its provenance check fetched it."""
        return self.remote and self.media is not None and not video_checked(self.media)

    @property
    def gated(self) -> bool:
        """Whether the video stays collapsed and unloaded until the viewer asks for it."""
        return self.remote and self.provenance_state == "invalid"


def profile_path(account: Account) -> str:
    """A local account's profile page (Mastodon's ``/@name``)."""
    return f"/@{account.username}"


def author_href(account: Account) -> str | None:
    """Where an author's name links: its profile here for a local account, its own page on
    its instance for a remote one (None when the peer gave no http(s) URL)."""
    return profile_path(account) if account.local else web_url(account.url) or web_url(account.uri)


def remote_html(text: str) -> Markup:
    """A remote clip's or comment's text as HTML rendered here from its plain text (the
    peer's HTML is never used); its links are :data:`UGC_REL`."""
    u = urls.current()
    return Markup(
        render_html(text, tag_url=u.tag, mention_url=lambda _u, _d: None, link_rel=UGC_REL)
    )


def max_id_param(request: Request) -> int | None:
    """The ``max_id`` cursor of a listing page (None: the first page); anything else than an
    id is a 400."""
    raw = request.query_params.get("max_id", "")
    if raw == "":
        return None
    found = row_id(raw)
    if found is None:
        raise HTTPException(400, "max_id must be the id of a clip (a whole number).")
    return found


def _card(
    clip: Clip, author: Account, media: MediaFile | None, booster: Account | None
) -> ClipCard:
    u = urls.current()
    page_href: str | None
    if clip.local:
        caption = Markup(clip.content)  # rendered here from the author's text (posts.py)
        video = u.media(media.file) if media and media.file else None
        poster = u.media(media.poster_file) if media and media.poster_file else None
        origin_href = None
        page_href = f"{profile_path(author)}/{clip.pk}"
    else:
        caption = remote_html(clip.caption)
        # From this server's media proxy, once the provenance check has fetched the video:
        # a viewer's browser never contacts the peer (fedisora.federation.media_proxy).
        video = proxied_video(media)
        poster = proxied_poster(media)
        origin_href = web_url(clip.url) or web_url(clip.uri)
        page_href = None
    return ClipCard(
        clip=clip,
        author=author,
        media=media,
        caption_html=caption,
        video_src=video,
        poster_src=poster,
        author_href=author_href(author),
        origin_href=origin_href,
        page_href=page_href,
        booster=booster,
    )


async def clip_cards(
    viewer: Account | None,
    clips: Sequence[Clip],
    boosters: Sequence[int | None] | None = None,
    *,
    mutes: bool = True,
    authors: dict[int, Account] | None = None,
    checked_with: Collection[int] | None = None,
) -> list[ClipCard]:
    """Cards for the *clips* that *viewer* may see, in order, minus blocked and muted authors.

    *boosters*, parallel to *clips*, names who boosted each one into a feed (None: nobody);
    a boost by a hidden account is dropped too. ``mutes=False`` keeps muted authors: a page
    the viewer opened for that author (a profile, a clip) shows their clips, as Mastodon's do.
    *authors*: account rows this request read already, by id (the authors' rows read here
    are added: the visibility check and the cards read each once). *checked_with*: the
    *clips* passed, in this request, ``visible_to(viewer, clips, hidden=checked_with)``
    where *checked_with* holds :func:`hidden_account_ids` (For You's page,
    :attr:`fedisora.for_you.feed.FeedPage.hidden`): that check is not made again.
    """
    by = list(boosters) if boosters is not None else [None] * len(clips)
    known: dict[int, Account] = {} if authors is None else authors
    hidden: Collection[int]
    if checked_with is None:
        visible = {c.pk for c in await visible_statuses(viewer, clips, authors=known)}
        hidden = await hidden_account_ids(viewer, mutes=mutes)
    else:
        visible, hidden = {c.pk for c in clips}, checked_with
    shown = [
        (clip, booster)
        for clip, booster in zip(clips, by, strict=True)
        if clip.pk in visible
        and clip.account_id not in hidden
        and (booster is None or booster not in hidden)
    ]
    account_ids = {c.account_id for c, _ in shown} | {b for _, b in shown if b is not None}
    unread = account_ids - known.keys()
    if unread:
        known.update({a.pk: a for a in await by_ids(Account, unread)})
    accounts = {i: known[i] for i in account_ids if i in known}
    media_ids = {c.media_id for c, _ in shown if c.media_id is not None}
    media = {m.pk: m for m in await by_ids(MediaFile, media_ids)}
    return [
        _card(
            clip,
            accounts[clip.account_id],
            media.get(clip.media_id) if clip.media_id is not None else None,
            accounts.get(booster) if booster is not None else None,
        )
        for clip, booster in shown
        if clip.account_id in accounts
    ]


async def session_account(request: Request) -> Account | None:
    """The logged-in local account, or None (:mod:`web.sessions` checked at this request
    that the session is live and its account usable)."""
    live = current_session(request)
    return live.account if live is not None else None


async def feed(request: Request) -> Response:
    """The logged-in user's home feed: their own clips and those of everyone they follow,
    here or on other instances (``TimelineEntry`` rows, as the API's home timeline)."""
    me = await session_account(request)
    if me is None:
        return RedirectResponse("/login?next=/feed", status_code=303)
    max_id = max_id_param(request)
    query = TimelineEntry.filter(owner_id=me.pk)
    if max_id is not None:
        query = query.filter(clip_id__lt=max_id)
    entries = await query.order_by("-clip_id").limit(PAGE)
    clips = {c.pk: c for c in await by_ids(Clip, [e.clip_id for e in entries])}
    kept = [e for e in entries if e.clip_id in clips]
    cards = await clip_cards(me, [clips[e.clip_id] for e in kept], [e.boosted_by_id for e in kept])
    older = entries[-1].clip_id if len(entries) == PAGE else None
    return render(request, "feed.html", cards=cards, older=older)


def routes() -> list[BaseRoute]:
    return [Route("/feed", feed)]
