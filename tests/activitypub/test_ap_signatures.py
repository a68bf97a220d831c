"""activitypub.signatures: the common front, the Request value, the error mapping."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from activitypub import errors
from activitypub.keys import (
    PrivateKey,
    PublicKey,
    generate_ed25519_key,
    generate_rsa_key,
    load_private_key_pem,
)
from activitypub.signatures import (
    CavageSignature,
    Headers,
    MessageSignature,
    Request,
    Scheme,
    VerifiedSignature,
    parse_signature,
    precheck,
    sign_request,
    verify_parsed,
    verify_request,
)
from activitypub.signatures.request import target

FIXTURES = Path(__file__).parents[1] / "fixtures" / "http_signatures"
RSA_KEY = load_private_key_pem((FIXTURES / "rfc9421-test-key-rsa.pem").read_text())
ED_KEY = load_private_key_pem((FIXTURES / "rfc9421-test-key-ed25519.pem").read_text())
NOW = 1618884473
INBOX = "https://fedisora.example/users/bob/inbox"
BODY = b'{"type":"Like"}'


def post() -> Request:
    return Request("POST", INBOX, {"Content-Type": "application/activity+json"}, BODY)


@pytest.mark.parametrize("scheme", ["rfc9421", "cavage"])
@pytest.mark.parametrize(
    ("key", "algorithm"), [(RSA_KEY, "rsa-v1_5-sha256"), (ED_KEY, "ed25519")], ids=["rsa", "ed"]
)
def test_sign_then_verify_round_trip(scheme: Scheme, key: PrivateKey, algorithm: str) -> None:
    for request in (post(), Request("GET", INBOX + "?page=2")):
        signed = request.with_headers(
            sign_request(request, "https://a.example/u#k", key, scheme=scheme, now=NOW)
        )
        result = verify_request(signed, key.public_key(), now=NOW + 5)
        assert result == VerifiedSignature("https://a.example/u#k", scheme, algorithm)


def test_now_may_be_a_datetime() -> None:
    when = datetime.fromtimestamp(NOW, tz=UTC)
    signed = post().with_headers(sign_request(post(), "k", RSA_KEY, now=when))
    assert verify_request(signed, RSA_KEY.public_key(), now=when).key_id == "k"
    naive = datetime(2021, 4, 20, 2, 7, 53)  # naive means UTC
    assert verify_request(signed, RSA_KEY.public_key(), now=naive).key_id == "k"


def test_parse_signature_dispatches_on_signature_input() -> None:
    rfc = post().with_headers(sign_request(post(), "k", RSA_KEY, now=NOW))
    cav = post().with_headers(sign_request(post(), "k", RSA_KEY, now=NOW, scheme="cavage"))
    assert isinstance(parse_signature(rfc), MessageSignature)
    assert isinstance(parse_signature(cav), CavageSignature)
    assert parse_signature(rfc).scheme == "rfc9421"
    assert parse_signature(cav).scheme == "cavage"
    with pytest.raises(errors.SignatureMissing):
        parse_signature(post())


def test_two_step_api_matches_verify_request() -> None:
    signed = post().with_headers(sign_request(post(), "https://a.example/u#k", ED_KEY, now=NOW))
    parsed = parse_signature(signed)
    assert parsed.key_id == "https://a.example/u#k"
    precheck(parsed, signed, now=NOW)
    result = verify_parsed(parsed, signed, ED_KEY.public_key(), now=NOW)
    assert result == verify_request(signed, ED_KEY.public_key(), now=NOW)


def test_key_lookup() -> None:
    signed = post().with_headers(sign_request(post(), "https://a.example/u#k", RSA_KEY, now=NOW))
    asked: list[str] = []

    def lookup(key_id: str) -> PublicKey | None:
        asked.append(key_id)
        return RSA_KEY.public_key() if key_id == "https://a.example/u#k" else None

    assert verify_request(signed, lookup, now=NOW).key_id == "https://a.example/u#k"
    assert asked == ["https://a.example/u#k"]
    other = post().with_headers(sign_request(post(), "https://b.example/u#k", RSA_KEY, now=NOW))
    with pytest.raises(errors.UnknownKey):
        verify_request(other, lookup, now=NOW)


def test_key_lookup_is_not_called_for_doomed_requests() -> None:
    signed = post().with_headers(sign_request(post(), "k", RSA_KEY, now=NOW))
    tampered = Request(signed.method, signed.url, signed.headers, b"{}")

    def lookup(key_id: str) -> PublicKey | None:
        raise AssertionError("no key fetch for a request that fails anyway")

    with pytest.raises(errors.DigestMismatch):
        verify_request(tampered, lookup, now=NOW)
    with pytest.raises(errors.SignatureExpired):
        verify_request(signed, lookup, now=NOW + 86400)


def test_verification_with_the_wrong_key_type_or_key() -> None:
    signed = post().with_headers(sign_request(post(), "k", RSA_KEY, now=NOW))
    with pytest.raises(errors.SignatureInvalid):
        verify_request(signed, generate_rsa_key().public_key(), now=NOW)
    with pytest.raises(errors.UnsupportedSignature):
        verify_request(signed, generate_ed25519_key().public_key(), now=NOW)


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="scheme"):
        sign_request(post(), "k", RSA_KEY, now=NOW, scheme="jws")  # type: ignore[arg-type]


def test_error_hierarchy_and_http_status() -> None:
    expected = {
        errors.SignatureMissing: 401,
        errors.MalformedSignature: 400,
        errors.MalformedDigest: 400,
        errors.SignatureInvalid: 401,
        errors.UnknownKey: 401,
        errors.UnsupportedSignature: 401,
        errors.WeakSignature: 401,
        errors.SignatureExpired: 401,
        errors.DigestMismatch: 401,
    }
    for cls, status in expected.items():
        assert issubclass(cls, errors.SignatureError)
        assert issubclass(cls, errors.ActivityPubError)
        assert cls.http_status == status, cls
    assert set(errors.__all__) == {
        name for name in dir(errors) if isinstance(getattr(errors, name), type)
    } - {"ClassVar"}


# --- Request and Headers ------------------------------------------------------------------------


def test_headers_are_case_insensitive_and_combine_lines() -> None:
    headers = Headers([("Accept", " a "), ("X-Other", "1"), ("ACCEPT", "b\t")])
    assert headers.get("accept") == "a, b"
    assert headers.get_all("Accept") == [" a ", "b\t"]
    assert headers.get("missing") is None
    assert "x-other" in headers
    assert 42 not in headers
    assert list(headers) == ["Accept", "X-Other", "ACCEPT"]
    assert len(headers) == 3


def test_headers_from_mapping_bytes_and_headers() -> None:
    from_bytes = Headers([(b"Host", b"caf\xe9.example")])  # raw ASGI, ISO-8859-1
    assert from_bytes.get("host") == "café.example"
    from_mapping = Headers({"Host": "café.example"})
    assert from_mapping == from_bytes
    assert hash(from_mapping) == hash(from_bytes)
    assert Headers(from_mapping) == from_mapping
    assert from_mapping != {"Host": "café.example"}


def test_headers_replace_and_request_with_headers() -> None:
    request = Request("GET", INBOX, [("Date", "old"), ("date", "older"), ("Accept", "x")])
    updated = request.with_headers({"DATE": "new"})
    assert updated.header("date") == "new"
    assert updated.header("accept") == "x"
    assert request.header("date") == "old, older"  # the original is unchanged
    assert updated.body == request.body == b""


@pytest.mark.parametrize(
    ("url", "authority", "path", "query", "uri"),
    [
        (
            "HTTPS://Fedisora.EXAMPLE/a/B?x=1#frag",
            "fedisora.example",
            "/a/B",
            "x=1",
            "https://fedisora.example/a/B?x=1",
        ),
        (
            "https://u:p@fedisora.example:443",
            "fedisora.example",
            "/",
            None,
            "https://fedisora.example/",
        ),
        ("http://fedisora.example:80/", "fedisora.example", "/", None, "http://fedisora.example/"),
        (
            "https://fedisora.example:8443/p?",
            "fedisora.example:8443",
            "/p",
            "",
            "https://fedisora.example:8443/p?",
        ),
        ("http://[::1]:8080/inbox", "[::1]:8080", "/inbox", None, "http://[::1]:8080/inbox"),
    ],
)
def test_target(url: str, authority: str, path: str, query: str | None, uri: str) -> None:
    parts = target(Request("GET", url))
    assert (parts.authority, parts.path, parts.query, parts.uri) == (authority, path, query, uri)


@pytest.mark.parametrize("url", ["/relative/path", "https://x.example:99999/", "https://[::1/"])
def test_unreadable_url_is_malformed(url: str) -> None:
    with pytest.raises(errors.MalformedSignature):
        target(Request("GET", url))
