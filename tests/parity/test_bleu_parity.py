"""BLEU (src/llmstudio/train/bleu.h) against sacrebleu: corpus_bleu with its defaults (13a, exp smoothing, 4-grams,
case-sensitive, no effective order), BLEU(effective_order=True).sentence_score, and the 13a tokenizer, on random
corpora (unicode, punctuation, entities, odd whitespace, empty segments, several reference streams) and on real
English text from ../shared/fixtures (skipped when absent). Drives tests/tools/llms_bleu_tool, found via
LLMS_BLEU_TOOL or $LLMS_BUILD_DIR (default "build")/tests/tools/llms_bleu_tool."""
import json
import logging
import math
import os
import random
import re
import subprocess
from pathlib import Path

import pytest
from sacrebleu import corpus_bleu
from sacrebleu.metrics import BLEU
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from conftest import REPO, shared_path

logging.getLogger("sacrebleu").setLevel(logging.ERROR)  # "tokenized period" hints on random text

REL_TOL = 1e-9


def tool_path() -> Path:
    if os.environ.get("LLMS_BLEU_TOOL"):
        return Path(os.environ["LLMS_BLEU_TOOL"])
    build = Path(os.environ.get("LLMS_BUILD_DIR", REPO / "build"))
    return build / "tests" / "tools" / "llms_bleu_tool"


