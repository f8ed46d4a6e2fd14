"""``%fal`` / ``%%fal`` in a bare InteractiveShell, against the real emulator."""

# ruff: noqa: F811 - the shell fixtures are imported from browser_conftest and requested by name

from __future__ import annotations

import io
import re

import pytest
from browser_conftest import html_of, ip, published, shell  # noqa: F401 - fixtures used by name
from PIL import Image

from fal_notebook import jobs
from fal_notebook.notebook import live as render

XSS = "<script>alert(1)</script>"


def run(shell, source: str):
    """Run a cell like a user would; fail on anything but a usage error."""
    result = shell.run_cell(source, store_history=True)
    if result.error_before_exec is not None:
        raise result.error_before_exec
    return result


def emulated_inputs(emulator) -> list[dict]:
    return [job.arguments for job in emulator.jobs.values()]


def test_load_prints_one_line_and_unload_takes_everything_back(ip, fal_env, capsys):
    ip.extension_manager.load_extension("fal_notebook")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "emulator at http://127.0.0.1:" in out[0] and "test…" in out[0]
    assert "test-secret" not in out[0]
    assert "fal" in ip.magics_manager.magics["line"] and "fal" in ip.magics_manager.magics["cell"]
    ip.extension_manager.unload_extension("fal_notebook")
    assert "fal" not in ip.magics_manager.magics["line"] and "fal" not in ip.magics_manager.magics["cell"]
    assert not any("Presenter" in repr(cb) for cb in ip.events.callbacks["post_run_cell"])
    from fal_notebook.jobs import Job

    assert Job not in ip.display_formatter.ipython_display_formatter.type_printers


def test_line_magic_returns_the_job_shows_one_card_and_sends_typed_options(shell, published, emulator):
    from fal_notebook.jobs import Job

    result = run(shell, "%fal nano-banana-pro a red fox, $5 {{not}} {{unknown}} --aspect-ratio 16:9 "
                        "--num-images 2 --seed 7")
    job = result.result
    assert isinstance(job, Job)
    assert job.wait(timeout=20).state.value == "COMPLETED"
    assert emulated_inputs(emulator) == [{"prompt": "a red fox, $5 {not} {unknown}", "aspect_ratio": "16:9",
                                          "num_images": 2, "seed": 7}]
    shown = [o for o in published if not o["update"]]
    assert len(shown) == 1 and shown[0]["transient"]["display_id"]
    run(shell, "job = _")  # the displayed value stays bound; naming it again in a later cell shows it again
    before = len(published)
    run(shell, "job")
    assert len(published) == before + 1 and "COMPLETED" in published[-1]["data"]["text/plain"]
    sizes = {Image.open(p).size for p in job.files}
    assert len(job.files) == 2 and all(abs(w / h - 16 / 9) < 0.02 for w, h in sizes)


def test_cell_magic_yaml_fills_names_and_uploads_a_pil_image(shell, emulator):
    shell.user_ns["photo"] = Image.new("RGB", (64, 48), (10, 200, 30))
    shell.user_ns["style"] = "watercolour"
    job = run(shell, '%%fal nano-banana-pro/edit --resolution 1K\nprompt: make it {style}, price $HOME {{x}}\n'
                     'image_urls: ["{photo}"]\n').result
    job.wait(timeout=20)
    (sent,) = emulated_inputs(emulator)
    assert sent["prompt"] == "make it watercolour, price $HOME {x}" and sent["resolution"] == "1K"
    (url,) = sent["image_urls"]
    assert url.startswith(emulator.url) and any(r.method in ("POST", "PUT") and "upload" in r.path
                                                for r in emulator.requests)
    import httpx

    uploaded = Image.open(io.BytesIO(httpx.get(url).content))
    assert uploaded.size == (64, 48)


def test_cell_body_that_is_not_a_mapping_is_the_prompt(shell, emulator):
    run(shell, "%%fal nano-banana-pro\nA cat: sitting on a mat,\nwith $dollars and {{braces}}\n").result.wait(20)
    assert emulated_inputs(emulator)[0]["prompt"] == "A cat: sitting on a mat,\nwith $dollars and {braces}"


