"""bench/safety.py: the one crash-safe publish of a folder, and the one stale-temp rule it relies on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.safety import is_stale_temp, publish_folder, temp_prefix


def writer(text: str):
    def write(folder: Path) -> None:
        (folder / "sub").mkdir()
        (folder / "sub" / "file.txt").write_text(text)
    return write


def test_publish_puts_a_whole_folder_in_place_with_shared_permissions(tmp_path):
    target = tmp_path / "out"
    assert publish_folder(target, writer("one")) == target
    assert (target / "sub" / "file.txt").read_text() == "one"
    mask = os.umask(0)
    os.umask(mask)
    assert (target / "sub" / "file.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    assert target.stat().st_mode & 0o777 == 0o777 & ~mask  # not mkdtemp's 0700
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_existing_folder_is_replaced_kept_or_refused(tmp_path):
    target = tmp_path / "out"
    publish_folder(target, writer("one"))
    publish_folder(target, writer("two"), keep_existing=lambda existing: True)
    assert (target / "sub" / "file.txt").read_text() == "one"
    publish_folder(target, writer("three"))
    assert (target / "sub" / "file.txt").read_text() == "three"

    def refuse(existing: Path) -> bool:
        raise ValueError(f"{existing} exists")

    with pytest.raises(ValueError, match="exists"):
        publish_folder(target, writer("four"), keep_existing=refuse)
    assert (target / "sub" / "file.txt").read_text() == "three"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_write_leaves_nothing_and_the_temp_name_says_whose_it_was(tmp_path):
    seen = []

    def fail(folder: Path) -> None:
        seen.append(folder)
        (folder / "half").write_text("x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        publish_folder(tmp_path / "out", fail)
    assert list(tmp_path.iterdir()) == []
    assert seen[0].name.startswith(temp_prefix("out"))
    assert not is_stale_temp(seen[0])  # our own pid is alive: a sweep now would leave a running build alone
