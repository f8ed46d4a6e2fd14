"""The store's judging columns (rating, label, note), its search filters and the lineage table."""

from __future__ import annotations

from fal_notebook.store import JobRecord, JobState, JobStore, new_job_id


def _record(**kw) -> JobRecord:
    kw.setdefault("id", new_job_id())
    kw.setdefault("endpoint", "fal-ai/flux/dev")
    return JobRecord(**kw)


def test_ratings_labels_and_notes_survive_reopening(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    a, b = store.insert(_record(arguments={"prompt": "a red fox"})), store.insert(_record(arguments={"prompt": "owl"}))
    store.update(a.id, rating=5, label="keep", note="the best fox")
    store.update(b.id, rating=2, label="keep")
    store.close()
    store = JobStore(path)
    row = store.get(a.id)
    assert (row.rating, row.label, row.note) == (5, "keep", "the best fox")
    assert [r.id for r in store.list(label="keep", min_rating=3)] == [a.id]
    assert {r.id for r in store.list(label="keep")} == {a.id, b.id}
    assert [r.id for r in store.list(text="BEST FOX")] == [a.id]
    assert [r.id for r in store.list(text="owl")] == [b.id]
    assert store.list(text="100%_") == []  # LIKE wildcards are literal
    store.close()


def test_lineage_and_producers(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    parent = store.insert(_record(state=JobState.COMPLETED, files=["/out/fox.png"],
                                  result={"images": [{"url": "https://cdn.example/fox.png"}]}))
    other = store.insert(_record(files=["/out/owl.png"]))
    child = store.insert(_record(arguments={"image_url": "https://cdn.example/fox.png"}))
    assert store.producers(["https://cdn.example/fox.png"]) == [parent.id]
    assert set(store.producers(["/out/fox.png", "/out/owl.png"])) == {parent.id, other.id}
    assert store.producers(["https://elsewhere.example/x.png", ""]) == []
    store.add_parents(child.id, [parent.id, parent.id, child.id])
    store.add_parents(child.id, [other.id], kind="rerun")
    assert store.parents(child.id) == [(parent.id, "input"), (other.id, "rerun")]
    assert store.children(parent.id) == [(child.id, "input")]
    store.close()
