"""The page of a signed likeness consent, for a browser at the consent's id.

``/likeness/grants/<id>`` serves servers the signed ``LikenessAuthorization`` (or, once
revoked, its signed revocation with a 410: :func:`fedisora.api.likeness.grant_document`) and
a browser this page, which says in words who allowed whom to do what, until when, and
whether it still holds. The signed document itself stays one link away (its JSON), for
anyone who wants to verify the proof.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fedisora.models import Account, LikenessGrant
from web.clips import author_href
from web.pages import render

__all__ = ["consent_page"]


async def consent_page(request: Request, grant: LikenessGrant) -> Response:
    owner = await Account.get(pk=grant.owner_id)
    grantee = await Account.get(pk=grant.grantee_id)
    status = 410 if grant.revoked_at is not None else 200
    proof = (grant.document or {}).get("proof")
    return render(
        request,
        "consent.html",
        status=status,
        grant=grant,
        owner=owner,
        owner_href=author_href(owner),
        grantee=grantee,
        grantee_href=author_href(grantee),
        proof=proof if isinstance(proof, dict) else None,
    )
