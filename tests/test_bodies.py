"""Request bodies and query parameters as the API server accepts them (pure, table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from mikro.api import bodies
from mikro.errors import ApiError


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], None), (["0"], 0), (["12"], 12), ([" 12 "], 12), (["12", "12"], 12)],
)
def test_content_length(values: list[str], expected: int | None) -> None:
    assert bodies.parse_content_length(values) == expected


@pytest.mark.parametrize("values", [["-1"], ["abc"], ["1e3"], ["+5"], ["1", "2"], ["٣"], ["9" * 19], [""]])
def test_bad_content_length(values: list[str]) -> None:
    with pytest.raises(ApiError) as err:
        bodies.parse_content_length(values)
    assert err.value.code == 400


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", {}),
        (b"  \n", {}),
        (b'{"a": [1, 2.5, "x", null, true]}', {"a": [1, 2.5, "x", None, True]}),
        (b"a: 1\nb: [x, y]\nwhen: 2024-01-01\n", {"a": 1, "b": ["x", "y"], "when": "2024-01-01"}),
        (b"a: &x [1]\nb: *x\n", {"a": [1], "b": [1]}),
    ],
)
def test_decode(raw: bytes, expected: Any) -> None:
    assert bodies.decode(raw) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": Infinity}', "not valid JSON"),
        (b'{"a": 1e999}', "cannot carry"),
        (b"a: .inf\n", "cannot carry"),
        (b"a: .nan\n", "cannot carry"),
        (b"a: &a [*a]\n", "nested deeper"),  # a list that holds itself
        (
            b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + b"".join(
                b"a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n" % ((i, i) + (i - 1,) * 10)
                for i in range(1, 7)
            ).replace(b"*a0", b"*a"),
            "expands",
        ),
        (b"[" * 200 + b"]" * 200, "nested deeper"),
        (b"[" * 100000, "nested deeper"),
        (b"a:\n" + b"".join(b"  " * i + b"- \n" for i in range(1, 150)), "nested deeper"),
        (b"{1: a}", "not valid JSON"),
        (b"1: a\n", "not a string"),
        (b"a: !!binary aGVsbG8=\n", "cannot carry"),
        (b"\xff\xfe: [", "neither JSON nor YAML"),
    ],
)
def test_decode_refuses(raw: bytes, why: str) -> None:
    with pytest.raises(ApiError) as err:
        bodies.decode(raw)
    assert err.value.code == 400 and why in err.value.message


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"b":{"c":[{"d":1},{"d":2,"e":{}}]}}',
        b'{"a":1,"a":2}',
        b'{"metadata":{"name":"x","labels":{"k":"1","k":"2"}}}',
        b'{"items":[{"n":1},{"n":1,"n":2}]}',
        b'[{"a":1},{"b":2}]',
        b'\xef\xbb\xbf{"bom":true}',
        '{"u":"\u00e9\u4e2d"}'.encode("utf-16"),
        b"  {\n  \"spaced\" : [1, 2.5, null, true]\n}  ",
        b"kind: ConfigMap\nmetadata: {name: y}\n",
    ],
)
def test_one_decode_notes_duplicates_as_the_separate_check_finds_them(raw: bytes) -> None:
    """The API server decodes a body once, noting keys given twice on the way: the same
    object as json.loads (or YAML), and duplicates exactly when fieldValidation's own check
    finds some."""
    from mikro.api import fieldvalidation

    obj, duplicates = bodies.decode_noting_duplicates(raw)
    assert obj == bodies.decode(raw)
    if raw.lstrip().startswith(b"{") or raw.startswith(b"\xef") or raw.startswith(b"\xff"):
        import json

        assert obj == json.loads(raw)
        assert duplicates == bool(fieldvalidation.find_duplicates(raw))
    else:
        assert duplicates is False


def test_decode_refuses_more_than_the_limit() -> None:
    with pytest.raises(ApiError) as err:
        bodies.decode(b" " * (bodies.MAX_REQUEST_BYTES + 1))
    assert err.value.code == 413 and err.value.message == "Request entity too large: limit is 3145728"


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("", None), ("0", 0), ("30", 30), ("-2", -2)])
def test_query_int(value: str | None, expected: int | None) -> None:
    query = {} if value is None else {"n": value}
    assert bodies.query_int(query, "n") == expected


@pytest.mark.parametrize("value", ["x", "1.5", "--1", " 1", "1 ", "١", "9" * 19])
def test_query_int_refuses(value: str) -> None:
    with pytest.raises(ApiError) as err:
        bodies.query_int({"n": value}, "n")
    assert err.value.code == 400 and err.value.message.startswith(f'n: Invalid value: "{value}"')


def test_query_int_minimum() -> None:
    with pytest.raises(ApiError) as err:
        bodies.query_int({"limit": "-1"}, "limit", minimum=0)
    assert err.value.code == 400 and "must be greater than or equal to 0" in err.value.message


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("", None), ("0", None), ("42", 42)])
def test_resource_version(value: str | None, expected: int | None) -> None:
    query = {} if value is None else {"resourceVersion": value}
    assert bodies.resource_version(query) == expected


@pytest.mark.parametrize("value", ["abc", "-1", "1.0", "٣"])
def test_resource_version_refuses(value: str) -> None:
    with pytest.raises(ApiError) as err:
        bodies.resource_version({"resourceVersion": value})
    assert err.value.code == 400 and err.value.message.startswith("invalid resource version")


@pytest.mark.parametrize(
    "body",
    [
        [1],
        "x",
        {"kind": 5},
        {"metadata": []},
        {"metadata": {"name": 1}},
        {"metadata": {"labels": "a"}},
        {"metadata": {"annotations": {"a": 1}}},
        {"metadata": {"finalizers": "a"}},
        {"metadata": {"ownerReferences": [1]}},
        {"spec": []},
        {"status": "x"},
    ],
)
def test_require_object_refuses(body: Any) -> None:
    with pytest.raises(ApiError) as err:
        bodies.require_object(body, "ConfigMap")
    assert err.value.code == 400 and "cannot be handled as a ConfigMap" in err.value.message


def test_require_object_accepts() -> None:
    body = {"metadata": {"name": "a", "labels": {"x": "y", "z": None}, "ownerReferences": [{}]}, "spec": {}}
    assert bodies.require_object(body, "ConfigMap") is body