def test_sweep_returns_a_group_shown_as_one_strip(shell, published, emulator):
    group = run(shell, "%fal nbp a lighthouse --sweep aspect_ratio=1:1,16:9,9:16").result
    assert len(group) == 3 and group.wait(timeout=30).done
    assert sorted(a["aspect_ratio"] for a in emulated_inputs(emulator)) == ["16:9", "1:1", "9:16"]
    assert len({o["transient"]["display_id"] for o in published}) == 1  # one output for the whole group
    html = published[0]["data"]["text/html"]
    assert html.count('class="fal-tile"') == 3 and "aspect_ratio=16:9" in html


def test_wait_resends_final_cards_from_the_current_cell(shell, published, monkeypatch):
    monkeypatch.setattr(shell.magics_manager.registry["FalMagics"].presenter, "kernel", True)
    job = run(shell, "%fal nbp a red fox").result
    out = run(shell, "%fal wait --timeout 30").result
    assert job.done and "1 job done: 1 COMPLETED" in repr(out)
    final = [o for o in published if o["update"] and "COMPLETED" in o["data"]["text/plain"]]
    assert final and final[-1]["transient"]["display_id"] == published[0]["transient"]["display_id"]
    assert "data:image/jpeg;base64," in final[-1]["data"]["text/html"]


def test_terminal_wait_prints_only_the_waited_jobs_final_cards_once(shell, published, capsys, emulator):
    older = run(shell, "%fal nbp an older fox").result
    older.wait(timeout=20)
    run(shell, "x = 1")  # the older job's notice comes here
    assert "[fal] job " + older.id in capsys.readouterr().out
    emulator.hold(True)
    held = run(shell, "%fal nbp a held fox").result
    emulator.release()
    before = len(published)
    assert "1 job done: 1 COMPLETED" in repr(run(shell, f"%fal wait {held.id} --timeout 30").result)
    new = [o for o in published[before:] if not o["update"]]
    assert [held.id in o["data"]["text/plain"] for o in new] == [True]  # the older card is not reprinted
    run(shell, "x = 2")
    assert "[fal]" not in capsys.readouterr().out  # and no notice repeats what the card said


def test_flag_wait_blocks_until_done(shell):
    job = run(shell, "%fal nbp a red fox --wait").result
    assert job.state.value == "COMPLETED" and job.files


def test_subcommands(shell, emulator, capsys):
    emulator.hold(True)
    job = run(shell, "held = %fal nbp a sleepy fox").result or shell.user_ns["held"]
    assert job.id in repr(run(shell, "%fal jobs").result)
    status = run(shell, f"%fal status {job.id}").result
    assert status.id == job.id
    assert "cancel requested for 1 job:" in repr(run(shell, f"%fal cancel {job.id}").result)
    job.wait(timeout=20)
    assert job.state.value == "CANCELLED"
    emulator.hold(False)
    run(shell, "%fal nbp an arctic fox").result.wait(20)
    run(shell, "%fal nbp a lighthouse").result.wait(20)
    history = repr(run(shell, "%fal history fox").result)
    assert "arctic fox" in history and "sleepy fox" in history and "lighthouse" not in history
    assert "fal-ai/kling-video/o3/standard/video-to-video/edit" in repr(run(shell, "%fal models kling").result)
    info = repr(run(shell, "%fal info nano-banana-pro").result)
    assert "--aspect-ratio" in info and "16:9" in info
    config = repr(run(shell, "%fal config").result)
    assert "emulator at" in config and "test-secret" not in config
    assert "following 0 unfinished jobs" in repr(run(shell, "%fal resume").result)
    assert "cancel requested for 0 jobs" in repr(run(shell, "%fal cancel all").result)


