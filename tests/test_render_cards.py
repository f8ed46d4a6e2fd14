"""What a card says about its job: what differs within a group, queue position, the options the user chose."""

# ruff: noqa: F811 - the shell fixtures are imported from browser_conftest and requested by name

from __future__ import annotations

import asyncio
import re

import pytest
from browser_conftest import ip, published  # noqa: F401 - fixtures used by name
from test_render import XSS, FakeJob

from fal_notebook.notebook import live as render
from fal_notebook.views.card_data import group_variants, short_value


def bundle(job, variant=()) -> dict[str, str]:
    return render.JobCard(job, variant)._repr_mimebundle_()


def chips(html: str) -> list[str]:
    return re.findall(r'<span class="fal-variant"[^>]*>([^<]*)</span>', html)


def test_a_sweep_says_which_value_each_card_has_and_n_says_which_copy():
    sweep = [FakeJob(id=f"s{i}", arguments={"prompt": "p", "aspect_ratio": r}) for i, r in enumerate(["1:1", "9:16"])]
    assert group_variants(sweep) == [(("aspect_ratio", "1:1"),), (("aspect_ratio", "9:16"),)]
    copies = [FakeJob(id=f"n{i}", arguments={"prompt": "p", "seed": 4}) for i in range(3)]
    assert group_variants(copies) == [(("#", "1 of 3"),), (("#", "2 of 3"),), (("#", "3 of 3"),)]
    both = [FakeJob(arguments={"prompt": "p", "aspect_ratio": r}) for r in ("1:1", "1:1", "16:9")]
    assert group_variants(both)[1] == (("aspect_ratio", "1:1"), ("#", "2 of 2"))
    assert group_variants(both)[2] == (("aspect_ratio", "16:9"),)

    html = bundle(sweep[1], group_variants(sweep)[1])["text/html"]
    assert chips(html) == ["aspect_ratio=9:16"]
    assert "fal-options" not in html  # the swept field is the chip, not repeated as an option
    assert "#2 of 3" in bundle(copies[1], group_variants(copies)[1])["text/plain"].splitlines()[0]


def test_swept_values_are_escaped():
    group = [FakeJob(arguments={"prompt": XSS if i else "plain", "style": f"<b>{i}</b>"}) for i in range(2)]
    html = bundle(group[1], group_variants(group)[1])["text/html"]
    assert "<script" not in html and "<b>1" not in html
    assert "style=&lt;b&gt;1&lt;/b&gt;" in chips(html)
    assert any(c.startswith("prompt=&lt;script&gt;") for c in chips(html))


def test_a_group_is_one_output_redrawn_in_place_as_any_job_moves(ip, published):
    group = [FakeJob(id=f"j{i}", arguments={"prompt": "p", "aspect_ratio": r}) for i, r in enumerate(["1:1", "16:9"])]

    async def scenario():
        cards = render.show(group)
        group[1].set(state="COMPLETED")
        await asyncio.sleep(0)  # the scheduled redraw runs
        for _ in range(100):
            if len(published) >= 2:
                break
            await asyncio.sleep(0.01)
        return cards

    (card,) = asyncio.run(scenario())
    assert card.jobs == group
    first, update = published
    assert not first["update"] and update["update"]
    assert update["transient"]["display_id"] == first["transient"]["display_id"]
    html = update["data"]["text/html"]
    assert html.count('class="fal-tile"') == 2 and "aspect_ratio=16:9" in html
    assert 'data-fal-job="j1" data-fal-state="COMPLETED"' in html and 'data-fal-job="j0" data-fal-state="' in html
    assert "COMPLETED" in update["data"]["text/plain"]


def test_queue_position_shows_only_while_queued():
    queued = bundle(FakeJob(state="IN_QUEUE", queue_position=3))
    assert '<b class="fal-queue">queue position 3</b>' in queued["text/html"]
    assert "queue position 3" in queued["text/plain"]
    running = bundle(FakeJob(state="IN_PROGRESS", queue_position=3))
    assert "queue position" not in running["text/html"] + running["text/plain"]


def test_options_list_what_the_user_chose_not_the_defaults():
    long_text = "x" * 200
    job = FakeJob(arguments={"prompt": "a fox", "aspect_ratio": "16:9", "num_images": 1, "output_format": "png",
                             "seed": 7, "image_urls": ["http://127.0.0.1:9/files/ab/cd/fox.png?sig=1",
                                                       "data:image/png;base64,AAAA", "https://x/y.png"],
                             "negative_prompt": long_text})
    data = bundle(job)
    html, text = data["text/html"], data["text/plain"]
    assert "<code>aspect_ratio=16:9</code>" in html and "<code>seed=7</code>" in html
    assert "num_images" not in html and "output_format" not in html  # nano-banana-pro's defaults
    assert "image_urls=fox.png, inline image/png +1" in html
    assert "options: aspect_ratio=16:9, seed=7, image_urls=fox.png, inline image/png +1, negative_prompt=" in text
    assert long_text not in html and len(short_value(long_text)) == 40


@pytest.mark.parametrize(("value", "shown"), [
    ({"$data_uri": "abc", "path": "/x", "header": "data:image/webp;base64"}, "inline image/webp"),
    (True, "true"), (2.5, "2.5"), ({"a": 1}, '{"a":1}'), ("https://cdn.example/v/clip.mp4", "clip.mp4"),
    ("/tmp/in/fox.png", "fox.png"), ("/ not a path", "/ not a path"),
])
def test_short_values(value, shown):
    assert short_value(value) == shown


def test_an_unknown_model_shows_every_option():
    job = FakeJob(model="someone/unknown-model", arguments={"prompt": "p", "num_images": 1})
    assert "num_images=1" in bundle(job)["text/plain"]


@pytest.fixture(autouse=True)
def _fresh_registry():
    render._CARDS.clear()
    yield
    render._CARDS.clear()
