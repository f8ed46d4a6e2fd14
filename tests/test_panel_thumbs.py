"""The panel's thumbnail cache on disk: keyed by file version, whole files only, bounded, and a second panel over
the same store decodes no picture (decodes counted, not timed)."""

from __future__ import annotations

import importlib
import os
import threading

import pytest

from fal_notebook import jobs, media
from fal_notebook.notebook.panel import thumbs
from fal_notebook.notebook.panel.panel import panel as make_panel
from fal_notebook.notebook.panel.thumbs import ThumbCache


def entries(folder) -> list:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_an_entry_is_made_once_and_read_back(tmp_path):
    cache = ThumbCache(tmp_path / "cache")
    made = []
    assert cache.get("ab" * 20, lambda: made.append(1) or b"jpeg bytes") == b"jpeg bytes"
    assert cache.get("ab" * 20, lambda: made.append(1) or b"other") == b"jpeg bytes"
    assert made == [1] and [p.name for p in entries(tmp_path / "cache")] == ["ab" * 20 + ".jpg"]
    # "no thumbnail possible" is remembered too (an empty entry): the file is not decoded at every open
    assert cache.uri("cd" * 20, lambda: made.append(2) or b"") == ""
    assert cache.uri("cd" * 20, lambda: made.append(2) or b"x") == "" and made == [1, 2]


def test_the_key_follows_the_file_version(tmp_path):
    cache = ThumbCache(tmp_path / "cache")
    picture = tmp_path / "a.png"
    picture.write_bytes(media.make_test_image(32, 32, "png", text="one"))
    version = cache.version(picture)
    first = cache.key(version, 320, 24_000)
    assert version == cache.version(str(picture)) and first != cache.key(version, 128, 8_000)
    stat = picture.stat()
    picture.write_bytes(media.make_test_image(40, 40, "png", text="two"))
    os.utime(picture, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the same timestamp: the size still tells
    assert cache.key(cache.version(picture), 320, 24_000) != first
    picture.write_bytes(media.make_test_image(32, 32, "png", text="one"))
    os.utime(picture, ns=(1, 1))  # the same size again, another time
    assert cache.key(cache.version(picture), 320, 24_000) != first
    assert cache.version(tmp_path / "gone.png") is None and cache.key(None, 320, 24_000) is None
    assert cache.uri(None, bytes) == ""


def test_the_folder_is_bounded_and_keeps_the_recently_used(tmp_path):
    folder = tmp_path / "cache"
    cache = ThumbCache(folder, max_bytes=10_000)
    keys = [f"{i:02d}" + "k" * 38 for i in range(30)]
    for key in keys:
        cache.get(key, lambda: b"x" * 1000)
        assert sum(p.stat().st_size for p in entries(folder)) <= 10_000  # never past the bound
    assert len(entries(folder)) >= 8
    # the least recently used go first: give each entry a clear time of use, then use the oldest once more
    for i, path in enumerate(entries(folder)):
        os.utime(path, ns=(i * 10**9, i * 10**9))
    oldest, second = (p.stem for p in entries(folder)[:2])
    assert cache.get(oldest, lambda: b"not made") == b"x" * 1000
    cache.get("zz" * 20, lambda: b"y" * 3000)  # past the bound again: a clean-up
    names = {p.stem for p in entries(folder)}
    assert oldest in names and second not in names and "zz" * 20 in names
    assert sum(p.stat().st_size for p in entries(folder)) <= 10_000
    # another process (another cache object) counting the same folder keeps it bounded too
    ThumbCache(folder, max_bytes=5_000).prune()
    assert sum(p.stat().st_size for p in entries(folder)) <= 5_000


def test_concurrent_writers_leave_whole_files_only(tmp_path):
    folder = tmp_path / "cache"
    caches = [ThumbCache(folder) for _ in range(4)]  # as if four kernels shared the folder
    data = [bytes([i]) * 200_000 for i in range(4)]
    start = threading.Barrier(4)

    def write(i: int) -> None:
        start.wait()
        for _ in range(20):
            caches[i]._put(folder / "ee" / ("e" * 40 + ".jpg"), data[i])

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (entry,) = entries(folder)  # no temporary file is left behind
    assert entry.read_bytes() in data


def test_an_unwritable_folder_still_gives_the_thumbnail(tmp_path):
    blocker = tmp_path / "home"
    blocker.write_text("a file where the folder should be")
    cache = ThumbCache(blocker / "thumbnails")
    assert cache.get("ab" * 20, lambda: b"made") == b"made"


@pytest.fixture
def panels(fal_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = []

    def make():
        made.append(make_panel("nano-banana-pro"))
        return made[-1]

    yield make
    for p in made:
        p.close()
    jobs.reset_for_tests()


def test_a_second_panel_decodes_nothing(panels, fal_env, emulator, monkeypatch, wait_for):
    card_data = importlib.import_module("fal_notebook.views.card_data")  # the package exports a function of that name
    done = [jobs.submit("nano-banana-pro", prompt=f"fox {i}").wait(timeout=30) for i in range(3)]
    decoded = []
    real = media.thumbnail_jpeg
    monkeypatch.setattr(media, "thumbnail_jpeg", lambda *a, **k: decoded.append(1) or real(*a, **k))
    first = panels()
    assert first.snapshot().count('src="data:image/jpeg;base64,') == 3
    assert len(decoded) == 6  # each picture once for its tile, once more (from the small tile) for the snapshot
    assert len(entries(fal_env.home / "thumbnails")) == 6
    card_data._cache.clear()  # nothing kept in memory: as in a new kernel
    decoded.clear()
    sent = []
    second = panels()
    monkeypatch.setattr(second.board, "send", lambda content, buffers=None: sent.append(content))
    assert second.snapshot() == first.snapshot()
    second.board._handle_custom_msg({"type": "thumbs", "ids": [j.id for j in done]}, [])  # the view asks
    wait_for(lambda: {i for m in sent for i in m["items"]} >= {j.id for j in done})
    assert decoded == []
    assert thumbs.cache_in(fal_env.home / "thumbnails") is thumbs.cache_in(fal_env.home / "thumbnails")


def test_a_tile_being_made_unasked_is_not_made_again_when_the_view_asks(panels, emulator, monkeypatch, wait_for):
    from fal_notebook.notebook.panel import panel as panel_module
    from fal_notebook.notebook.panel.board import Board

    job = jobs.submit("nano-banana-pro", prompt="a fox").wait(timeout=30)
    gate, making = threading.Event(), []
    real = panel_module.thumbnail

    def slow(*args, **kwargs):
        making.append(args[1])
        assert gate.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(panel_module, "thumbnail", slow)
    sent = []
    monkeypatch.setattr(Board, "send", lambda self, content, buffers=None: sent.append(content))
    p = panels()
    wait_for(lambda: making)  # the first tile is being made, unasked
    asked = []
    monkeypatch.setattr(p, "_send_thumbs", lambda ids: asked.append(ids))
    p.board._handle_custom_msg({"type": "thumbs", "ids": [job.id, "not-being-made"]}, [])  # the view asks
    assert wait_for(lambda: asked) == [["not-being-made"]]
    gate.set()
    p.snapshot()  # waits for the unasked ones
    assert [list(m["items"]) for m in sent] == [[job.id]] and len(making) == 1
