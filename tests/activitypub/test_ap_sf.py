"""The structured-field front (activitypub._sf): its fast path reads and writes exactly what
http_sf does, and gives way to http_sf on everything else."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import http_sf
import pytest
from http_sf.types import Token
from hypothesis import given, settings
from hypothesis import strategies as st

from activitypub._sf import SFError, _fast_dictionary, parse_dictionary, serialize_member


def typed(value: Any) -> Any:
    """*value* with every leaf tagged by its type: a Token must not pass for a str, nor a
    Boolean for an Integer."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [typed(item) for item in value])
    return (type(value).__name__, value)


def reference(text: str) -> Any:
    """What http_sf reads, with duplicate keys refused as parse_dictionary refuses them; an
    exception instance when it refuses the text."""

    def duplicate(key: str, context: str) -> None:
        raise ValueError(f"duplicate {context} {key}")

    try:
        return http_sf.parse(text.encode("ascii"), tltype="dictionary", on_duplicate_key=duplicate)
    except Exception as exc:
        return exc


# --- generated fields ------------------------------------------------------------------------

keys = st.from_regex(r"[a-z*][a-z0-9_\-.*]{0,6}", fullmatch=True)
strings = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
bare_items = st.one_of(
    strings,
    st.integers(-(10**15) + 1, 10**15 - 1),
    st.binary(max_size=12),
    st.booleans(),
    st.from_regex(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]{0,5}", fullmatch=True).map(Token),
    st.decimals(min_value=-999, max_value=999, places=2, allow_nan=False).map(Decimal),
)


def dictionaries_of(
    bare: st.SearchStrategy[Any], in_params: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    params = st.dictionaries(keys, in_params, max_size=3)
    items = st.tuples(bare, params)
    members = st.one_of(items, st.tuples(st.lists(items, max_size=4), params))
    return st.dictionaries(keys, members, min_size=1, max_size=3)


dictionaries = dictionaries_of(bare_items, bare_items)
# Only the kinds of value the fast path reads, so that most examples exercise it.
plain_strings = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\')
)
integers = st.integers(-(10**15) + 1, 10**15 - 1)
common_dictionaries = dictionaries_of(
    st.one_of(plain_strings, integers, st.binary(max_size=12)), st.one_of(plain_strings, integers)
)

# Characters whose insertion or removal changes how a field reads.
noise = st.sampled_from([*' \t,;=():"\\*-.0123456789aAz/+', "\x7f", "é"])


@st.composite
def fields(draw: st.DrawFn) -> str:
    """A serialised dictionary, sometimes damaged by a few edits."""
    text: str = http_sf.ser(draw(st.one_of(dictionaries, common_dictionaries)))
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(noise)
        if action == "insert":
            text = text[:at] + char + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + char + text[at + 1 :]
    return text


@settings(max_examples=2000, deadline=None)
@given(fields())
def test_whatever_the_fast_path_reads_http_sf_reads_the_same(text: str) -> None:
    fast = _fast_dictionary(text)
    expected = reference(text) if text.isascii() else UnicodeEncodeError
    if fast is not None:
        assert not isinstance(expected, Exception), (text, fast, expected)
        assert typed(fast) == typed(expected)
    try:
        ours = parse_dictionary(text)
    except SFError:
        assert isinstance(expected, Exception) or expected is UnicodeEncodeError, text
    else:
        assert typed(ours) == typed(expected)


@settings(max_examples=1000, deadline=None)
@given(dictionaries)
def test_serialising_a_member_matches_http_sf(value: dict[str, Any]) -> None:
    for member in value.values():
        written = http_sf.ser({"k": member})
        # A Boolean true member is written as the bare key by http_sf ("k;p=1").
        expected = written[2:] if written.startswith("k=") else "?1" + written[1:]
        assert serialize_member(member) == expected


@pytest.mark.parametrize("member", [("é", {}), ([("a\x7f", {})], {}), (10**15, {})])
def test_values_http_sf_cannot_write_are_refused_by_both(member: Any) -> None:
    with pytest.raises(ValueError):
        http_sf.ser({"k": member})
    with pytest.raises(ValueError):
        serialize_member(member)


# --- the shapes peers send go the fast way ---------------------------------------------------

MASTODON_INPUT = (
    'sig1=("@method" "@target-uri" "content-digest" "content-type");created=1731300000;'
    'keyid="https://mastodon.example/users/alice#main-key";alg="rsa-v1_5-sha256"'
)


@pytest.mark.parametrize(
    "text",
    [
        MASTODON_INPUT,
        "sig1=:" + base64.b64encode(bytes(range(256))).decode() + ":",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:YWJj:",
        'sig1=();created=1, sig2=("@method" "@path");keyid="k"',
    ],
)
def test_common_signature_fields_take_the_fast_path(text: str) -> None:
    fast = _fast_dictionary(text)
    assert fast is not None
    assert typed(fast) == typed(reference(text))


@pytest.mark.parametrize(
    "text",
    [
        'sig1=("@method");keyid="a\\"b"',  # an escape
        "sig1=:YWJ:",  # unpadded: http_sf accepts it
        'sig1=("@method");bool',  # a Boolean parameter
        "sig1=tok",  # a Token
        "a=1.5",  # a Decimal
        'sig1=("@method"), sig1=("@path")',  # a duplicate key: http_sf refuses it
        "sig1=(1);a=1;a=2",  # a duplicate parameter
        "a=1,",  # a trailing comma
        "",
    ],
)
def test_other_shapes_are_left_to_http_sf(text: str) -> None:
    assert _fast_dictionary(text) is None
    expected = reference(text)
    if isinstance(expected, Exception):
        with pytest.raises(SFError):
            parse_dictionary(text)
    else:
        assert typed(parse_dictionary(text)) == typed(expected)