@pytest.mark.parametrize("line", [
    "%fal nano-banana-pro a fox --aspect-ratio 7:5",
    "%fal nano-banana-pro a fox --num-images many",
    "%fal nano-banana-pro a fox --colour red",
    "%fal no-such-model a fox",
    "%fal status 123456789abc",
    "%fal",
])
def test_errors_are_one_line_usage_errors(shell, capsys, line):
    result = shell.run_cell(line)
    err = capsys.readouterr().err
    from IPython.core.error import UsageError

    assert isinstance(result.error_in_exec, UsageError)
    assert "Traceback" not in err
    message = str(result.error_in_exec)
    assert "\n" not in message or line == "%fal"
    assert message and "test-secret" not in message


def test_a_script_prompt_is_text_in_every_bundle(shell, published):
    job = run(shell, f"%fal nbp {XSS} --wait").result
    html = html_of(published)
    assert job.done and "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    history = run(shell, "%fal history alert").result._repr_mimebundle_()["text/html"]
    assert "<script" not in history and "&lt;script&gt;" in history
    assert not re.search(r"<script", render.JobCard(job)._repr_mimebundle_()["text/html"])


def test_a_failed_job_shows_fal_detail_in_red(shell, published, emulator):
    emulator.configure(scenario="error")
    job = run(shell, "%fal nbp a red fox --wait").result
    assert job.state.value == "FAILED"
    html = published[-1]["data"]["text/html"]
    assert 'class="fal-error" style="color:#b91c1c' in html
    assert "Runner disconnected" in html and "runner_disconnected" in html


def test_fal_422_detail_is_listed_per_field(shell, published):
    job = run(shell, "%fal nbp a red fox --aspect-ratio 7:5 --no-validate --wait").result
    assert job.state.value == "FAILED"
    html = published[-1]["data"]["text/html"]
    assert re.search(r"<li>aspect_ratio: [^<]+</li>", html), html


def test_terminal_gets_one_notice_at_the_next_prompt(shell, capsys):
    job = run(shell, "j = %fal nbp a red fox").result or shell.user_ns["j"]
    job.wait(timeout=20)
    capsys.readouterr()
    run(shell, "x = 1")
    out = capsys.readouterr().out
    assert out.count(f"[fal] job {job.id} (fal-ai/nano-banana-pro) COMPLETED: ") == 1
    run(shell, "x = 2")
    assert "[fal]" not in capsys.readouterr().out


def test_terminal_out_prompt_of_a_magic_on_the_last_line_ends_with_the_job(shell, published, capsys):
    """A terminal's display hook writes ``Out[n]:`` before any formatter runs: it must not stay empty."""
    job = run(shell, "%fal nbp a red fox").result
    out = capsys.readouterr().out
    assert len([o for o in published if not o["update"]]) == 1  # the card, once
    assert re.search(rf"^Out\[\d+\]: <Job {job.id[:6]} nano-banana-pro \w+ [\d.]+s>$", out, re.MULTILINE), out
    job.wait(timeout=20)


def test_terminal_showing_a_finished_job_again_brings_no_notice(shell, published, capsys):
    job = run(shell, "j = %fal nbp a red fox --wait").result or shell.user_ns["j"]
    # --wait in a terminal: the final card once (no SUBMITTING card before it), and no notice after it
    cards = [o for o in published if not o["update"]]
    assert job.done and len(cards) == 1 and "COMPLETED" in cards[0]["data"]["text/plain"]
    assert "[fal]" not in capsys.readouterr().out
    before = len(published)
    run(shell, "j")
    run(shell, "x = 1")
    assert len(published) == before + 1 and "COMPLETED" in published[-1]["data"]["text/plain"]
    assert "[fal]" not in capsys.readouterr().out


def test_interrupting_a_flag_wait_cancels_the_job(shell):
    from fal_notebook.notebook.extension import Presenter

    class Stuck:
        id, done, cancelled = "feedbeef", False, False

        def wait(self, timeout=None):
            raise KeyboardInterrupt

        def cancel(self):
            self.cancelled = True

    stuck = Stuck()
    with pytest.raises(KeyboardInterrupt) as info:
        Presenter(shell).wait_for([stuck])
    assert stuck.cancelled
    assert info.value._render_traceback_() == ["interrupted: job feedbe… cancelled on fal"]


