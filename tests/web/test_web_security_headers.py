"""Every HTML response of the app carries the security headers (web/security.py): the walk
requests every route the app has, as an anonymous and as a logged-in admin browser, by GET
and (for routes that take it) by an empty POST, and checks every HTML answer."""

from __future__ import annotations

import re

import httpx
from factories import local_account, rendered_video
from starlette.routing import Mount, Route
from webhelpers import DOMAIN, browser, create, logged_in, peer_account, receive

from fedisora import urls
from fedisora.federation.context import Federation
from fedisora.federation.ingest import handle_activity
from fedisora.models import Account, MediaFile
from fedisora.services import follows, posts
from fedisora.services.accounts import create_instance_actor
from web.security import content_security_policy

HTML = {"accept": "text/html,application/xhtml+xml"}


def directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            assert words[0] not in out, f"{words[0]} given twice"
            out[words[0]] = words[1:]
    return out


def assert_secure_html(r: httpx.Response, where: str) -> None:
    policy = r.headers.get("content-security-policy")
    assert policy, f"{where}: no Content-Security-Policy"
    d = directives(policy)
    assert d["default-src"] == ["'self'"], where
    assert d["script-src"] == ["'self'"], where
    assert d["style-src"] == ["'self'"], where
    assert d["img-src"] == ["'self'"], where  # remote media come through the media proxy
    assert d["media-src"] == ["'self'"], where
    assert d["object-src"] == ["'none'"], where
    assert d["base-uri"] == ["'none'"], where
    assert d["frame-ancestors"] == ["'none'"], where
    assert d["form-action"][0] == "'self'", where
    assert "unsafe" not in policy, where
    assert r.headers.get("x-frame-options") == "DENY", where
    assert r.headers.get("x-content-type-options") == "nosniff", where
    assert r.headers.get("referrer-policy") == "same-origin", where


