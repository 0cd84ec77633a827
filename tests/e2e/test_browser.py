"""The web UI in a real browser: Python Playwright drives Debian's Chromium (/usr/bin/chromium, headless; no
browser download) against a real `llmstudio ui` started here with a temporary data directory and a tiny random
model (real BPE tokenizer) under --allow-path. The user story of issue 7: the platform on Home matches
`llmstudio env --json`; upload the example dataset and preview it; create an experiment from the generated form
and start it; watch the loss chart grow while it trains; chat with the result (streamed reply); export the
adapter and download the archive. Plus: a token-protected studio asks for the token and keeps it.
Screenshots go to $LLMS_ARTIFACTS_DIR or <build>/test-artifacts/browser (look at them to judge the layout)."""
import csv
import io
import json
import re
import os
import pathlib
import tarfile
import time

import pytest

from conftest import REPO, run_cli
from studio_proc import DATASET, Studio

CHROMIUM = pathlib.Path(os.environ.get("LLMS_CHROMIUM", "/usr/bin/chromium"))
playwright_sync = pytest.importorskip("playwright.sync_api", reason="pip playwright (scripts/requirements-dev.txt)")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found: apt-get install chromium (scripts/setup-dev.sh does)", allow_module_level=True)

VIEWPORT = {"width": 1366, "height": 900}  # a laptop


def artifacts_dir() -> pathlib.Path:
    d = os.environ.get("LLMS_ARTIFACTS_DIR")
    if d:
        out = pathlib.Path(d) / "browser"
    else:
        build = pathlib.Path(os.environ.get("LLMS_BUILD_DIR", REPO / "build"))
        out = build / "test-artifacts" / "browser"
    out.mkdir(parents=True, exist_ok=True)
    return out


def api(studio, path):
    """GET an API route as JSON (raising on an HTTP error)."""
    r = studio.get(path, timeout=30)
    r.raise_for_status()
    return r.json()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from tiny_tokenized_model import make_tokenized_model
    root = tmp_path_factory.mktemp("models")
    make_tokenized_model(root / "tiny-llama")
    return root


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture()
def page_errors():
    return []


def new_page(browser, errors, **context_args):
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True, **context_args)
    page = ctx.new_page()
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.set_default_timeout(30000)
    return page


def shot(page, name, full_page=True):
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def assert_fits_width(page, what):
    """Usable at laptop width: the page does not scroll sideways (wide tables scroll inside their box)."""
    sw, iw = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert sw <= iw, f"{what}: the page is {sw}px wide in a {iw}px window (horizontal scrolling)"


# ---- the user story, step by step (each step asserts what the user sees against the server's own data) ----

def check_home(page, studio, env):
    page.goto(studio.url + "/")
    backend = page.get_by_test_id("env-backend")
    backend.wait_for()
    sel = env["selected"]
    assert backend.inner_text().strip().lower() == sel["device"].split(":")[0].lower()
    assert page.get_by_test_id("env-device").inner_text().strip() == sel["device_name"]
    assert page.get_by_test_id("env-dtype").inner_text().strip() == sel["dtype"]
    assert page.get_by_test_id("env-memory").inner_text().strip() not in ("", "–")
    assert_fits_width(page, "home")
    shot(page, "01-home")