def run_tool(cases, tmp_path):
    tool = tool_path()
    if not tool.exists():
        pytest.fail(f"{tool} not built: cmake --build <build> --target llms_bleu_tool (or set LLMS_BLEU_TOOL)")
    f = tmp_path / "cases.json"
    f.write_text(json.dumps(cases))  # ensure_ascii: non-ASCII travels as \u escapes (surrogate pairs included)
    proc = subprocess.run([str(tool), str(f)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def rel_diff(ours, ref):
    if ours == ref:
        return 0.0
    return abs(ours - ref) / max(abs(ref), 1e-300)


def compare(cases, tmp_path):
    """Checks every case against sacrebleu; returns the largest relative score difference."""
    results = run_tool(cases, tmp_path)
    assert len(results) == len(cases)
    worst = 0.0
    tok = Tokenizer13a()
    sent_metric = BLEU(effective_order=True)
    nonzero = 0
    for case, got in zip(cases, results):
        hyps, refs = case["hyps"], case["refs"]
        ref = corpus_bleu(hyps, refs)
        c = got["corpus"]
        where = f"hyps={hyps[:3]!r}... refs={[r[:3] for r in refs]!r}..."
        assert (c["sys_len"], c["ref_len"]) == (ref.sys_len, ref.ref_len), where
        assert c["correct"] == list(ref.counts) and c["total"] == list(ref.totals), where
        assert c["bp"] == pytest.approx(ref.bp, rel=REL_TOL, abs=0), where
        d = rel_diff(c["score"], ref.score)
        assert d <= REL_TOL, f"corpus BLEU {c['score']!r} vs sacrebleu {ref.score!r}: {where}"
        worst = max(worst, d)
        nonzero += ref.score > 0
        for i, h in enumerate(hyps):
            assert got["tokens13a"][i] == tok(h), f"13a tokens differ for {h!r}"
            if i >= 200:  # sentence BLEU of the first 200 segments per corpus (sacrebleu is slow per call)
                continue
            s_ref = sent_metric.sentence_score(h, [r[i] for r in refs]).score
            d = rel_diff(got["sentence"][i], s_ref)
            assert d <= REL_TOL, f"sentence BLEU {got['sentence'][i]!r} vs sacrebleu {s_ref!r} for {h!r}"
            worst = max(worst, d)
    return worst, nonzero


WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "The", "CAT", "3.50", "3,000", "1-2", "don't", "U.S.A.",
         "e-mail", "naïve", "café", "Straße", "日本語", "中文", "😀", "👍🏽", "é", "ñ", "Ωμέγα", "привет", "مرحبا",
         "&quot;", "&amp;", "&lt;", "&gt;", "<skipped>", "x&y", "(", ")", "[", "]", "{", "}", "$", "%", "@", "#",
         "!", "?", ".", ",", ";", ":", "-", "--", "...", "'", '"', "/", "\\", "|", "~", "^", "_", "`", "+", "=",
         "*", "<", ">", "0", "42", "7.", ".5", ",9", "9,", "a.b", "a,b", "1.2.3", "end."]
SPACES = [" ", " ", " ", " ", "  ", "\t", "\n", "-\n", "\u00a0", "\u3000", "\u2009", "\x1c", "\x85", "\u2028", ""]


def random_text(rng, max_words):
    n = rng.randint(0, max_words)
    out = []
    for _ in range(n):
        if rng.random() < 0.08:  # an arbitrary code point (no surrogates)
            cp = rng.choice([rng.randint(0x21, 0x7E), rng.randint(0xA0, 0x2FFF), rng.randint(0x3000, 0xD7FF),
                             rng.randint(0xE000, 0xFFFD), rng.randint(0x10000, 0x10FFFF)])
            out.append(chr(cp))
        else:
            out.append(rng.choice(WORDS))
        out.append(rng.choice(SPACES))
    s = "".join(out)
    if rng.random() < 0.2:
        s = rng.choice(SPACES) + s + rng.choice(SPACES)
    return s


def mutate(rng, text):
    """A hypothesis near a reference: words dropped, repeated, swapped or replaced."""
    words = text.split(" ")
    out = []
    for w in words:
        r = rng.random()
        if r < 0.1:
            continue
        if r < 0.15:
            out += [w, w]
        elif r < 0.25:
            out.append(rng.choice(WORDS))
        else:
            out.append(w)
    if len(out) > 2 and rng.random() < 0.5:
        i = rng.randrange(len(out) - 1)
        out[i], out[i + 1] = out[i + 1], out[i]
    return " ".join(out)


def test_random_corpora(tmp_path):
    rng = random.Random(1234)
    cases = []
    for k in range(300):
        n = rng.choice([1, 1, 2, 3, 5, 10, 30])
        streams = rng.choice([1, 1, 1, 2, 3])
        refs = [[random_text(rng, 25) for _ in range(n)] for _ in range(streams)]
        hyps = []
        for i in range(n):
            r = rng.random()
            if r < 0.1:
                hyps.append("")
            elif r < 0.2:
                hyps.append(refs[0][i])
            elif r < 0.7:
                hyps.append(mutate(rng, refs[rng.randrange(streams)][i]))
            else:
                hyps.append(random_text(rng, 25))
        cases.append({"hyps": hyps, "refs": refs})
    worst, nonzero = compare(cases, tmp_path)
    print(f"{len(cases)} random corpora ({nonzero} with BLEU > 0): largest relative difference {worst:.3g}")
    assert nonzero > 100  # the comparison exercised real scores, not only zeros


def test_edge_cases(tmp_path):
    cases = [
        {"hyps": [""], "refs": [[""]]},
        {"hyps": ["", ""], "refs": [["a b c", "d e f g"]]},
        {"hyps": ["a b c d e"], "refs": [["a b c d e"]]},
        {"hyps": ["a b c d e"], "refs": [[""]]},
        {"hyps": ["a"], "refs": [["a"]]},  # 1-gram only: no 2-gram totals
        {"hyps": ["a b c"], "refs": [["a b c d e f"]]},  # short: brevity penalty
        {"hyps": ["a b c d e f g h"], "refs": [["a b c"], ["a b c d e f g h i"]]},  # closest ref length, ties
        {"hyps": ["a b c d"], "refs": [["a b c"], ["a b c d e"]]},
        {"hyps": ["x y z w"], "refs": [["a b c d"]]},
        {"hyps": ["Hello, World!", "hello, world!"], "refs": [["hello, world!", "Hello, World!"]]},  # case matters
        {"hyps": ["  padded  \n", "\ttab\tseparated\t"], "refs": [["padded", "tab separated"]]},
        {"hyps": ["line-\nbreak and more-\nwords"], "refs": [["linebreak and morewords"]]},
        {"hyps": ["&amp;quot; &lt;b&gt; <skipped> x"], "refs": [["&quot; <b> x"]]},
        {"hyps": ["3.14, 2,5 1-2-3 a-b. c.,d"], "refs": [["3.14 , 2,5 1 - 2 - 3 a-b . c . , d"]]},
        {"hyps": ["😀 👍🏽 日本語です。 Ωμέγα."], "refs": [["😀 👍🏽 日本語です。 Ωμέγα ."]]},
        {"hyps": ["a\u3000b\u00a0c\x1cd\u2028e"], "refs": [["a b c d e"]]},
        {"hyps": ["the the the the the the the"], "refs": [["the cat is on the mat"]]},  # clipped counts
        {"hyps": ["one.", "two three four five six.", "seven"], "refs": [["one .", "two three four five six", "eight"]]},
    ]
    worst, _ = compare(cases, tmp_path)
    print(f"{len(cases)} edge cases: largest relative difference {worst:.3g}")


def test_real_text(tmp_path):
    path = shared_path("text", "moby-dick.txt")
    text = path.read_text(encoding="utf-8")
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 3 <= len(s.split()) <= 80]
    rng = random.Random(7)
    cases = []
    for size in [1, 10, 100, 1000, 2000]:
        for _ in range(2 if size < 1000 else 1):
            start = rng.randrange(len(sentences) - size)
            refs = sentences[start:start + size]
            hyps = [mutate(rng, r) if size == 1 or rng.random() < 0.9 else "" for r in refs]
            refs2 = [mutate(rng, r) for r in refs]
            cases.append({"hyps": hyps, "refs": [refs]})
            cases.append({"hyps": hyps, "refs": [refs, refs2]})
    # The whole book's lines against shifted lines: many short, low-overlap segments.
    lines = text.splitlines()[:6000]
    cases.append({"hyps": lines[1:], "refs": [lines[:-1]]})
    worst, nonzero = compare(cases, tmp_path)
    print(f"{len(cases)} corpora from {path.name} (up to {len(lines)} segments): largest relative difference {worst:.3g}")
    assert nonzero >= len(cases) - 1


def test_mismatched_reference_stream_is_an_error(tmp_path):
    tool = tool_path()
    if not tool.exists():
        pytest.fail(f"{tool} not built")
    f = tmp_path / "bad.json"
    f.write_text(json.dumps([{"hyps": ["a", "b"], "refs": [["a"]]}]))
    proc = subprocess.run([str(tool), str(f)], capture_output=True, text=True)
    assert proc.returncode != 0 and "reference stream 1 has 1 segments but there are 2 hypotheses" in proc.stderr