def fill(path: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        return values.get(name, "x")

    return re.sub(r"\{([^}]+)\}", one, path)


async def test_every_html_route_sends_the_security_headers(
    web: httpx.ASGITransport, db: str
) -> None:
    await create_instance_actor()
    root = await local_account("root", admin=True)
    bob = await local_account("bob")
    clip = await posts.post_clip(root, await rendered_video(root), caption="hi #sea")
    values = {
        "username": "root",
        "clip_id": str(clip.pk),
        "account_id": str(bob.pk),
        "name": "sea",
        "kind": "followers",
        "version": "2.0",
    }
    app = web.app
    routes = [
        r
        for r in app.routes  # type: ignore[attr-defined]
        if isinstance(r, Route) and not r.path.startswith("/api/v1/streaming")  # never ends
    ]
    assert any(isinstance(r, Mount) for r in app.routes)  # type: ignore[attr-defined]
    html_paths: set[str] = set()
    async with browser(web) as anonymous, logged_in(web, "root") as admin:
        for route in routes:
            methods = route.methods or set()
            url = fill(route.path, values)
            for http in (anonymous, admin):
                answers = []
                if "GET" in methods:
                    answers.append(await http.get(url, headers=HTML))
                if "POST" in methods and not url.endswith("inbox"):
                    answers.append(await http.post(url, headers=HTML, data={}))
                for r in answers:
                    # /healthz answers 503 here: no worker runs beside this app
                    ok = r.status_code < 500 or route.path == "/healthz"
                    assert ok, (url, r.status_code, r.text[:300])
                    if r.headers.get("content-type", "").startswith("text/html"):
                        html_paths.add(route.path)
                        assert_secure_html(r, f"{route.path} ({r.status_code})")
                    assert r.headers.get("x-content-type-options") == "nosniff", url
        # The error pages of unknown paths, and the style sheet the pages use.
        r = await anonymous.get("/no/such/page", headers=HTML)
        assert r.status_code == 404
        assert_secure_html(r, "404 page")
        r = await anonymous.get("/static/site.css")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
        assert r.headers["x-content-type-options"] == "nosniff"
    web_routes = {r.path for r in routes if r.endpoint.__module__.startswith("web.")}
    # every page was seen answering HTML (the PWA manifest is JSON, the export a ZIP archive
    # and the feed's "N new" an event stream, 204 here where no streaming hub runs, and the
    # player's For You feedback a JSON beacon: not pages)
    not_pages = {"/manifest.webmanifest", "/settings/export.zip", "/feed/stream", "/feedback"}
    assert web_routes - html_paths == not_pages
    assert {"/oauth/authorize", "/users/{username}", "/@{username}/{clip_id}"} <= html_paths
    assert await Account.filter(pk=bob.pk, suspended_at=None).exists()  # empty POSTs did nothing


async def test_the_consent_page_lets_its_form_reach_only_the_apps_redirect(
    web: httpx.ASGITransport, db: str
) -> None:
    await local_account("carol")
    async with logged_in(web, "carol") as http:
        for redirect, source in (
            ("https://app.example/cb", "https://app.example"),
            ("com.example.app:/cb", "com.example.app:"),
            ("urn:ietf:wg:oauth:2.0:oob", None),
        ):
            r = await http.post(
                "/api/v1/apps", data={"client_name": "App", "redirect_uris": redirect}
            )
            app = r.json()
            r = await http.get(
                "/oauth/authorize", params={"client_id": app["client_id"]}, headers=HTML
            )
            assert r.status_code == 200, r.text
            assert_secure_html(r, "consent page")
            form_action = directives(r.headers["content-security-policy"])["form-action"]
            assert form_action == (["'self'", source] if source else ["'self'"])
        # Other pages keep the plain policy.
        r = await http.get("/", headers=HTML)
        assert r.headers["content-security-policy"] == content_security_policy()


EMBEDDED = re.compile(r"<(?:img|video|audio|source|track|iframe|embed|object|input)\b[^>]*>")
URL_ATTRIBUTE = re.compile(r'\b(?:src|poster|srcset|data)="([^"]*)"')


async def test_pages_embed_nothing_from_another_site(
    web: httpx.ASGITransport, fed: Federation, db: str
) -> None:
    """What the policy's ``img-src 'self'; media-src 'self'`` needs: every image, video and
    poster a page embeds is on this site (remote clips through the media proxy), even a
    local account's avatar that names another site (which would not load anyway)."""
    own = f"https://{DOMAIN}/"
    ann = await local_account("ann")
    ben = await local_account("ben")
    await Account.filter(pk=ann.pk).update(avatar_url="https://elsewhere.example/a.png")
    await Account.filter(pk=ben.pk).update(avatar_url=urls.current().media("uploads/b.png"))
    mine = await posts.post_clip(ann, await rendered_video(ann), caption="mine #sea")
    await MediaFile.filter(pk=mine.media_id).update(poster_file="clips/mine.jpg")
    rita = await peer_account("rita", avatar_url="https://peer.example/rita.png")
    row = await follows.follow(ann, rita)
    await handle_activity(
        fed,
        {
            "id": f"{rita.uri}#accepts/1",
            "type": "Accept",
            "actor": rita.uri,
            "object": {"id": row.uri, "type": "Follow", "actor": ann.uri, "object": rita.uri},
        },
    )
    remote = await receive(fed, create(rita, 1, hashtags=["sea"]))
    media = await MediaFile.get(pk=remote.media_id)
    await MediaFile.filter(pk=media.pk).update(
        provenance={
            **media.provenance,
            "state": "verified",
            "reason": "checked",
            "checked_at": "2026-01-02T03:04:05+00:00",
            "file_size": 1234,
        }
    )

    found: list[str] = []
    async with logged_in(web, "ann") as http:
        for path in ("/", "/feed", "/@ann", "/@ben", f"/@ann/{mine.pk}", "/tags/sea"):
            r = await http.get(path)
            assert r.status_code == 200, (path, r.text[:300])
            assert_secure_html(r, path)
            for tag in EMBEDDED.findall(r.text):
                for url in URL_ATTRIBUTE.findall(tag):
                    assert url.startswith((own, "/")) and not url.startswith("//"), (path, tag)
                    found.append(url)
    # The walk saw each kind of embed: the local clip and poster, the remote clip's video and
    # poster through the proxy, and the avatar that is on this site.
    assert urls.current().media("clips/mine.jpg") in found
    assert any(
        u.startswith(f"{own}media_proxy/{media.pk}/") and u.endswith("/original") for u in found
    )
    assert any(
        u.startswith(f"{own}media_proxy/{media.pk}/") and u.endswith("/small") for u in found
    )
    assert urls.current().media("uploads/b.png") in found
