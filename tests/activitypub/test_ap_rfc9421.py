"""activitypub.signatures.rfc9421: RFC 9421 message signatures, Mastodon 4.5's acceptance rules."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import http_message_signatures as hms
import pytest

from activitypub.digest import content_digest_header
from activitypub.errors import (
    DigestMismatch,
    MalformedSignature,
    SignatureExpired,
    SignatureInvalid,
    SignatureMissing,
    UnsupportedSignature,
    WeakSignature,
)
from activitypub.keys import (
    PrivateKey,
    PublicKey,
    generate_ed25519_key,
    generate_rsa_key,
    load_private_key_pem,
    load_public_key_pem,
)
from activitypub.signatures import Request, VerifiedSignature, rfc9421, verify_request
from activitypub.signatures.rfc9421 import Component

FIXTURES = Path(__file__).parents[1] / "fixtures" / "http_signatures"


def _private(name: str) -> PrivateKey:
    return load_private_key_pem((FIXTURES / f"{name}.pem").read_text())


def _public(name: str) -> PublicKey:
    return load_public_key_pem((FIXTURES / f"{name}.pub.pem").read_text())


RSA_KEY = _private("rfc9421-test-key-rsa")
RSA_PUB = _public("rfc9421-test-key-rsa")
PSS_PUB = _public("rfc9421-test-key-rsa-pss")
ED_KEY = _private("rfc9421-test-key-ed25519")
ED_PUB = _public("rfc9421-test-key-ed25519")

# --- RFC 9421 appendix B.2 and section 4.3 --------------------------------------------------

RFC_BODY = b'{"hello": "world"}'
RFC_DIGEST = (
    "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWX"
    "vJwew==:"
)
RFC_HEADERS = [
    ("Host", "example.com"),
    ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
    ("Content-Type", "application/json"),
    ("Content-Digest", RFC_DIGEST),
    ("Content-Length", "18"),
]
RFC_URL = "https://example.com/foo?param=Value&Pet=dog"


def rfc_request(signature_input: str, signature: str, url: str = RFC_URL) -> Request:
    headers = [*RFC_HEADERS, ("Signature-Input", signature_input), ("Signature", signature)]
    return Request("POST", url, headers, RFC_BODY)


B21 = (
    'sig-b21=();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd"',
    "sig-b21=:d2pmTvmbncD3xQm8E9ZV2828BjQWGgiwAaw5bAkgibUopemLJcWDy/lkbbHAve4cRAtx31Iq786U7it++wg"
    "GxbtRxf8Udx7zFZsckzXaJMkA7ChG52eSkFxykJeNqsrWH5S+oxNFlD4dzVuwe8DhTSja8xxbR/Z2cOGdCbzR72rgFW"
    "hzx2VjBqJzsPLMIQKhO4DGezXehhWwE56YCE+O6c0mKZsfxVrogUvA4HELjVKWmAvtl6UnCh8jYzuVG5WSb/QEVPnP5"
    "TmcAnLH1g+s++v6d4s8m0gCw1fV5/SITLq9mhho8K3+7EPYTU8IU1bLhdxO5Nyt8C8ssinQ98Xw9Q==:",
)
B22 = (
    'sig-b22=("@authority" "content-digest" "@query-param";name="Pet");created=1618884473'
    ';keyid="test-key-rsa-pss";tag="header-example"',
    "sig-b22=:LjbtqUbfmvjj5C5kr1Ugj4PmLYvx9wVjZvD9GsTT4F7GrcQEdJzgI9qHxICagShLRiLMlAJjtq6N4CDfKtj"
    "vuJyE5qH7KT8UCMkSowOB4+ECxCmT8rtAmj/0PIXxi0A0nxKyB09RNrCQibbUjsLS/2YyFYXEu4TRJQzRw1rLEuEfY1"
    "7SARYhpTlaqwZVtR8NV7+4UKkjqpcAoFqWFQh62s7Cl+H2fjBSpqfZUJcsIk4N6wiKYd4je2U/lankenQ99PZfB4jY3"
    "I5rSV2DSBVkSFsURIjYErOs0tFTQosMTAoxk//0RoKUqiYY8Bh0aaUEb0rQl3/XaVe4bXTugEjHSw==:",
)
B23 = (
    'sig-b23=("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" '
    '"content-length");created=1618884473;keyid="test-key-rsa-pss"',
    "sig-b23=:bbN8oArOxYoyylQQUU6QYwrTuaxLwjAC9fbY2F6SVWvh0yBiMIRGOnMYwZ/5MR6fb0Kh1rIRASVxFkeGt68"
    "3+qRpRRU5p2voTp768ZrCUb38K0fUxN0O0iC59DzYx8DFll5GmydPxSmme9v6ULbMFkl+V5B1TP/yPViV7KsLNmvKiLJ"
    "H1pFkh/aYA2HXXZzNBXmIkoQoLd7YfW91kE9o/CCoC1xMy7JA1ipwvKvfrs65ldmlu9bpG6A9BmzhuzF8Eim5f8ui9eH8"
    "LZH896+QIF61ka39VBrohr9iyMUJpvRX2Zbhl5ZJzSRxpJyoEZAFL2FUo5fTIztsDZKEgM4cUA==:",
)
B26 = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"',
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRC"
    "w==:",
)


@pytest.mark.parametrize(
    ("vector", "key", "algorithm"),
    [
        (B21, PSS_PUB, "rsa-pss-sha512"),
        (B22, PSS_PUB, "rsa-pss-sha512"),
        (B23, PSS_PUB, "rsa-pss-sha512"),
        (B26, ED_PUB, None),
    ],
    ids=["B.2.1", "B.2.2", "B.2.3", "B.2.6"],
)
def test_rfc_appendix_b_examples_verify(
    vector: tuple[str, str], key: PublicKey, algorithm: str | None
) -> None:
    request = rfc_request(*vector)
    sig = rfc9421.parse(request)
    # @signature-params is the canonical re-serialisation: identical to what was sent.
    assert vector[0] == f"{sig.label}={sig.signature_params}"
    used = rfc9421.verify_signature(sig, request, key, algorithm=algorithm)
    assert used == (algorithm or "ed25519")


def test_rfc_b22_signature_base() -> None:
    request = rfc_request(*B22)
    assert rfc9421.signature_base(rfc9421.parse(request), request) == (
        '"@authority": example.com\n'
        f'"content-digest": {RFC_DIGEST}\n'
        '"@query-param";name="Pet": dog\n'
        '"@signature-params": ("@authority" "content-digest" "@query-param";name="Pet")'
        ';created=1618884473;keyid="test-key-rsa-pss";tag="header-example"'
    )


def test_rfc_b23_signature_base() -> None:
    request = rfc_request(*B23)
    base = rfc9421.signature_base(rfc9421.parse(request), request)
    assert base.splitlines()[:4] == [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@method": POST',
        '"@path": /foo',
        '"@query": ?param=Value&Pet=dog',
    ]


@pytest.mark.parametrize(
    ("vector", "url", "headers"),
    [
        (B22, RFC_URL.replace("Pet=dog", "Pet=cat"), {}),
        (B26, RFC_URL, {"Date": "Tue, 20 Apr 2021 02:07:56 GMT"}),
        (B26, RFC_URL.replace("/foo", "/bar"), {}),
        (B23, RFC_URL, {"Content-Type": "text/plain"}),
    ],
)
def test_rfc_examples_fail_when_tampered(
    vector: tuple[str, str], url: str, headers: dict[str, str]
) -> None:
    request = rfc_request(*vector, url=url).with_headers(headers)
    key = ED_PUB if vector is B26 else PSS_PUB
    algorithm = None if vector is B26 else "rsa-pss-sha512"
    with pytest.raises(SignatureInvalid, match="does not match"):
        rfc9421.verify_signature(rfc9421.parse(request), request, key, algorithm=algorithm)


def test_sign_reproduces_rfc_b26() -> None:
    request = Request("POST", "http://example.com/foo", RFC_HEADERS, RFC_BODY)
    added = rfc9421.sign(
        request,
        "test-key-ed25519",
        ED_KEY,
        now=1618884473,
        components=["date", "@method", "@path", "@authority", "content-type", "content-length"],
        label="sig-b26",
        include_alg=False,
    )
    assert added == {"Signature-Input": B26[0], "Signature": B26[1]}


# RFC 9421 section 4.3: a reverse proxy's rsa-v1_5-sha256 signature with test-key-rsa.
PROXY_SIG = (
    'proxy_sig=("@method" "@authority" "@path" "content-digest" "content-type" "content-length" '
    '"forwarded");created=1618884480;keyid="test-key-rsa";alg="rsa-v1_5-sha256";expires=1618884540',
    "proxy_sig=:S6ZzPXSdAMOPjN/6KXfXWNO/f7V6cHm7BXYUh3YD/fRad4BCaRZxP+JH+8XY1I6+8Cy+CM5g92iHgxtRP"
    "z+MjniOaYmdkDcnL9cCpXJleXsOckpURl49GwiyUpZ10KHgOEe11sx3G2gxI8S0jnxQB+Pu68U9vVcasqOWAEObtNKKZ"
    "d8tSFu7LB5YAv0RAGhB8tmpv7sFnIm9y+7X5kXQfi8NMaZaA8i2ZHwpBdg7a6CMfwnnrtflzvZdXAsD3LH2TwevU+/P"
    "BPv0B6NMNk93wUs/vfJvye+YuI87HU38lZHowtznbLVdp770I6VHR6WfgS9ddzirrswsE1w5o0LV/g==:",
)
CLIENT_SIG = (
    'sig1=("@method" "@authority" "@path" "content-digest" "content-type" "content-length")'
    ';created=1618884475;keyid="test-key-ecc-p256"',
    "sig1=:X5spyd6CFnAG5QnDyHfqoSNICd+BUP4LYMz2Q0JXlb//4Ijpzp+kve2w4NIyqeAuM7jTDX+sNalzA8ESSaHD3A==:",
)
PROXIED_HEADERS = [
    ("Host", "origin.host.internal.example"),
    ("Date", "Tue, 20 Apr 2021 02:07:56 GMT"),
    ("Content-Type", "application/json"),
    ("Content-Length", "18"),
    ("Forwarded", "for=192.0.2.123;host=example.com;proto=https"),
    ("Content-Digest", RFC_DIGEST),
]
PROXIED_URL = "https://origin.host.internal.example/foo?param=Value&Pet=dog"


def test_rfc_section_4_3_rsa_v1_5_sha256_verifies() -> None:
    request = Request(
        "POST",
        PROXIED_URL,
        [
            *PROXIED_HEADERS,
            ("Signature-Input", f"{CLIENT_SIG[0]}, {PROXY_SIG[0]}"),
            ("Signature", f"{CLIENT_SIG[1]}, {PROXY_SIG[1]}"),
        ],
        RFC_BODY,
    )
    # Without a label, the first one is taken: the client's (ECDSA, which we do not do).
    assert rfc9421.parse(request).label == "sig1"
    sig = rfc9421.parse(request, label="proxy_sig")
    assert (sig.key_id, sig.algorithm, sig.created, sig.expires) == (
        "test-key-rsa",
        "rsa-v1_5-sha256",
        1618884480,
        1618884540,
    )
    assert rfc9421.verify_signature(sig, request, RSA_PUB) == "rsa-v1_5-sha256"
    with pytest.raises(UnsupportedSignature):
        rfc9421.verify_signature(sig, request, ED_PUB)


def test_sign_reproduces_rfc_section_4_3() -> None:
    request = Request("POST", PROXIED_URL, PROXIED_HEADERS, RFC_BODY)
    added = rfc9421.sign(
        request,
        "test-key-rsa",
        RSA_KEY,
        now=1618884480,
        components=[
            "@method",
            "@authority",
            "@path",
            "content-digest",
            "content-type",
            "content-length",
            "forwarded",
        ],
        label="proxy_sig",
        expires_in=60,
    )
    # The request's sha-512 Content-Digest matches the body, so it is kept.
    assert added == {"Signature-Input": PROXY_SIG[0], "Signature": PROXY_SIG[1]}


# --- fixed vectors shaped as Mastodon 4.5 expects, computed with `cryptography` ---------------

BODY = b'{"@context":"https://www.w3.org/ns/activitystreams","type":"Follow"}'
CONTENT_DIGEST = "sha-256=:aLuSRyePOxP0LUQYgmNvzDMRtmxpN0mY+bU83mDtjUo=:"
INBOX = "https://fedisora.example/users/bob/inbox"
NOW = 1618884473
RSA_VECTOR = (
    "RUzoRzkJLZCBySp3Y2xvzoLVyPyk3etlytrpUz65ZqGyE9wq8pADXz1RoIHMfkRz+CHBKmCX12CJaDQ+gD239/J5oVfM"
    "MK0VhbJw40nl83fSLTDwylGVHcPU2hlfDuCTj0pCTOPGhhdoMq47dVsHTx/BnWRatV5UCf12RhNDoGRN+H4tVb4WidM5"
    "1sfuDvJv3cCEWp/zhm18w+IxgvGd8vAmoiIaZwwt4notZf0631GSiefHP16ZDrsAcVadDfnzJvgW+fOj3jJgYVqLUOUH"
    "S2wbnbLxvym04o0IWWBFYH3+VDu+FpzS5bRk98n5HgaCZ7n4MXldgIoiac3d4k/ByQ=="
)
ED_VECTOR = (
    "PAHWKJvog5NIdR3kWJM8Wams17xbQxfcQ3074F0YFhlyCPK2CVfq+kvi81SUAUB12xAslbJ7e1Az+vABlbcQCg=="
)


def inbox_post(**headers: str) -> Request:
    return Request("POST", INBOX, {"Content-Type": "application/activity+json", **headers}, BODY)


@pytest.mark.parametrize(
    ("key", "public", "key_id", "alg", "vector"),
    [
        (RSA_KEY, RSA_PUB, "https://fedisora.example/users/alice#main-key", "rsa-v1_5-sha256",
         RSA_VECTOR),
        (ED_KEY, ED_PUB, "https://fedisora.example/users/alice#ed25519-key", "ed25519",
         ED_VECTOR),
    ],
    ids=["rsa-v1_5-sha256", "ed25519"],
)  # fmt: skip
def test_sign_matches_fixed_vector_and_verifies(
    key: PrivateKey, public: PublicKey, key_id: str, alg: str, vector: str
) -> None:
    added = rfc9421.sign(inbox_post(), key_id, key, now=NOW)
    assert added == {
        "Content-Digest": CONTENT_DIGEST,
        "Signature-Input": 'sig1=("@method" "@target-uri" "content-digest" "content-type")'
        f';created={NOW};keyid="{key_id}";alg="{alg}"',
        "Signature": f"sig1=:{vector}:",
    }
    result = verify_request(inbox_post(**added), public, now=NOW + 10)
    assert result == VerifiedSignature(key_id, "rfc9421", alg)


# --- interoperability with an independent implementation (http-message-signatures) ----------


class Message:
    """The request shape http-message-signatures reads: method, url and headers (a dict
    when it signs; for verifying, anything with items(), such as our Headers)."""

    def __init__(self, method: str, url: str, headers: Any, body: bytes = b"") -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body

    def to_request(self) -> Request:
        return Request(self.method, self.url, self.headers, self.body)


def _hms_algorithm(key: PrivateKey | PublicKey) -> type[hms.HTTPSignatureAlgorithm]:
    if isinstance(key, type(ED_KEY) | type(ED_PUB)):
        return hms.algorithms.ED25519
    return hms.algorithms.RSA_V1_5_SHA256


@pytest.mark.parametrize("make_key", [generate_rsa_key, generate_ed25519_key])
def test_their_signature_verifies_with_ours(make_key: Any) -> None:
    private = make_key()
    resolver = hms.MappingKeyResolver(public_keys={}, private_keys={"their-key": private})
    signer = hms.HTTPMessageSigner(
        signature_algorithm=_hms_algorithm(private), key_resolver=resolver
    )
    message = Message("POST", INBOX, {"Content-Type": "application/activity+json"}, BODY)
    now = int(time.time())
    signer.sign(
        message,
        key_id="their-key",
        created=datetime.fromtimestamp(now),
        covered_component_ids=("@method", "@target-uri", "content-type"),
        body=BODY,
    )
    result = verify_request(message.to_request(), private.public_key(), now=now)
    assert result.key_id == "their-key"
    assert result.scheme == "rfc9421"
    tampered = Message(message.method, message.url, dict(message.headers), BODY + b"!")
    with pytest.raises(DigestMismatch):
        verify_request(tampered.to_request(), private.public_key(), now=now)


@pytest.mark.parametrize("make_key", [generate_rsa_key, generate_ed25519_key])
def test_our_signature_verifies_with_theirs(make_key: Any) -> None:
    private = make_key()
    request = Request("POST", INBOX + "?a=1&b=x%20y", {"Content-Type": "application/json"}, BODY)
    added = rfc9421.sign(request, "our-key", private, now=time.time())
    message = Message(request.method, request.url, request.with_headers(added).headers)
    resolver = hms.MappingKeyResolver(
        public_keys={"our-key": private.public_key()}, private_keys={}
    )
    verifier = hms.HTTPMessageVerifier(
        signature_algorithm=_hms_algorithm(private), key_resolver=resolver
    )
    (result,) = verifier.verify(message, body=BODY)
    assert result.parameters["keyid"] == "our-key"
    assert result.body == BODY
    assert set(result.covered_components) >= {'"@method"', '"@target-uri"', '"content-digest"'}


def test_component_parameters_agree_with_theirs() -> None:
    # sf, key, bs, @query-param and repeated field lines, checked by the other implementation.
    request = Request(
        "POST",
        "https://fedisora.example/inbox?Pet=dog&q=a+b%7E&empty=",
        [
            ("Content-Type", "application/json"),
            ("Content-Digest", f"{CONTENT_DIGEST},{content_digest_header(BODY, 'sha-512')}"),
            ("X-Dup", "one "),
            ("X-Dup", " two"),
            ("Example-Dict", " a=1,    b=2;x=1;y=2, c=(a   b   c)"),
        ],
        BODY,
    )
    components: list[str | Component] = [
        "@method",
        "@target-uri",
        "@scheme",
        "@request-target",
        "@query",
        Component("@query-param", (("name", "Pet"),)),
        Component("@query-param", (("name", "q"),)),
        Component("@query-param", (("name", "empty"),)),
        "x-dup",
        Component("x-dup", (("bs", True),)),
        Component("content-digest", (("sf", True),)),
        Component("example-dict", (("key", "b"),)),
        Component("content-digest", (("key", "sha-256"),)),
    ]
    added = rfc9421.sign(request, "k", ED_KEY, now=time.time(), components=components)
    signed = request.with_headers(added)
    base = rfc9421.signature_base(rfc9421.parse(signed), signed)
    assert '"@query-param";name="q": a%20b%7E' in base
    assert '"@query-param";name="empty": ' in base
    assert '"x-dup": one, two' in base
    assert '"x-dup";bs: :b25l:, :dHdv:' in base
    assert f'"content-digest";sf: {CONTENT_DIGEST}, sha-512=:' in base
    assert f'"content-digest";key="sha-256": :{CONTENT_DIGEST[9:-1]}:' in base
    assert '"example-dict";key="b": 2;x=1;y=2' in base

    message = Message("POST", request.url, signed.headers)  # two X-Dup field lines
    resolver = hms.MappingKeyResolver(public_keys={"k": ED_PUB}, private_keys={})
    verifier = hms.HTTPMessageVerifier(
        signature_algorithm=hms.algorithms.ED25519, key_resolver=resolver
    )
    (result,) = verifier.verify(message)
    assert result.covered_components['"x-dup"'] == "one, two"


# --- acceptance rules -----------------------------------------------------------------------


def signed(request: Request, components: list[str | Component] | None = None, **kw: Any) -> Request:
    return request.with_headers(
        rfc9421.sign(request, "k", RSA_KEY, now=NOW, components=components, **kw)
    )


@pytest.mark.parametrize(
    ("method", "url", "components", "message"),
    [
        ("GET", INBOX, ["@target-uri"], "@method"),
        ("GET", INBOX, ["@method", "@path"], "@target-uri"),
        ("GET", INBOX, ["@method", "@authority"], "@target-uri"),
        ("GET", INBOX + "?page=2", ["@method", "@authority", "@path"], "@target-uri"),
        ("POST", INBOX, ["@method", "@target-uri"], "content-digest"),
    ],
)
def test_weak_signatures_are_refused(
    method: str, url: str, components: list[str | Component], message: str
) -> None:
    body = BODY if method == "POST" else b""
    request = signed(Request(method, url, {}, body), components)
    with pytest.raises(WeakSignature, match=message):
        verify_request(request, RSA_PUB, now=NOW)


@pytest.mark.parametrize(
    "components",
    [
        ["@method", "@authority", "@path"],
        ["@method", "@authority", "@request-target"],
        ["@method", "@target-uri"],
    ],
)
def test_target_coverage_alternatives(components: list[str | Component]) -> None:
    request = signed(Request("GET", INBOX), components)
    assert verify_request(request, RSA_PUB, now=NOW).scheme == "rfc9421"


def test_created_is_required() -> None:
    request = signed(Request("GET", INBOX))
    value = request.header("signature-input")
    assert value is not None
    without_created = request.with_headers(
        {"Signature-Input": value.replace(f"created={NOW};", "")}
    )
    with pytest.raises(WeakSignature, match="created"):
        verify_request(without_created, RSA_PUB, now=NOW)


@pytest.mark.parametrize(
    ("now", "expires_in", "ok"),
    [
        (NOW - 3600, None, True),
        (NOW - 3601, None, False),
        (NOW + 300 + 3600, None, True),
        (NOW + 300 + 3601, None, False),
        (NOW + 60 + 3601, 60, False),
        (NOW + 12 * 3600 + 3600, 86400, True),
        (NOW + 12 * 3600 + 3601, 86400, False),
    ],
)
def test_time_window(now: int, expires_in: int | None, ok: bool) -> None:
    request = signed(Request("GET", INBOX), expires_in=expires_in)
    if ok:
        verify_request(request, RSA_PUB, now=now)
    else:
        with pytest.raises(SignatureExpired):
            verify_request(request, RSA_PUB, now=now)


def test_content_digest_must_match_the_body() -> None:
    request = signed(inbox_post())
    tampered = Request(request.method, request.url, request.headers, b"{}")
    with pytest.raises(DigestMismatch):
        verify_request(tampered, RSA_PUB, now=NOW)


def test_wrong_key_and_mismatched_alg() -> None:
    request = signed(inbox_post())
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_request(request, generate_rsa_key().public_key(), now=NOW)
    with pytest.raises(UnsupportedSignature, match="Ed25519"):
        verify_request(request, ED_PUB, now=NOW)
    unknown = signed(inbox_post(), include_alg=False)
    value = unknown.header("signature-input")
    assert value is not None
    with pytest.raises(UnsupportedSignature, match="hmac"):
        verify_request(
            unknown.with_headers({"Signature-Input": value + ';alg="hmac-sha256"'}),
            RSA_PUB,
            now=NOW,
        )


def test_without_alg_the_key_type_decides() -> None:
    request = signed(inbox_post(), include_alg=False)
    assert ";alg=" not in (request.header("signature-input") or "")
    assert verify_request(request, RSA_PUB, now=NOW).algorithm == "rsa-v1_5-sha256"


def test_nonce_and_tag_are_signed() -> None:
    request = signed(Request("GET", INBOX), nonce="n-1", tag="fedisora")
    sig = rfc9421.parse(request)
    assert (sig.nonce, sig.tag) == ("n-1", "fedisora")
    value = request.header("signature-input")
    assert value is not None
    changed = request.with_headers({"Signature-Input": value.replace("n-1", "n-2")})
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_request(changed, RSA_PUB, now=NOW)


# --- parsing ----------------------------------------------------------------------------------


def test_missing_signature() -> None:
    with pytest.raises(SignatureMissing):
        rfc9421.parse(Request("GET", INBOX))


GOOD_INPUT = 'sig1=("@method" "@target-uri");created=1618884473;keyid="k"'
GOOD_SIG = "sig1=:c2ln:"


@pytest.mark.parametrize(
    ("signature_input", "signature"),
    [
        (GOOD_INPUT, None),
        ("sig1=(", GOOD_SIG),
        ("sig1", GOOD_SIG),
        ('sig1="@method";created=1;keyid="k"', GOOD_SIG),
        ('sig1=(@method);created=1;keyid="k"', GOOD_SIG),
        ('sig1=(1 2);created=1;keyid="k"', GOOD_SIG),
        ('sig1=("@Method");created=1;keyid="k"', GOOD_SIG),
        ('sig1=("@method" "@method");created=1;keyid="k"', GOOD_SIG),
        ('sig1=("a";x=1 "a";x=1);created=1;keyid="k"', GOOD_SIG),
        ('sig1=("@method");created=1', GOOD_SIG),
        ('sig1=("@method");created="1";keyid="k"', GOOD_SIG),
        ('sig1=("@method");created=1;keyid="k";alg=rsa', GOOD_SIG),
        (GOOD_INPUT, "sig1=:c2ln:, sig1=:c2ln:"),
        (GOOD_INPUT, 'sig1="c2ln"'),
        (GOOD_INPUT, "sig1=::"),
        (GOOD_INPUT, "sig2=:c2ln:"),
        (GOOD_INPUT + ", " + GOOD_INPUT, GOOD_SIG),
        ('sig1=("caf\u00e9");created=1;keyid="k"', GOOD_SIG),
    ],
)
def test_malformed(signature_input: str, signature: str | None) -> None:
    headers = {"Signature-Input": signature_input}
    if signature is not None:
        headers["Signature"] = signature
    with pytest.raises(MalformedSignature):
        rfc9421.parse(Request("GET", INBOX, headers))


def test_requested_label_must_exist() -> None:
    request = Request("GET", INBOX, {"Signature-Input": GOOD_INPUT, "Signature": GOOD_SIG})
    assert rfc9421.parse(request).label == "sig1"
    with pytest.raises(MalformedSignature, match="sig2"):
        rfc9421.parse(request, label="sig2")


@pytest.mark.parametrize(
    ("component", "error"),
    [
        ('"@status"', UnsupportedSignature),
        ('"@frobnicate"', UnsupportedSignature),
        ('"@method";req', UnsupportedSignature),
        ('"date";tr', UnsupportedSignature),
        ('"x-unknown";sf', UnsupportedSignature),
        ('"@signature-params"', MalformedSignature),
        ('"@query-param"', MalformedSignature),
        ('"@query-param";name="a"', SignatureInvalid),  # occurs twice in the URL
        ('"@query-param";name="zzz"', SignatureInvalid),  # absent
        ('"x-absent"', SignatureInvalid),
        ('"date";key="a"', MalformedSignature),  # not a dictionary
    ],
)
def test_component_errors(component: str, error: type[Exception]) -> None:
    request = Request(
        "GET",
        INBOX + "?a=1&a=2",
        {
            "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
            "X-Unknown": "1",
            "Signature-Input": f'sig1=("@method" "@target-uri" {component})'
            f';created={NOW};keyid="k"',
            "Signature": GOOD_SIG,
        },
    )
    sig = rfc9421.parse(request)
    with pytest.raises(error):
        rfc9421.signature_base(sig, request)


def test_header_value_with_newline_is_malformed() -> None:
    request = Request(
        "GET",
        INBOX,
        {
            "X-Evil": 'a\n"@method": GET',
            "Signature-Input": f'sig1=("@method" "@target-uri" "x-evil");created={NOW};keyid="k"',
            "Signature": GOOD_SIG,
        },
    )
    with pytest.raises(MalformedSignature, match="newline"):
        rfc9421.signature_base(rfc9421.parse(request), request)


def test_sign_refuses_bad_requests() -> None:
    with pytest.raises(ValueError, match="x-missing"):
        rfc9421.sign(inbox_post(), "k", RSA_KEY, now=NOW, components=["@method", "x-missing"])
    with pytest.raises(ValueError, match="Ed25519"):
        rfc9421.sign(inbox_post(), "k", ED_KEY, now=NOW, algorithm="rsa-v1_5-sha256")
    with pytest.raises(ValueError):
        rfc9421.sign(inbox_post(), "k\u00e9", RSA_KEY, now=NOW)
    with pytest.raises(ValueError):
        rfc9421.sign(inbox_post(), "k", RSA_KEY, now=NOW, label="Bad Label")
