"""Byte-for-byte parity of `llmstudio template` with transformers' chat-template rendering.

The reference is transformers itself: `apply_chat_template(tokenize=False)` of `AutoTokenizer` for tokenizer folders,
and `transformers.utils.chat_template_utils.render_jinja_template` (the function apply_chat_template calls, with its
jinja2 ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True), tojson override, raise_exception,
strftime_now and namespace globals) for template files and for hand-written templates that exercise each engine
feature. Messages are normalised with transformers' own `_normalize_chat_messages` first, as apply_chat_template does.

Cases: every $LLMS_SHARED_FIXTURES/chat-templates/*.jinja and every fixture tokenizer whose tokenizer_config.json has
a chat_template, times several conversations (with/without system message, single/multi-turn, unicode, newlines,
quotes, whitespace padding, tool calls with and without `tools`) times add_generation_prompt off/on. Where the
reference raises (e.g. raise_exception for bad role order) the binary must fail for the same case too, with the
template's message. All cases of one template go through one process (`--messages` batch + `--json`); the hand-written
templates all share one process, each batch case carrying its own template.

Env: LLMS_BIN (llmstudio binary), LLMS_SHARED_FIXTURES (default ../shared/fixtures; those cases skip without it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

transformers = pytest.importorskip("transformers")
jinja2 = pytest.importorskip("jinja2")
from transformers.utils import chat_template_utils as ctu  # noqa: E402

SYSTEM = "You are a helpful assistant.\nAnswer briefly."
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather — in °C",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": 'City name, e.g. "Zürich"'},
                    "days": {"type": "integer", "description": "Forecast days", "default": 1},
                },
                "required": ["city"],
            },
        },
    }
]
TOOL_CALL = {"id": "call12345", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich", "days": 2}}}

CONVERSATIONS: dict[str, list[dict]] = {
    "single_user": [{"role": "user", "content": "Hello!"}],
    "system_user": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 2+2?"}],
    "multi_turn": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Hi there."},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "multi_turn_no_system_ends_with_answer": [
        {"role": "user", "content": "One"},
        {"role": "assistant", "content": "Two"},
        {"role": "user", "content": "Three"},
        {"role": "assistant", "content": "Four"},
    ],
    "unicode_quotes_newlines": [
        {"role": "user", "content": "Héllo wörld — 你好 🌍\n\"double\" 'single' \\backslash\\ {{ not a tag }} {% raw %} <b>&amp;\ttab"},
        {"role": "assistant", "content": "  Leading and trailing spaces  \n\n"},
        {"role": "user", "content": "\u00a0nbsp\u2028line separator\u3000ideographic space "},
    ],
    "whitespace_padding": [
        {"role": "system", "content": "  padded system  \n"},
        {"role": "user", "content": "\n\nline1\n  line2\n"},
    ],
    "empty_system": [{"role": "system", "content": ""}, {"role": "user", "content": "hi"}],
    "no_think_system": [
        {"role": "system", "content": "Be terse. /no_think"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "\n\nok"},
        {"role": "user", "content": "bye"},
    ],
    "tool_round_trip": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Weather in Zürich?"},
        {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
        {"role": "tool", "tool_call_id": "call12345", "content": '{"temperature": 21.5, "unit": "°C"}'},
        {"role": "assistant", "content": "It is 21.5 °C."},
    ],
    "assistant_first": [{"role": "assistant", "content": "I speak first"}, {"role": "user", "content": "ok"}],
}

# (conversation, tools) pairs; each runs with add_generation_prompt off and on.
CASES = [(name, None) for name in CONVERSATIONS] + [("system_user", TOOLS), ("tool_round_trip", TOOLS)]

TEMPLATE_TOKENS = {  # special tokens each model's tokenizer passes (transformers' special_tokens_map)
    "HuggingFaceTB-SmolLM3-3B": {"eos_token": "<|im_end|>", "pad_token": "<|im_end|>"},
    "Qwen-Qwen2.5-7B-Instruct": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "meta-llama-Llama-3.2-3B-Instruct": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "mistralai-Mistral-Nemo-Instruct-2407": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
}

# Hand-written templates covering each engine feature; rendered with `messages` plus the given variables.
FEATURE_TEMPLATES: dict[str, tuple[str, dict]] = {
    "loops": (
        "{% for m in messages %}{{ loop.index }}/{{ loop.length }} {{ loop.index0 }} {{ loop.revindex }} "
        "{{ loop.revindex0 }} {{ loop.first }} {{ loop.last }} {{ m.role }}{% if not loop.last %}, {% endif %}"
        "{% else %}none{% endfor %}\n"
        "{% for k, v in d.items() %}[{{ k }}={{ v }}]{% endfor %}\n"
        "{% for x in nums if x is odd %}{{ x }}{{ loop.cycle('a', 'b') }}{% if x > 4 %}{% break %}{% endif %}{% endfor %}\n"
        "{% for x in [] %}never{% else %}empty-else{% endfor %}\n"
        "{% for x in 'héy' %}<{{ x }}>{% endfor %}{% for x in range(2, 9, 3) %}{{ x }}{% continue %}no{% endfor %}\n"
        "{% for row in [[1, 2], [3, 4]] %}{% for c in row %}{{ loop.depth }}{{ c }}{% endfor %};{% endfor %}\n"
        "{% for k in d %}{{ k }}{{ loop.previtem | default('^') }}{{ loop.nextitem | default('$') }} {% endfor %}",
        {"d": {"b": 1, "a": [1, "x"]}, "nums": [1, 2, 3, 4, 5, 6, 7, 9]},
    ),
    "namespace_scoping": (
        "{% set ns = namespace(count=0, seen=[]) %}{% set outer = 'o' %}"
        "{% for m in messages %}{% set ns.count = ns.count + 1 %}{% set ns.seen = ns.seen + [m.role] %}"
        "{% set outer = 'inner' %}{{ outer }}{% endfor %}|{{ outer }}|{{ ns.count }}|{{ ns.seen | join(',') }}\n"
        "{% if true %}{% set leaked = 'yes' %}{% endif %}{{ leaked }}|{{ ns }}\n"
        "{% set a, b = [1, 'two'] %}{{ a }}{{ b }}{% set t = (1,) %}{{ t }}{{ (1, 2) }}{{ () }}\n"
        "{% set block %}  captured {{ a }}  {% endset %}[{{ block }}]{% set up | upper %}x{{ b }}{% endset %}{{ up }}\n"
        "{% with w = 5 %}{{ w * 2 }}{% endwith %}{{ w is defined }}",
        {},
    ),
    "slices_subscripts": (
        "{{ s[1:] }}|{{ s[:-1] }}|{{ s[::-1] }}|{{ s[1:5:2] }}|{{ s[-2] }}|{{ s[100] is defined }}\n"
        "{{ l[1:] }}|{{ l[::-1] }}|{{ l[-1] }}|{{ l[:0] }}|{{ l[5:] }}|{{ messages[-1].content }}|{{ messages[1:] | length }}\n"
        "{{ d['key'] }}|{{ d.key }}|{{ d.get('missing', 'dflt') }}|{{ d.get('missing') }}|{{ d['items'] is defined }}|"
        "{{ d.nested.x.0 }}|{{ d['nested']['x'][1] }}|{{ l.0 }}",
        {"s": "héllo wörld", "l": [1, 2.5, "three", None, True], "d": {"key": "v", "nested": {"x": [10, 20]}}},
    ),
    "operators": (
        "{{ 1 + 2 * 3 - 4 / 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}|{{ 7.5 // 2 }}\n"
        "{{ 'a' ~ 1 ~ none ~ true }}|{{ 'ab' * 3 }}|{{ [1] + [2] }}|{{ 'x' + 'y' }}|{{ 10 / 4 }}|{{ 1e3 }}|{{ 0.1 + 0.2 }}|{{ 1_000 }}\n"
        "{{ 1 < 2 < 3 }}|{{ 3 > 2 > 5 }}|{{ 1 == 1.0 }}|{{ 'a' != 'b' }}|{{ 'ell' in 'hello' }}|{{ 3 not in [1, 2] }}|"
        "{{ 'k' in {'k': 1} }}|{{ [1, 2] < [1, 3] }}|{{ 'B' < 'a' }}\n"
        "{{ 0 or 'x' }}|{{ 1 and 'y' }}|{{ none or [] }}|{{ not 0 }}|{{ 'yes' if 1 > 0 else 'no' }}|{{ 'v' if false }}|"
        "{{ 'a' if false else 'b' if true else 'c' }}|{{ -(3) }}|{{ +2.5 }}|{{ (1 + 2) * 3 }}|{{ \"dq\" 'sq' }}\n"
        "{{ '%s-%05.1f|%d%%' % ('a', 3.14159, 42) }}|{{ '{} {:>5} {name}'.format('x', 'y', name='z') }}",
        {},
    ),
    "tests": (
        "{% for v in [none, true, 0, 1.5, 'str', [1], {'a': 1}, undefined_name] %}"
        "{{ v is defined }}{{ v is undefined }}{{ v is none }}{{ v is boolean }}{{ v is integer }}{{ v is float }}"
        "{{ v is number }}{{ v is string }}{{ v is mapping }}{{ v is iterable }}{{ v is sequence }};{% endfor %}\n"
        "{{ 4 is even }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}{{ 2 is eq 2 }}{{ 2 is equalto 3 }}{{ 'a' is in 'abc' }}"
        "{{ 1 is lt 2 }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ none is sameas none }}{{ x is not defined }}"
        "{{ 'upper' is filter }}{{ 'odd' is test }}{{ true is true }}{{ 1 is false }}\n"
        "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}|"
        "{{ messages | rejectattr('role', 'eq', 'user') | list | length }}|{{ [1, 2, 3, 4] | select('odd') | list }}|"
        "{{ [0, 1, '', 'x'] | reject | list }}|{{ messages | map(attribute='missing', default='?') | join }}",
        {},
    ),
    "filters": (
        "[{{ '  pad  ' | trim }}]{{ 'xxhixx' | trim('x') }}|{{ 'hello world' | capitalize }}|{{ 'hello-big world(x' | title }}|"
        "{{ 'MiXed' | upper }}{{ 'MiXed' | lower }}|{{ 'aaa' | replace('a', 'b', 2) }}|{{ [1, 'b'] | join('-') }}|"
        "{{ [3, 1, 2] | first }}{{ [3, 1, 2] | last }}{{ 'xyz' | first }}|{{ undefined_thing | default('dflt') }}"
        "{{ '' | default('empty', true) }}{{ none | default('kept') }}|{{ 42 | string }}{{ '7' | int + 1 }}{{ '3.9' | int }}"
        "{{ 'x' | int(5) }}{{ '2.5' | float }}{{ 3 | float }}|{{ 'abc' | list }}{{ {'a': 1} | list }}\n"
        "{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ 'é\"\\n' | tojson }}|{{ [1.0, 2.5e-7, none, true] | tojson }}|"
        "{{ d | tojson(sort_keys=true) }}|{{ d | tojson(separators=(',', ':')) }}\n"
        "{{ d | items | list }}|{{ d.keys() | list }}{{ d.values() | list }}|{{ [3, 1, 2] | sort }}{{ ['b', 'A', 'c'] | sort }}"
        "{{ [3, 1, 2] | sort(reverse=true) }}|{{ messages | sort(attribute='role') | map(attribute='role') | join }}|"
        "{{ [1, 2, 2, 1] | unique | list }}|{{ [1, 2, 3] | sum }}{{ [1, 5, 3] | max }}{{ [4, 2, 8] | min }}|"
        "{{ [1, 2, 3] | reverse | list }}{{ 'abc' | reverse }}|{{ -3 | abs }}{{ 2.567 | round(2) }}{{ 2.5 | round }}"
        "{{ 2.1 | round(0, 'ceil') }}|{{ '<a&b>' | e }}{{ '<x>' | safe }}|{{ 'a b  c' | wordcount }}|"
        "{{ 'line1\\nline2' | indent(2) }}|{{ 'line1\\nline2' | indent(2, true) }}|{{ 'hi' | center(6) }}|"
        "{{ 'hello world foo' | truncate(9, leeway=0) }}|{{ {'b': 1, 'a': 2} | dictsort }}|{{ [1, 2, 3] | batch(2) | list }}|"
        "{{ messages | length }}{{ 'héllo' | length }}{{ d | count }}|{{ '%s=%s' | format('k', 'v') }}|{{ d | attr('keys') is callable }}",
        {"d": {"name": "Zürich", "n": [1, 2.5, None, True], "nested": {"empty": {}, "list": []}}},
    ),
    "string_methods": (
        "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxaxx'.strip('x') }}|{{ s.split() }}|{{ 'a,b,,c'.split(',') }}|"
        "{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ s.startswith('  H') }}{{ s.endswith(('x', '  ')) }}|"
        "{{ s.upper() }}{{ s.lower() }}|{{ 'hello wORLD'.title() }}{{ 'hELLO'.capitalize() }}|{{ s.replace('l', 'L') }}|"
        "{{ s.find('l') }}{{ s.rfind('l') }}{{ s.count('l') }}|{{ '-'.join(['a', 'b']) }}|{{ 'l1\\nl2\\r\\nl3'.splitlines() }}|"
        "{{ '42'.isdigit() }}{{ 'ab'.isalpha() }}{{ ' '.isspace() }}|{{ '7'.zfill(3) }}|{{ 'pre_x'.removeprefix('pre_') }}|"
        "{{ 'a=b=c'.partition('=') }}|{{ '{0}-{1}'.format('x', 2) }}|{{ s.split('l') | length }}",
        {"s": "  Hello World  "},
    ),
    "macros_calls": (
        "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% if varargs %}{{ varargs }}{% endif %}{% endmacro %}"
        "{{ greet('Ann') }}|{{ greet('Bob', '?') }}|{{ greet(punct='.', name='Cy') }}|{{ greet('D', '', 1, 2) }}\n"
        "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}"
        "{% call wrap('b') %}inside {{ 1 + 1 }}{% endcall %}|"
        "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}"
        "{% call(x) each([1, 2]) %}({{ x }}){% endcall %}|{% filter upper %}shout {{ 'me' }}{% endfilter %}\n"
        "{% generation %}tracked {{ messages | length }}{% endgeneration %}",
        {},
    ),
    "whitespace_control": (
        "A\n  {% if true %}\n    B\n  {% endif %}\nC\n{%- if true %} D {% endif -%}\n  E  \n{#- comment -#}\n F\n"
        "  {#+ keep #}\n{%+ if true %}G{% endif %}\n{{- ' H ' -}}\n  I {{ 'J' }}  \n  {% raw %}{{ raw }} {% endraw %}\n"
        "\t{% for i in [1, 2] %}\n\t{{ i }}\n\t{% endfor %}\r\n  K{% if true +%}\nL{% endif %}\n",
        {},
    ),
    "undefined_and_unicode": (
        "[{{ missing }}][{{ (missing.attr is defined) if missing is defined else 'guarded' }}][{{ messages[0].nope }}]"
        "[{{ {'a': 1}.b }}][{{ (missing or 'fallback') }}][{{ missing | length }}][{{ missing | list }}]"
        "[{{ missing ~ 'cat' }}][{% for x in missing %}x{% endfor %}]\n"
        "{{ 'Ünïcödé ✓ 🎉' | upper }}|{{ 'ΑΒΓ абв' | lower }}|{{ '🎉x'[0] }}|{{ 'é' ~ '\\u00e9' ~ '\\x41' }}|"
        "{{ {'emoji': '🎉', 'ctl': '\\x01'} | tojson }}|{{ ['ü'] }}|{{ {'k': \"it's\"} }}",
        {},
    ),
}

# Templates the reference refuses at render time; the binary must refuse them too.
ERROR_TEMPLATES: dict[str, str] = {
    "raise_exception": "{{ raise_exception('Only user and assistant roles are supported!') }}",
    "undefined_attribute": "{{ missing.attr }}",
    "bad_unpack": "{% for a, b in [[1, 2, 3]] %}{% endfor %}",
    "type_error": "{{ 1 + 'a' }}",
    "non_namespace_set": "{% set d = {} %}{% set d.x = 1 %}",
    "mutating_method": "{% set l = [] %}{{ l.append(1) }}",
}


def first_difference(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def assert_same(label: str, expected: str, got: str) -> None:
    if expected != got:
        i = first_difference(expected, got)
        pytest.fail(
            f"{label}: output differs from transformers at index {i}\n"
            f"--- transformers ({len(expected)} chars):\n{expected!r}\n--- llmstudio ({len(got)} chars):\n{got!r}\n"
            f"--- around the difference: expected {expected[max(0, i - 20):i + 20]!r}, got {got[max(0, i - 20):i + 20]!r}"
        )


def reference(template: str, messages: list[dict], tools, add_generation_prompt: bool, kwargs: dict):
    """transformers' rendering (apply_chat_template's normalisation + render_jinja_template); exception -> None."""
    try:
        chat = ctu._normalize_chat_messages(messages) if hasattr(ctu, "_normalize_chat_messages") else messages
        rendered, _ = ctu.render_jinja_template(
            conversations=[chat], tools=tools, chat_template=template, add_generation_prompt=add_generation_prompt, **kwargs
        )
        return rendered[0], None
    except Exception as e:  # jinja2.TemplateError, TypeError, ...
        return None, f"{type(e).__name__}: {e}"


def run_batch(llms_bin, tmp_path: Path, args: list, cases: list[dict]) -> list[dict]:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases, ensure_ascii=False), encoding="utf-8")
    proc = run_cli(llms_bin, "template", *args, "--messages", path, "--json")
    results = json.loads(proc.stdout)
    assert len(results) == len(cases)
    return results


def compare_all(label: str, expected: list, results: list[dict], cases: list[dict]) -> int:
    failures = []
    for (want, err), got, case in zip(expected, results, cases):
        name = f"{label}/{case.get('name')}/agp={case.get('add_generation_prompt')}"
        if err is not None:
            if "error" not in got:
                failures.append(f"{name}: transformers raised {err} but llmstudio rendered {got.get('output')!r}")
            elif "raise_exception" in err or "TemplateError" in err:
                msg = err.split(": ", 1)[1]
                if msg not in got["error"]:
                    failures.append(f"{name}: expected the template's message {msg!r} in {got['error']!r}")
            continue
        if "error" in got:
            failures.append(f"{name}: llmstudio failed: {got['error']}\n--- transformers rendered:\n{want!r}")
            continue
        try:
            assert_same(name, want, got["output"])
        except pytest.fail.Exception as e:
            failures.append(str(e))
    if failures:
        pytest.fail(f"{len(failures)} of {len(cases)} cases differ:\n\n" + "\n\n".join(failures))
    return len(cases)


def conversation_cases() -> list[dict]:
    cases = []
    for name, tools in CASES:
        for agp in (False, True):
            case = {"name": name + ("+tools" if tools else ""), "messages": CONVERSATIONS[name], "add_generation_prompt": agp}
            if tools:
                case["tools"] = tools
            cases.append(case)
    return cases


def template_files(shared: Path) -> list[Path]:
    return sorted((shared / "chat-templates").glob("*.jinja"))


def test_fixture_chat_templates(llms_bin, shared_fixtures, tmp_path):
    files = template_files(shared_fixtures)
    assert files, "no *.jinja fixtures"
    for path in files:
        tmpl = path.read_text(encoding="utf-8")
        tokens = TEMPLATE_TOKENS.get(path.stem, {})
        cases = conversation_cases()
        for extra in ({"enable_thinking": False}, {"date_string": "01 Jan 2025"}):  # template-specific switches
            cases.append({"name": f"vars{sorted(extra)}", "messages": CONVERSATIONS["multi_turn"],
                          "add_generation_prompt": True, "vars": extra})
        expected = [reference(tmpl, c["messages"], c.get("tools"), c["add_generation_prompt"], {**tokens, **c.get("vars", {})})
                    for c in cases]
        vars_path = tmp_path / "tokens.json"
        vars_path.write_text(json.dumps(tokens), encoding="utf-8")
        results = run_batch(llms_bin, tmp_path, ["--template", path, "--vars", vars_path], cases)
        compare_all(path.stem, expected, results, cases)


def test_fixture_tokenizer_configs(llms_bin, shared_fixtures, tmp_path):
    from transformers import AutoTokenizer

    compared = 0
    for cfg_path in sorted((shared_fixtures / "tokenizers").glob("*/tokenizer_config.json")):
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        folder = cfg_path.parent
        if not cfg.get("chat_template"):
            proc = run_cli(llms_bin, "template", "--tokenizer", folder, "--messages", "-", check=False, input="[]")
            assert proc.returncode != 0 and "chat_template" in proc.stderr, proc.stderr
            continue
        tok = AutoTokenizer.from_pretrained(str(folder))
        cases = conversation_cases()
        expected = []
        for c in cases:
            try:
                out = tok.apply_chat_template(c["messages"], tools=c.get("tools"), tokenize=False,
                                              add_generation_prompt=c["add_generation_prompt"])
                expected.append((out, None))
            except Exception as e:
                expected.append((None, f"{type(e).__name__}: {e}"))
        results = run_batch(llms_bin, tmp_path, ["--tokenizer", folder], cases)
        compared += compare_all(folder.name, expected, results, cases)
    assert compared > 0, "no fixture tokenizer has a chat_template"


def test_single_conversation_plain_output(llms_bin, shared_fixtures, tmp_path):
    """Without --json the CLI prints exactly the rendered prompt (no added newline)."""
    path = template_files(shared_fixtures)[0]
    msgs = tmp_path / "m.json"
    msgs.write_text(json.dumps(CONVERSATIONS["system_user"]), encoding="utf-8")
    tokens = TEMPLATE_TOKENS.get(path.stem, {})
    vars_path = tmp_path / "tokens.json"
    vars_path.write_text(json.dumps(tokens), encoding="utf-8")
    proc = run_cli(llms_bin, "template", "--template", path, "--messages", msgs, "--vars", vars_path,
                   "--add-generation-prompt")
    want, err = reference(path.read_text(encoding="utf-8"), CONVERSATIONS["system_user"], None, True, tokens)
    assert err is None
    assert_same(path.stem, want, proc.stdout)


def feature_cases() -> list[dict]:
    cases = []
    for name, (tmpl, variables) in sorted(FEATURE_TEMPLATES.items()):
        for conv in ("multi_turn", "unicode_quotes_newlines"):
            for agp in (False, True):
                cases.append({"name": name, "template": tmpl, "messages": CONVERSATIONS[conv],
                              "add_generation_prompt": agp, "vars": variables})
    for name, tmpl in sorted(ERROR_TEMPLATES.items()):
        cases.append({"name": name, "template": tmpl, "messages": CONVERSATIONS["single_user"],
                      "add_generation_prompt": False, "vars": {}})
    return cases


@pytest.fixture(scope="module")
def feature_results(llms_bin, tmp_path_factory):
    """All hand-written templates go through one process (each batch case carries its own template)."""
    cases = feature_cases()
    results = run_batch(llms_bin, tmp_path_factory.mktemp("features"), [], cases)
    return {id(c): (c, r) for c, r in zip(cases, results)}, cases


def results_for(feature_results, name):
    by_id, cases = feature_results
    picked = [by_id[id(c)] for c in cases if c["name"] == name]
    return [c for c, _ in picked], [r for _, r in picked]


@pytest.mark.parametrize("name", sorted(FEATURE_TEMPLATES))
def test_feature_templates(feature_results, name):
    cases, results = results_for(feature_results, name)
    expected = [reference(c["template"], c["messages"], None, c["add_generation_prompt"], c["vars"]) for c in cases]
    for want, err in expected:
        assert err is None, f"reference failed on the hand-written template {name}: {err}"
    compare_all(name, expected, results, cases)


@pytest.mark.parametrize("name", sorted(ERROR_TEMPLATES))
def test_runtime_errors_match(feature_results, name):
    cases, results = results_for(feature_results, name)
    expected = [reference(c["template"], c["messages"], None, False, {}) for c in cases]
    assert expected[0][1] is not None, f"reference rendered {expected[0][0]!r}; the case should be an error"
    compare_all(name, expected, results, cases)
    assert "line 1, column" in results[0]["error"], results[0]["error"]


def test_syntax_error_reports_position(llms_bin, tmp_path):
    path = tmp_path / "bad.jinja"
    path.write_text("line one\n{% for m in messages %}\n  {{ m.content }\n{% endfor %}", encoding="utf-8")
    with pytest.raises(jinja2.TemplateSyntaxError):
        ctu._compile_jinja_template(path.read_text(encoding="utf-8"))
    msgs = tmp_path / "m.json"
    msgs.write_text(json.dumps(CONVERSATIONS["single_user"]), encoding="utf-8")
    proc = run_cli(llms_bin, "template", "--template", path, "--messages", msgs, check=False)
    assert proc.returncode != 0
    assert "template line 3, column" in proc.stderr, proc.stderr
