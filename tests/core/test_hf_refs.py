"""What users paste to name a Hugging Face model."""

from __future__ import annotations

import pytest

from app.core.errors import BadRequest
from app.core.hf_refs import HfRef, parse_hf_reference


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("org/repo", HfRef("org/repo")),
        ("  org/repo  ", HfRef("org/repo")),
        ("https://huggingface.co/org/repo", HfRef("org/repo")),
        ("https://huggingface.co/org/repo/", HfRef("org/repo")),
        ("http://www.huggingface.co/org/repo", HfRef("org/repo")),
        ("huggingface.co/org/repo", HfRef("org/repo")),
        ("https://hf.co/org/repo", HfRef("org/repo")),
        ("https://huggingface.co/org/repo/tree/main", HfRef("org/repo", revision="main")),
        ("https://huggingface.co/org/repo/blob/main/m.gguf", HfRef("org/repo", "m.gguf", "main")),
        (
            "https://huggingface.co/org/repo/resolve/v1/sub/m.gguf?download=true",
            HfRef("org/repo", "sub/m.gguf", "v1"),
        ),
    ],
)
def test_every_url_form_names_the_repo(text: str, ref: HfRef) -> None:
    assert parse_hf_reference(text) == ref


@pytest.mark.parametrize(
    "text",
    [
        "",
        "repo-only",
        "a/b/c",
        "org/../x",
        "../org/repo",
        "org/re po",
        "https://example.com/org/repo",
        "ftp://huggingface.co/org/repo",
        "https://huggingface.co/datasets/org/repo",
        "https://huggingface.co/spaces/org/app",
        "https://huggingface.co/org",
        "https://huggingface.co/org/repo/commits/main",
        "https://huggingface.co/org/repo/blob/main/../../etc/passwd",
        "https://huggingface.co.evil.com/org/repo",
        "https://[::1",  # urlsplit raises ValueError on these: it was a 500
        "http://[x]/org/repo",
        "https://[huggingface.co]/org/repo",
    ],
)
def test_what_is_not_a_model_reference_is_refused(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_hf_reference(text)


def test_a_mirror_named_by_hf_endpoint_is_accepted() -> None:
    ref = parse_hf_reference("http://mirror:8080/org/repo", frozenset({"mirror:8080"}))
    assert ref == HfRef("org/repo")
