"""The original skill's Python names keep old scripts working: the skill's README example, changed by one import."""

from __future__ import annotations

import base64

import pytest
from PIL import Image

from fal_notebook import jobs
from fal_notebook.errors import ValidationError


@pytest.fixture
def skill(fal_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from fal_notebook import skill as module

    yield module
    jobs.reset_for_tests()


def test_the_skill_readme_example_runs_with_one_import_changed(skill, emulator, tmp_path):
    # from the original SKILL.md, with `from fal_client import …` → `from fal_notebook.skill import …`
    result = skill.submit('fal-ai/nano-banana-pro', {'prompt': 'A futuristic city at night'})
    assert set(result) >= {"request_id", "status_url", "response_url", "cancel_url"}
    assert result["request_id"] in emulator.jobs

    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 24), (200, 10, 10)).save(photo)
    img_uri = skill.image_to_data_uri(str(photo))
    assert img_uri.startswith("data:image/png;base64,") and base64.b64decode(img_uri.split(",", 1)[1])[:4] == b"\x89PNG"
    edit = skill.submit('fal-ai/nano-banana-pro/edit', {'prompt': 'Transform into watercolor painting',
                                                        'image_urls': [img_uri]})

    status = skill.check_status('fal-ai/nano-banana-pro', result['request_id'])
    assert status["status"] in {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}  # fal's own status JSON

    jobs.wait(timeout=60)
    completed = skill.poll_pending()  # nothing is pending any more: the runtime followed both
    assert completed == [] and skill.list_pending() == []
    payload = skill.get_result('fal-ai/nano-banana-pro', result['request_id'])
    assert payload['images'][0]['url'].startswith("http")
    assert skill.get_result('fal-ai/nano-banana-pro/edit', edit['request_id'])['images']


def test_poll_pending_returns_finished_requests_with_their_result(skill, emulator, wait_for):
    emulator.hold(True)
    held = skill.submit('nano-banana-pro', {'prompt': 'a held fox'})
    (entry,) = skill.list_pending()
    assert entry["request_id"] == held["request_id"] and entry["model_id"] == "fal-ai/nano-banana-pro"
    sent = dict(entry["input"])
    assert isinstance(sent.pop("seed"), int)  # the client picks a seed for a model that takes one
    assert sent == {"prompt": "a held fox"} and entry["status"] == "IN_QUEUE"
    jobs.reset_for_tests()  # the script ends: nobody follows the request any more, as with the original
    assert skill.poll_pending() == []  # still queued on fal: stays pending (and followed from now on)
    emulator.release()
    # like the original's users: poll until it has finished; it is reported once even if it ended in between
    completed = wait_for(skill.poll_pending)
    (entry,) = completed
    assert entry["request_id"] == held["request_id"] and entry["status"] == "COMPLETED"
    assert entry["result"]["images"][0]["url"].startswith("http")
    assert skill.list_pending() == [] and jobs.get(held["request_id"]).files  # kept, and downloaded
    assert skill.poll_pending() == []  # reported once


def test_unknown_fields_are_reported_not_sent(skill, emulator):
    with pytest.raises(ValueError) as info:  # the original raised ValueError: scripts that catch it still work
        skill.submit('fal-ai/nano-banana-pro', {'prompt': 'a cat', 'skip_validation': True, 'aspect_ration': '1:1'})
    assert isinstance(info.value, ValidationError)
    text = str(info.value)
    assert "skip_validation: is not a field of fal-ai/nano-banana-pro; not sent" in text
    assert "submit(model_id, input_data, skip_validation=True)" in text
    assert "aspect_ration" in text and "did you mean 'aspect_ratio'?" in text
    assert emulator.jobs == {} and jobs.jobs(all=True) == []  # nothing sent, nothing stored
    ok, errors, warnings = skill.validate_input('fal-ai/nano-banana-pro', {'prompt': 'x', 'colour': 'red'})
    assert not ok and any("colour" in e for e in errors)
    assert skill.validate_input('fal-ai/nano-banana-pro', {'prompt': 'x'})[0] is True


def test_skip_validation_keeps_the_original_argument_order(skill, emulator):
    result = skill.submit('fal-ai/nano-banana-pro', {'prompt': 'a cat', 'extra_field': 1}, True)
    jobs.wait(timeout=60)
    assert emulator.jobs[result["request_id"]].arguments == {"prompt": "a cat", "extra_field": 1}


def test_model_info_and_key_shapes(skill):
    info = skill.get_model_info('fal-ai/kling-video/o3/standard/video-to-video/edit')
    assert set(info) == {"model_id", "required", "optional", "file_fields", "notes"}
    assert info["required"] == ["prompt", "video_url"] and "image_urls" in info["optional"]
    key = skill.get_api_key()
    assert key and "test-secret" not in str(key) + repr(key)


def test_every_name_the_original_exported_exists():
    from fal_notebook import skill

    names = ["submit", "check_status", "get_result", "poll_pending", "list_pending", "validate_input",
             "get_model_info", "get_api_key", "file_to_data_uri", "image_to_data_uri", "video_to_data_uri"]
    assert all(callable(getattr(skill, n)) for n in names)