def test_a_kernel_interrupt_during_wait_cancels_on_fal_and_shows_one_line(shell, emulator, capsys, monkeypatch):
    """A real SIGINT while `--wait` blocks: fal gets the cancel PUT, the cell ends with one line, and the card
    shows the cancel in grey with no request id."""
    import signal
    import threading

    emulator.hold(True)
    main = threading.get_ident()
    original = jobs.submit

    def submit_then_interrupt(*args, **kwargs):
        job = original(*args, **kwargs)
        sent = threading.Event()

        def once() -> None:
            if job.request_id and not sent.is_set():
                sent.set()
                signal.pthread_kill(main, signal.SIGINT)

        job.on_change(once)
        return job

    monkeypatch.setattr(jobs, "submit", submit_then_interrupt)
    result = shell.run_cell("%fal nbp a fox --wait")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    err = capsys.readouterr()
    shown = (err.out + err.err).strip().splitlines()
    assert len(shown) == 1 and re.fullmatch(r"interrupted: job [0-9a-f]{6}… cancelled on fal", shown[0].strip())
    assert any(r.method == "PUT" and r.path.endswith("/cancel") for r in emulator.requests)
    (job,) = jobs.jobs(all=True)
    assert job.state.value == "CANCELLED"
    card = render.JobCard(job)._repr_mimebundle_()
    assert "cancelled on fal" in card["text/html"] and "#b91c1c" not in card["text/html"]
    assert job.request_id not in card["text/html"]


@pytest.fixture
def unregistered(monkeypatch):
    """No model registered from an OpenAPI document yet (the catalogue's registry is per process)."""
    from fal_notebook import catalog

    monkeypatch.setattr(catalog, "_registered", {})


def openapi_gets(emulator) -> list:
    """Schema fetches: fal's model list with expand=openapi-3.0 (first), or the per-model OpenAPI route."""
    return [r for r in emulator.requests if r.path.endswith("/openapi.json")
            or (r.path == "/v1/models" and "expand=openapi-3.0" in r.query)]


def test_unbundled_model_options_are_typed_from_its_fetched_schema(shell, emulator, unregistered):
    job = run(shell, "%fal fal-ai/fast-sdxl a lighthouse --num-inference-steps 12 --image-size landscape_4_3 "
                     "--enable-safety-checker false --wait").result
    assert job.state.value == "COMPLETED" and job.files
    (sent,) = [dict(a) for a in emulated_inputs(emulator)]
    assert sent.pop("seed") == job.seed  # the fetched schema has a seed: the client picked one
    assert sent == {"prompt": "a lighthouse", "num_inference_steps": 12, "image_size": "landscape_4_3",
                    "enable_safety_checker": False}
    assert len(openapi_gets(emulator)) == 1  # fetched once, then known
    info = run(shell, "%fal info fal-ai/fast-sdxl").result
    assert "--num-inference-steps" in info._repr_mimebundle_()["text/html"] and len(openapi_gets(emulator)) == 1


def test_unbundled_model_bad_option_names_the_fetched_limit_and_sends_nothing(shell, emulator, unregistered):
    from IPython.core.error import UsageError

    typed = shell.run_cell("%fal fal-ai/fast-sdxl a lighthouse --num-inference-steps lots")
    assert isinstance(typed.error_in_exec, UsageError)
    assert str(typed.error_in_exec) == "--num-inference-steps expects an integer, got 'lots'"
    ranged = shell.run_cell("%fal fal-ai/fast-sdxl a lighthouse --num-inference-steps 500")
    assert isinstance(ranged.error_in_exec, UsageError) and "num_inference_steps" in str(ranged.error_in_exec)
    assert "65" in str(ranged.error_in_exec) and "--no-validate" not in str(ranged.error_in_exec)
    assert not [r for r in emulator.requests if r.method == "POST"]


