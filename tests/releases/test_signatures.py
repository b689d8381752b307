"""Signature checks, against the platforms' published test vectors."""

from __future__ import annotations

import pytest

from releases import signatures


def test_github_published_vector():
    assert (
        signatures.sign_github(b"Hello, World!", "It's a Secret to Everybody")
        == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


@pytest.mark.parametrize(
    ("body", "secret", "expected"),
    [
        (
            b"hello world",
            "secret",
            "v1=734cc62f32841568f45715aeb9f4d7891324e6d948e4c6c60c0621cdac48623a",
        ),
        (
            b"lalala",
            "another-secret",
            "v1=daa220016c8f29a8b214fbfc3671aeec2145cfb1e6790184ffb38b6d0425fa00",
        ),
        (b"foo", "secret", "v1=773ba44693c7553d6ee20f61ea5d2757a9a4f4a44d2841ae4e95b52e4cd62db4"),
    ],
)
def test_circleci_published_vectors(body, secret, expected):
    assert signatures.sign_circleci(body, secret) == expected


def test_github_header_verifies_against_the_right_secret_only():
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    digest = signatures.github_digest(header)
    candidates = [("wrong", "a"), ("It's a Secret to Everybody", "b")]
    assert signatures.matching_secret(b"Hello, World!", digest, candidates) == "b"
    assert signatures.matching_secret(b"Hello, World?", digest, candidates) is None


def test_circleci_reads_only_v1_from_a_versioned_list():
    header = (
        "v2=" + "f" * 64 + ",v1=734cc62f32841568f45715aeb9f4d7891324e6d948e4c6c60c0621cdac48623a"
    )
    digest = signatures.circleci_digest(header)
    assert signatures.matching_secret(b"hello world", digest, [("secret", 1)]) == 1


@pytest.mark.parametrize(
    "header",
    [None, "", "sha1=abc", "sha256=", "sha256=xyz", "sha256=" + "0" * 63, "757107ea"],
)
def test_malformed_github_headers_are_refused(header):
    with pytest.raises(signatures.BadSignatureHeader):
        signatures.github_digest(header)


@pytest.mark.parametrize("header", [None, "", "v2=" + "a" * 64, "v1=zz", "v1"])
def test_malformed_circleci_headers_are_refused(header):
    with pytest.raises(signatures.BadSignatureHeader):
        signatures.circleci_digest(header)
