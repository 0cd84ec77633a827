"""Token-for-token parity of `llmstudio tokenize --jsonl` with the Python `tokenizers` library.

For every tokenizer under $LLMS_SHARED_FIXTURES/tokenizers (skipped when the fixtures are absent, failed with
LLMS_REQUIRE_FIXTURES=1) and for tokenizers trained here with `tokenizers` (always run), a corpus (Moby-Dick
paragraphs, or a built-in text when the fixtures are absent and not required, plus hand-written edge cases) is encoded with and without add_special_tokens; the ids
and the decodes (with and without skip_special_tokens) must be identical.

Invalid UTF-8: the Rust library only takes str, so the reference encodes bytes.decode("utf-8", "replace"); our
binary receives the raw bytes and must produce the same ids (documented behaviour: U+FFFD per maximal
ill-formed subsequence).

Env: LLMS_BIN (llmstudio binary; default build/bin/llmstudio), LLMS_SHARED_FIXTURES (default ../shared/fixtures).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

tokenizers = pytest.importorskip("tokenizers")
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

from conftest import optional_shared_path, shared_path  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FIXTURE_TOKENIZERS = ["llama3", "gpt2", "mistral-v0.1"]

FALLBACK_TEXT = """Call me Ishmael. Some years ago--never mind how long precisely--having little or no money in my
purse, and nothing particular to interest me on shore, I thought I would sail about a little and see the watery
part of the world. It is a way I have of driving off the spleen and regulating the circulation. Whenever I find
myself growing grim about the mouth; whenever it is a damp, drizzly November in my soul; whenever I find myself
involuntarily pausing before coffin warehouses, and bringing up the rear of every funeral I meet; and especially
whenever my hypos get such an upper hand of me, that it requires a strong moral principle to prevent me from
deliberately stepping into the street, and methodically knocking people's hats off--then, I account it high time
to get to sea as soon as I can. This is my substitute for pistol and ball. With a philosophical flourish Cato
throws himself upon his sword; I quietly take to the ship. There is nothing surprising in this. If they but knew
it, almost all men in their degree, some time or other, cherish very nearly the same feelings towards the ocean
with me. 1851, 2024; 3.14159 ... "Quoted," he said: 'it's, we'll, they're, I'd, you've, I'M'.
"""

EDGE_CASES: list[str | bytes] = [
    "",
    " ",
    "   ",
    "\t",
    "\n",
    "\n\n\n",
    "\r\n",
    " \t \n  \r\n\t\t x",
    "hello",
    " hello",
    "hello ",
    "  hello   world  ",
    "a\tb\nc\r\nd",
    "Hello, World! How's it going? I'm fine; you'd've thought so.",
    "HELLO'S THEY'RE I'M WE'LL",
    "1234567890123456789012345678901234567890",
    "3.14159 2,000,000 1e-10 0x1F 007",
    "١٢٣ ४५६ ௭௮௯ ½ ² Ⅻ",
    "日本語のテキストです。中文文本。한국어 텍스트.",
    "Emoji: 🙂🙃 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇫🇷",
    "Combining: e\u0301 a\u0308 n\u0303 \u0041\u030A Å Å ﬁ ﬀ ｈｅｌｌｏ",
    "Zalgo: Z\u0351\u036b\u0343a\u0352\u036c\u0308l\u0344g\u036e\u0312o",
    "Arabic: مرحبا بالعالم. Hebrew: שלום עולם. Thai: สวัสดีครับ",
    "Mixed   spaces\u00a0nbsp\u2003emsp\u3000ideographic\u200bzwsp\u2028ls\u2029ps\u0085nel",
    "<s>",
    "</s>",
    "<unk>",
    "<s></s><s>",
    "<|begin_of_text|>hi</s>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>",
    "<|endoftext|>The end.<|endoftext|>",
    "text <|endoftext|> more text",
    "  <mask>  the mask  <mask>x",
    "hello world, hello worlds, say hello world!",
    "<0x41> <0xFF> ▁ ▁▁x ▁hello",
    "ĠĠ Ġ Ċ",
    "def f(x):\n    return x**2  # comment\n\n\tprint('done')\n",
    "{\"json\": [1, 2, 3], \"k\": null}",
    "Ω≈ç√∫˜µ≤≥÷ åß∂ƒ©˙∆˚¬…æ œ∑´®†¥¨ˆøπ“‘",
    "ΑΣ ΟΔΥΣΣΕΥΣ İstanbul ß ẞ",
    "x" * 300,
    "ab" * 200 + " " + "z" * 50,
    " ".join(["word"] * 50),
    b"\xff\xfe invalid start",
    b"abc\xe2\x82 truncated euro",
    b"\xc3\x28 bad continuation",
    b"surrogate \xed\xa0\x80 half",
    b"overlong \xc0\xaf and \xf0\x82\x82\xac",
    b"tail \xf0\x9f\x99",
    b"\x80\x80\x80",
]


def llms_bin() -> Path:
    p = Path(os.environ.get("LLMS_BIN", REPO / "build" / "bin" / "llmstudio"))
    if not p.exists():
        pytest.fail(f"llmstudio binary not found at {p}: build it (make build) or set LLMS_BIN")
    return p


def corpus_texts() -> list[str]:
    moby = optional_shared_path("text", "moby-dick.txt")
    text = moby.read_text(encoding="utf-8") if moby else FALLBACK_TEXT
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    lines = [l for l in text.splitlines()[:3000]]
    return paragraphs + lines


def as_bytes(t: str | bytes) -> bytes:
    return t if isinstance(t, bytes) else t.encode("utf-8")


def run_ours(tokenizer_path: Path, cases: list[bytes], add_special: bool, tmp_path: Path) -> list[dict]:
    inp = tmp_path / f"in-{add_special}.jsonl"
    inp.write_text("".join(json.dumps({"hex": c.hex()}) + "\n" for c in cases), encoding="utf-8")
    cmd = [str(llms_bin()), "tokenize", "--tokenizer", str(tokenizer_path), "--jsonl", str(inp)]
    if not add_special:
        cmd.append("--no-special")
    res = subprocess.run(cmd, capture_output=True, timeout=300)
    assert res.returncode == 0, f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr.decode(errors='replace')}"
    out = [json.loads(line) for line in res.stdout.decode("utf-8").split("\n") if line]
    assert len(out) == len(cases), f"expected {len(cases)} output lines, got {len(out)}"
    return out


def first_diff(a: list, b: list) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def check_parity(tokenizer_path: Path, cases: list[str | bytes], tmp_path: Path) -> int:
    ref = Tokenizer.from_file(str(tokenizer_path))
    raw = [as_bytes(c) for c in cases]
    failures: list[str] = []
    compared = 0
    for add_special in (True, False):
        ours = run_ours(tokenizer_path, raw, add_special, tmp_path)
        for case, got in zip(raw, ours):
            text = case.decode("utf-8", errors="replace")
            want = ref.encode(text, add_special_tokens=add_special).ids
            compared += 1
            if got["ids"] != want:
                i = first_diff(got["ids"], want)
                failures.append(
                    f"ids differ (add_special_tokens={add_special}) for {text[:200]!r}\n"
                    f"  first difference at position {i}: ours {got['ids'][i:i + 8]} vs tokenizers {want[i:i + 8]}\n"
                    f"  ours:       {got['ids'][:60]}\n  tokenizers: {want[:60]}"
                )
                continue
            for skip, key in ((False, "decoded"), (True, "decoded_skip_special")):
                want_text = ref.decode(want, skip_special_tokens=skip)
                if got[key] != want_text:
                    failures.append(
                        f"decode differs (skip_special_tokens={skip}) for ids {want[:40]} of {text[:120]!r}\n"
                        f"  ours:       {got[key][:200]!r}\n  tokenizers: {want_text[:200]!r}"
                    )
    assert not failures, f"{len(failures)} mismatches out of {compared} encodings:\n" + "\n".join(failures[:10])
    return compared


def all_cases() -> list[str | bytes]:
    return list(EDGE_CASES) + corpus_texts()


@pytest.mark.parametrize("name", FIXTURE_TOKENIZERS)
def test_fixture_tokenizer_parity(name: str, tmp_path: Path) -> None:
    path = shared_path("tokenizers", name, "tokenizer.json")
    n = check_parity(path, all_cases(), tmp_path)
    assert n > 1000


def training_text() -> list[str]:
    moby = optional_shared_path("text", "moby-dick.txt")
    text = moby.read_text(encoding="utf-8")[:300_000] if moby else FALLBACK_TEXT * 20
    return [p for p in text.split("\n\n") if p.strip()] + ["日本語 中文 한국어 e\u0301 ﬁ 🙂 12345"]


def train_byte_level(tmp_path: Path) -> Path:
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\r\n"), "\n")])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=True)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1500,
        special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(training_text(), trainer=trainer)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=True)])
    tok.add_tokens([AddedToken("hello world", single_word=True, normalized=True), AddedToken("ﬁsh", normalized=True)])
    eot = tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="$A <|endoftext|>", special_tokens=[("<|endoftext|>", eot)]),
        ]
    )
    path = tmp_path / "bytelevel" / "tokenizer.json"
    path.parent.mkdir()
    tok.save(str(path))
    return path


def train_sentencepiece_style(tmp_path: Path, byte_fallback: bool, prepend_scheme: str) -> Path:
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=byte_fallback))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Strip(left=False, right=True)])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=prepend_scheme)
    tok.decoder = decoders.Sequence(
        [decoders.Metaspace(replacement="▁", prepend_scheme=prepend_scheme), decoders.ByteFallback(), decoders.Fuse()]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=1200, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=80, show_progress=False
    )
    tok.train_from_iterator(training_text(), trainer=trainer)
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
    data = json.loads(tok.to_str())
    # SentencePiece-style byte fallback needs <0x00>..<0xFF> in the model vocab (not as added tokens).
    vocab = data["model"]["vocab"]
    next_id = max(vocab.values()) + 1
    for b in range(256):
        name = f"<0x{b:02X}>"
        if name not in vocab:
            vocab[name] = next_id
            next_id += 1
    name = f"sp-{'bf' if byte_fallback else 'unk'}-{prepend_scheme}"
    path = tmp_path / name / "tokenizer.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


SELF_TRAINED_CASES = [t for t in EDGE_CASES] + [
    "hello world",
    "say hello world",
    "hello worldly",
    "<mask>",
    "a <mask> b",
    "ﬁsh and fish",
    "  <mask>",
]


def self_trained_corpus() -> list[str | bytes]:
    return SELF_TRAINED_CASES + corpus_texts()[:1500]


def test_self_trained_byte_level_parity(tmp_path: Path) -> None:
    path = train_byte_level(tmp_path)
    assert check_parity(path, self_trained_corpus(), tmp_path) > 100


@pytest.mark.parametrize(
    "byte_fallback,prepend_scheme", [(True, "always"), (True, "first"), (False, "never"), (False, "always")]
)
def test_self_trained_sentencepiece_parity(byte_fallback: bool, prepend_scheme: str, tmp_path: Path) -> None:
    path = train_sentencepiece_style(tmp_path, byte_fallback, prepend_scheme)
    assert check_parity(path, self_trained_corpus(), tmp_path) > 100


def test_detokenize_cli_matches(tmp_path: Path) -> None:
    path = train_byte_level(tmp_path)
    ref = Tokenizer.from_file(str(path))
    ids = ref.encode("Hello there, <mask> world!").ids
    res = subprocess.run(
        [str(llms_bin()), "detokenize", "--tokenizer", str(path.parent), *map(str, ids)], capture_output=True, timeout=60
    )
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode() == ref.decode(ids, skip_special_tokens=False) + "\n"
    res = subprocess.run(
        [str(llms_bin()), "detokenize", "--skip-special", "--tokenizer", str(path), *map(str, ids)],
        capture_output=True,
        timeout=60,
    )
    assert res.stdout.decode() == ref.decode(ids, skip_special_tokens=True) + "\n"


def test_unsupported_model_is_a_clear_error(tmp_path: Path) -> None:
    tok = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    res = subprocess.run([str(llms_bin()), "tokenize", "--tokenizer", str(path), "a"], capture_output=True, timeout=60)
    assert res.returncode != 0
    err = res.stderr.decode()
    assert "WordLevel" in err and str(path) in err, err
