"""Property tests: hostile header values only ever produce our own errors.

An inbox feeds these functions whatever arrives off the network, so any
exception other than a SignatureError (or KeyFormatError for keys) would be a 500.
Runs are derandomised so CI is repeatable; raise max_examples locally to dig deeper.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from activitypub.digest import verify_content_digest, verify_digest_header
from activitypub.errors import KeyFormatError, MalformedSignature, SignatureError, SignatureMissing
from activitypub.keys import load_private_key_pem, load_public_key_pem, public_key_from_multibase
from activitypub.signatures import Request, Scheme, parse_signature, sign_request, verify_request
from activitypub.signatures.cavage import parse_signature_header

FIXTURES = Path(__file__).parents[1] / "fixtures" / "http_signatures"
RSA_KEY = load_private_key_pem((FIXTURES / "rfc9421-test-key-rsa.pem").read_text())
ED_KEY = load_private_key_pem((FIXTURES / "rfc9421-test-key-ed25519.pem").read_text())
NOW = 1618884473
INBOX = "https://fedisora.example/users/bob/inbox?page=1"
BODY = b'{"type":"Like"}'

FUZZ = settings(max_examples=400, deadline=None, database=None, derandomize=True)

# Characters that matter to the grammars involved, so generated text gets deep into them.
_SYNTAX = 'abcdefkyidsghr0123456789=,;:()"\\ \t@-_*/+?.&%#\r\n\x00é'
field_text = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=_SYNTAX, max_size=200),
    st.text(alphabet=st.characters(codec="latin-1"), max_size=200),
)


def _signed(scheme: Scheme, key_name: str, method: str) -> Request:
    key = RSA_KEY if key_name == "rsa" else ED_KEY
    body = BODY if method == "POST" else b""
    request = Request(method, INBOX, {"Content-Type": "application/activity+json"}, body)
    return request.with_headers(
        sign_request(request, "https://a.example/u#k", key, scheme=scheme, now=NOW)
    )


VALID = {
    (scheme, key, method): _signed(scheme, key, method)
    for scheme in ("rfc9421", "cavage")
    for key in ("rsa", "ed")
    for method in ("GET", "POST")
}


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few random insertions, deletions and replacements."""
    chars = list(text)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(chars)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        new = draw(st.text(alphabet=_SYNTAX, min_size=1, max_size=3))
        if action == "insert" or not chars:
            chars[position:position] = list(new)
        elif action == "delete":
            del chars[min(position, len(chars) - 1)]
        else:
            chars[min(position, len(chars) - 1)] = new
    return "".join(chars)


@FUZZ
@given(field_text)
def test_cavage_parameter_parser(text: str) -> None:
    try:
        params = parse_signature_header(text)
    except MalformedSignature:
        return
    assert params
    assert all(name == name.lower() for name in params)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["Signature", "Signature-Input", "Authorization", "Date"]),
        field_text,
        max_size=4,
    )
)
def test_parse_signature_raises_only_parse_errors(headers: dict[str, str]) -> None:
    try:
        parse_signature(Request("POST", INBOX, headers, BODY))
    except (SignatureMissing, MalformedSignature):
        pass


@FUZZ
@given(
    st.sampled_from(sorted(VALID)),
    st.sampled_from(
        ["Signature", "Signature-Input", "Date", "Digest", "Content-Digest", "Host", "Content-Type"]
    ),
    st.data(),
)
def test_mutated_signed_requests_fail_cleanly(
    variant: tuple[Scheme, str, str], header: str, data: st.DataObject
) -> None:
    request = VALID[variant]
    original = request.header(header) or ""
    value = data.draw(st.one_of(mutated(original), field_text))
    key = (RSA_KEY if variant[1] == "rsa" else ED_KEY).public_key()
    try:
        verify_request(request.with_headers({header: value}), key, now=NOW)
    except SignatureError:
        pass


@FUZZ
@given(st.sampled_from(sorted(VALID)), st.one_of(st.text(max_size=80), st.sampled_from(
    ["https://[::1", "https://x:0/", "https://x:-1/", "http://\u2100/", "https:///p", ""]
)))  # fmt: skip
def test_hostile_urls_fail_cleanly(variant: tuple[Scheme, str, str], url: str) -> None:
    request = VALID[variant]
    key = (RSA_KEY if variant[1] == "rsa" else ED_KEY).public_key()
    try:
        verify_request(Request(request.method, url, request.headers, request.body), key, now=NOW)
    except SignatureError:
        pass


@FUZZ
@given(field_text, st.binary(max_size=64))
def test_digest_parsers(value: str, body: bytes) -> None:
    for verify in (verify_digest_header, verify_content_digest):
        try:
            verify(value, body)
        except SignatureError:
            pass


@FUZZ
@given(
    st.one_of(field_text, st.text(alphabet="z123456789ABCDEFGHJKLMNPQRSTUVWXYZabc", max_size=60))
)
def test_key_decoders(text: str) -> None:
    for load in (public_key_from_multibase, load_public_key_pem, load_private_key_pem):
        try:
            load(text)
        except KeyFormatError:
            pass