def upload_dataset(page, studio):
    with open(DATASET, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, n_rows = rows[0], len(rows) - 1
    page.goto(studio.url + "/#/datasets")
    page.locator("form.upload-form input[type=file]").set_input_files(str(DATASET))
    page.locator("form.upload-form input[name=name]").fill("capitals")
    page.locator("form.upload-form button[type=submit]").click()
    preview = page.get_by_test_id("dataset-preview")
    preview.wait_for()
    text = preview.inner_text()
    assert f"{n_rows} rows" in text, f"expected '{n_rows} rows' in the preview:\n{text[:500]}"
    first_table = preview.locator("table").first
    shown_columns = [c.strip() for c in first_table.locator("tbody tr td:first-child").all_inner_texts()]
    assert shown_columns == header, (shown_columns, header)
    # The rows table shows the file's first row.
    rows_table = preview.locator("table.rows")
    assert rows_table.locator("tbody tr").count() == min(50, n_rows)
    assert rows_table.locator("tbody tr").first.locator("td").all_inner_texts() == rows[1]
    assert page.get_by_test_id("dataset-link").filter(has_text="capitals").count() == 1
    assert_fits_width(page, "datasets")
    shot(page, "02-datasets")
    ds = [d for d in api(studio, "/api/datasets")["datasets"] if d["name"] == "capitals"]
    assert len(ds) == 1 and ds[0]["rows"] == n_rows, ds
    return ds[0]


def create_experiment(page, studio, model_path, settings):
    page.get_by_role("link", name="New experiment with it").click()
    page.locator("form.create-form").wait_for()
    page.locator("#exp-name").fill("browser-run")
    # The model picker lists the folder found under --allow-path (the server may print it resolved).
    options = page.locator("#exp-model option").evaluate_all("os => os.map(o => o.value)")
    wanted = [v for v in options if pathlib.Path(v).name == model_path.name]
    assert wanted, f"model {model_path} not offered by the picker: {options}"
    page.locator("#exp-model").select_option(wanted[0])
    # The prompt column defaults to [instruction, input]; choosing the dataset drops the column it lacks.
    assert page.locator('[name="dataset.prompt_column"]').input_value() == "instruction"
    for name, value in settings.items():
        section = page.locator(f'details.section[data-section="{name.split(".")[0]}"]')
        if section.get_attribute("open") is None:  # collapsed: open it like a user would
            section.locator(":scope > summary").click()
        page.locator(f'[name="{name}"]').fill(str(value))
    # Sections, defaults and help come from the schema.
    schema = api(studio, "/api/config/schema")
    sections = [s["name"] for s in schema["sections"]]
    assert page.locator("details.section").evaluate_all("ds => ds.map(d => d.dataset.section)") == sections
    top = ["experiment_name", "dataset.train_dataframe", "llm_backbone"]  # the name, dataset and model pickers
    full = lambda s, k: f"{s['name']}.{k['key']}" if s["name"] else k["key"]
    keys = [full(s, k) for s in schema["sections"] for k in s["keys"] if full(s, k) not in top]
    assert page.locator(".create-form details.section .field[data-key]").evaluate_all(
        "fs => fs.map(f => f.dataset.key)") == keys
    # Every key of the table is in the form, its help as the tooltip; ignored, refused and studio-set keys disabled.
    tips = dict(page.locator(".create-form .field[data-key]").evaluate_all(
        "fs => fs.map(f => [f.dataset.key, f.title])"))
    for s in schema["sections"]:
        for k in s["keys"]:
            assert tips.get(full(s, k), "").startswith(k["help"]), (full(s, k), tips.get(full(s, k)))
            if k["status"] != "implemented":
                assert k["reason"] in tips[full(s, k)], full(s, k)
    assert page.locator('[name="environment.use_deepspeed"]').is_disabled()
    assert not page.locator('[name="training.learning_rate"]').is_disabled()
    assert page.locator('[name="dataset.data_sample_choice"]').evaluate("e => e.tagName") == "INPUT"  # a list
    shot(page, "03-create-form")
    page.get_by_test_id("create-start").click()
    page.wait_for_url(re.compile(r"#/experiments/(?!new\b)[^/?]+$"))
    exp_id = page.url.split("#/experiments/")[1].split("/")[0]
    cfg = api(studio, f"/api/experiments/{exp_id}/config")["config"]
    for name, value in settings.items():
        section, key = name.split(".")
        assert float(cfg[section][key]) == float(value), (name, cfg[section][key], value)
    assert cfg["dataset"]["prompt_column"] in (["instruction"], "instruction"), cfg["dataset"]["prompt_column"]
    return exp_id


def watch_charts(page, studio, exp_id, timeout_s=300):
    """Samples the loss chart's point count while the run trains; it must grow live, before the run ends."""
    chart = page.locator('figure[data-chart="loss"]')
    chart.wait_for()
    samples, mid_shot = [], None
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        points = int(chart.get_attribute("data-points"))
        status = page.locator(".exp-head .badge").first.inner_text().strip()
        samples.append((points, status))
        if mid_shot is None and status == "running" and points >= 3:
            mid_shot = shot(page, "04-charts-running")
        if status in ("finished", "failed", "stopped", "interrupted"):
            break
        time.sleep(0.1)
    running = [p for p, s in samples if s == "running"]
    print(f"loss chart points while running: {sorted(set(running))[:10]}... final {samples[-1]}")
    assert samples[-1][1] == "finished", f"run ended as {samples[-1][1]}: {api(studio, f'/api/experiments/{exp_id}')}"
    assert len(set(p for p in running if p > 0)) >= 2, \
        f"the loss chart did not grow while the run was running (point counts seen: {sorted(set(running))})"
    # In the end the chart shows every train and validation loss the server recorded.
    metrics = api(studio, f"/api/experiments/{exp_id}/metrics")["metrics"]
    expected = sum(1 for m in metrics if m["type"] in ("train", "validation") and isinstance(m.get("loss"), (int, float)))
    page.wait_for_function(f"document.querySelector('figure[data-chart=loss]').dataset.points == '{expected}'")
    for name in ("lr", "tokens"):
        assert int(page.locator(f'figure[data-chart="{name}"]').get_attribute("data-points")) == \
            sum(1 for m in metrics if m["type"] == "train"), name
    assert_fits_width(page, "charts")
    shot(page, "05-charts-finished")
    return metrics


def chat(page, studio, exp_id):
    page.goto(f"{studio.url}/#/experiments/{exp_id}/chat")
    page.get_by_test_id("chat-max-tokens").fill("24")
    page.get_by_test_id("chat-max-tokens").dispatch_event("change")
    streamed = []
    page.on("response", lambda r: streamed.append(r.headers.get("content-type", ""))
            if r.url.endswith("/v1/chat/completions") else None)
    page.get_by_test_id("chat-input").fill("What is the capital of France?")
    page.get_by_test_id("chat-send").click()
    reply = page.locator('.chat-log .msg[data-role="assistant"]').last
    reply.wait_for()
    page.wait_for_function("!document.querySelector('.chat-log .msg.streaming')", timeout=120000)
    text = reply.locator(".msg-text").inner_text()
    note = reply.locator(".msg-note").all_inner_texts()
    assert not any(n.startswith("error") for n in note), note
    assert text.strip(), f"empty reply (notes: {note})"
    assert streamed and streamed[0].startswith("text/event-stream"), streamed
    assert page.locator('.chat-log .msg[data-role="user"]').last.inner_text().endswith("What is the capital of France?")
    shot(page, "06-chat")
    return text


def export(page, studio, exp_id):
    page.goto(f"{studio.url}/#/experiments/{exp_id}/export")
    page.locator('input[name=export-mode][value=adapter]').check()
    page.get_by_test_id("export").click()
    link = page.get_by_test_id("download")
    link.wait_for(timeout=120000)
    shot(page, "07-export")
    with page.expect_download() as dl:
        link.click()
    out = artifacts_dir() / "export.tar"
    dl.value.save_as(str(out))
    with tarfile.open(out) as tar:
        names = [pathlib.Path(n).name for n in tar.getnames()]
    assert "adapter_config.json" in names and "adapter_model.safetensors" in names, names
    return names


# ---- tests ----------------------------------------------------------------------------------------------

def test_user_story_upload_train_watch_chat_export(llms_bin, model_dir, browser, tmp_path, page_errors):
    env = json.loads(run_cli(llms_bin, "env", "--json", "--device", "cpu").stdout)
    studio = Studio(llms_bin, tmp_path / "data", allow=[model_dir])
    try:
        page = new_page(browser, page_errors)
        check_home(page, studio, env)
        upload_dataset(page, studio)
        settings = {"training.epochs": 1, "training.batch_size": 4, "training.learning_rate": 0.003,
                    "training.evaluation_epochs": 1, "tokenizer.max_length": 64}
        t0 = time.time()
        exp_id = create_experiment(page, studio, model_dir / "tiny-llama", settings)
        metrics = watch_charts(page, studio, exp_id)
        print(f"training took {time.time() - t0:.1f} s, {sum(m['type'] == 'train' for m in metrics)} steps")
        train = [m["loss"] for m in metrics if m["type"] == "train"]
        assert len(train) > 10
        # The experiments list shows the finished run.
        page.goto(studio.url + "/#/experiments")
        row = page.locator(f'tr[data-id="{exp_id}"]')
        row.wait_for()
        assert row.get_attribute("data-status") == "finished"
        shot(page, "08-experiments")
        reply = chat(page, studio, exp_id)
        print(f"chat reply: {reply[:80]!r}")
        names = export(page, studio, exp_id)
        print(f"exported archive: {names}")
        # Compare with itself: the chart shows its train loss, no differing settings.
        page.goto(f"{studio.url}/#/compare?ids={exp_id}")
        page.wait_for_function(
            f"document.querySelector('figure[data-chart=compare-train]')?.dataset.points == '{len(train)}'")
        shot(page, "09-compare")
        # Laptop-narrow window: nothing scrolls sideways.
        page.set_viewport_size({"width": 1024, "height": 768})
        page.goto(f"{studio.url}/#/experiments/{exp_id}/charts")
        page.locator('figure[data-chart="loss"]').wait_for()
        assert_fits_width(page, "charts at 1024px")
        shot(page, "10-charts-1024", full_page=False)
        assert not page_errors, "\n".join(page_errors)
    except BaseException:
        print(studio.output()[-4000:])
        raise
    finally:
        studio.stop()


def test_token_is_asked_for_and_kept(llms_bin, model_dir, browser, tmp_path, page_errors):
    studio = Studio(llms_bin, tmp_path / "data", allow=[model_dir], token="s3cret-token")
    try:
        page = new_page(browser, page_errors)
        page.goto(studio.url + "/#/datasets")
        dialog = page.locator("#token-dialog")
        dialog.wait_for(state="visible")
        shot(page, "11-token-dialog", full_page=False)
        dialog.locator("input[name=token]").fill("wrong")
        dialog.locator("button[type=submit]").click()
        # The wrong token is refused: a readable error, and the dialog comes back on the next request.
        page.locator(".error, .notice.error").first.wait_for()
        page.reload()
        dialog.wait_for(state="visible")
        dialog.locator("input[name=token]").fill("s3cret-token")
        dialog.locator("button[type=submit]").click()
        page.locator("form.upload-form").wait_for()
        page.get_by_text("No datasets yet").wait_for()
        assert page.evaluate("localStorage.getItem('llmstudio.token')") == "s3cret-token"
        page.reload()  # kept: no dialog this time
        page.get_by_text("No datasets yet").wait_for()
        assert not dialog.is_visible()
        # Only the 401s of the wrong token may appear as console errors.
        others = [e for e in page_errors if "401" not in e]
        assert not others, "\n".join(others)
    except BaseException:
        print(studio.output()[-4000:])
        raise
    finally:
        studio.stop()
