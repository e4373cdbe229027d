"""The sandbox's ListObjectVersions: moto's answers, at a cost per page rather than per version
in the bucket (moto deep-copied every version, bytes included, for each page: a restore's
listings of a 10,000-key dataset took minutes, for mldr and rclone alike)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from moto.s3.models import S3Backend, s3_backends

from mldr.sandbox import motoserver


def _pages(backend: Any, listing: Any, **kwargs: Any) -> list[Any]:
    out, key_marker, version_marker = [], None, None
    while True:
        versions, prefixes, markers, key_marker, version_marker = listing(
            backend, "listing-bucket", key_marker=key_marker, version_id_marker=version_marker, **kwargs
        )
        out.append(
            (
                [(v.name, v.version_id, v.is_latest) for v in versions],
                prefixes,
                [(m.name, m.version_id, m.is_latest) for m in markers],
                key_marker,
                version_marker,
            )
        )
        if key_marker is None:
            return out


def test_versions_are_listed_as_moto_lists_them_without_copying_every_stored_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(S3Backend, "list_object_versions", S3Backend.list_object_versions)  # undone after
    motos_own = S3Backend.list_object_versions
    backend = s3_backends["123456789012"]["aws"]
    backend.create_bucket("listing-bucket", "us-east-1")
    backend.put_bucket_versioning("listing-bucket", "Enabled")
    for i in range(120):  # overwrites, delete markers, keys under and beside prefixes
        key = f"{('a/', 'b/', 'a/c/', '')[i % 4]}k{i % 37:02d}"
        if i % 7 == 3:
            backend.delete_object("listing-bucket", key)
        else:
            backend.put_object("listing-bucket", key, b"x" * (i % 5))
    cases: list[dict[str, Any]] = [
        {"max_keys": 1000},
        {"max_keys": 25},
        {"prefix": "a/", "max_keys": 10},
        {"prefix": "a/", "delimiter": "/", "max_keys": 2},
        {"delimiter": "/", "max_keys": 3},
    ]
    deep_copies = 0
    real_deepcopy = copy.deepcopy

    def counting(value: Any, *args: Any) -> Any:
        nonlocal deep_copies
        deep_copies += 1
        return real_deepcopy(value, *args)

    monkeypatch.setattr(copy, "deepcopy", counting)
    expected = [_pages(backend, motos_own, **case) for case in cases]
    assert deep_copies > 1000, "moto's own listing copies every stored version for each page"
    deep_copies = 0
    motoserver._paged_version_listing()
    assert [_pages(backend, S3Backend.list_object_versions, **case) for case in cases] == expected
    assert deep_copies == 0, "a page copied the bucket's stored versions"