def test_unbundled_model_with_no_validate_is_sent_as_given_without_a_schema(shell, emulator, unregistered):
    job = run(shell, "%fal fal-ai/fast-sdxl a lighthouse --num-inference-steps 12 --format png --no-validate "
                     "--wait").result
    assert job.state.value == "COMPLETED" and job.files[0].suffix == ".png"
    assert emulated_inputs(emulator) == [{"prompt": "a lighthouse", "num_inference_steps": 12, "format": "png"}]
    assert openapi_gets(emulator) == []  # --no-validate never waits for a schema


def test_a_cell_run_again_reattaches_to_its_unfinished_job_and_new_submits_anyway(shell, emulator, published):
    def stored() -> int:
        return len(jobs.jobs(all=True))

    emulator.hold(True)
    first = run(shell, "%fal nbp a held fox").result
    again = run(shell, "%fal nbp a held fox").result
    assert again.id == first.id and stored() == 1  # nothing submitted, nothing paid twice
    assert any("still running: showing it instead of submitting again" in o["data"]["text/plain"]
               for o in published)
    assert run(shell, "%fal nbp a held fox --new").result.id != first.id and stored() == 2
    other = run(shell, "%fal nbp another fox").result  # another request is submitted
    assert other.id != first.id and stored() == 3
    # the frontend's cell id wins over the source: an edited line making the same request is the same cell
    shell.run_cell("x = %fal nbp a cat on a mat", cell_id="cell-7")
    edited = shell.run_cell("%fal   nbp a cat on a mat", cell_id="cell-7").result
    assert edited.id == shell.user_ns["x"].id and stored() == 4
    emulator.release()
    jobs.wait(timeout=30)
    assert run(shell, "%fal nbp another fox").result.id != other.id  # finished: submitted again by default
    jobs.wait(timeout=30)
    assert len(emulator.jobs) == stored() == 5


def test_reattach_finished_setting_reuses_completed_jobs(shell, emulator, monkeypatch):
    monkeypatch.setenv("FAL_NOTEBOOK_REATTACH", "finished")
    first = run(shell, "%fal nbp a quick fox --wait").result
    assert first.state.value == "COMPLETED"
    assert run(shell, "%fal nbp a quick fox --wait").result.id == first.id and len(jobs.jobs(all=True)) == 1
    monkeypatch.setenv("FAL_NOTEBOOK_REATTACH", "off")
    emulator.hold(True)
    held = run(shell, "%fal nbp a held fox").result
    assert run(shell, "%fal nbp a held fox").result.id != held.id
    emulator.release()


def test_info_shows_descriptions_in_full_limits_as_lines_and_the_price(shell):
    info = run(shell, "%fal info kling-o3-edit").result
    text = repr(info)
    flat = " ".join(text.split())
    assert "Maximum 4 total (elements + reference images) when using video." in flat  # not cut mid-word
    assert all(len(line) <= 100 for line in text.splitlines())  # wrapped
    assert "video_url (video): .mp4 or .mov, 3–10 s long, sides 720–2160 px, at most 200 MB" in flat
    assert "{" not in text.splitlines()[0]  # no raw JSON in the heading
    assert re.search(r"^price: \$[\d.]+ per \w+", text, re.MULTILINE), text  # from the emulator's price list
    html = info._repr_mimebundle_()["text/html"]
    assert "<li>video_url (video): .mp4 or .mov" in html


def test_errors_in_a_notebook_name_the_fal_subcommand_not_a_shell_command(shell):
    from IPython.core.error import UsageError

    result = shell.run_cell("%fal status 0123456789ab")
    assert isinstance(result.error_in_exec, UsageError)
    text = str(result.error_in_exec)
    assert "`%fal jobs --all` (or `%fal history TEXT`)" in text and "fal-notebook" not in text


def test_for_notebook_keeps_cli_only_commands():
    from fal_notebook.parsers.grammar import for_notebook

    assert for_notebook("run `fal-notebook poll` or `fal-notebook cancel ID`") == \
        "run `fal-notebook poll` or `%fal cancel ID`"
