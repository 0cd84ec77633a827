"""`llmstudio chat` in a real terminal (tmux): a tiny random Llama with a byte-level BPE tokenizer trained in
the test and a chat template (tests/parity/tiny_chat_model.py). Messages are typed with send-keys; the streamed
replies must appear in the pane and equal transformers' greedy generate() on the same conversation (first turn,
second turn with the first in its history); after /reset the second message gets its no-history reply; /exit
ends the process with status 0. A pipe run checks --num-history 0 and /system."""
import shutil
import subprocess
import time
import uuid

import pytest

from tiny_chat_model import chat_reply, make_chat_model

NEW = 12


def _make_chat_model(d):
    return make_chat_model(d)


def _reply(model, hf_tok, messages):
    return chat_reply(model, hf_tok, messages, NEW)


class Pane:
    def __init__(self, session):
        self.session = session

    def send(self, text):
        subprocess.run(["tmux", "send-keys", "-t", self.session, "-l", text], check=True)
        subprocess.run(["tmux", "send-keys", "-t", self.session, "Enter"], check=True)

    def text(self):
        return subprocess.run(["tmux", "capture-pane", "-p", "-J", "-S", "-2000", "-t", self.session],
                              capture_output=True, text=True, check=True).stdout

    def wait_for(self, predicate, what, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            screen = self.text()
            if predicate(screen):
                return screen
            time.sleep(0.2)
        pytest.fail(f"timed out waiting for {what}; the pane shows:\n{self.text()}")


def test_chat_in_tmux(llms_bin, tmp_path):
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: run `make setup-dev` (scripts/setup-dev.sh installs it)")
    model_dir = tmp_path / "chat_model"
    model, hf_tok = _make_chat_model(model_dir)
    msg_a, msg_b = "hello there", "tell me a story"
    r1 = _reply(model, hf_tok, [{"role": "user", "content": msg_a}])
    r2 = _reply(model, hf_tok, [{"role": "user", "content": msg_a}, {"role": "assistant", "content": r1},
                                {"role": "user", "content": msg_b}])
    r2_alone = _reply(model, hf_tok, [{"role": "user", "content": msg_b}])
    assert r1.strip() and r2.strip() and r2 != r2_alone, "the history must matter for this check"

    session = "llms-chat-" + uuid.uuid4().hex[:8]
    cmd = (f"'{llms_bin}' chat -m '{model_dir}' --device cpu --dtype float32 --max-new-tokens {NEW}; "
           f"echo CHAT-EXITED rc=$?; sleep 120")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "220", "-y", "50", cmd], check=True)
    pane = Pane(session)
    try:
        pane.wait_for(lambda s: "> " in s, "the chat prompt")
        pane.send(msg_a)
        pane.wait_for(lambda s: r1.strip() in s, f"the first reply {r1!r}")
        pane.send(msg_b)  # answered with the first turn in the history
        pane.wait_for(lambda s: r2.strip() in s, f"the second reply (with history) {r2!r}")
        pane.send("/reset")
        pane.wait_for(lambda s: "(history cleared)" in s, "/reset's confirmation")
        pane.send(msg_b)  # no history now: the reply of msg_b alone
        pane.wait_for(lambda s: r2_alone.strip() in s.split("(history cleared)")[-1],
                      f"the reply after /reset {r2_alone!r}")
        pane.send("/exit")
        screen = pane.wait_for(lambda s: "CHAT-EXITED" in s, "the process to end after /exit", timeout=20)
        assert "CHAT-EXITED rc=0" in screen
        print(f"tmux chat: replies {r1.strip()!r}, {r2.strip()!r}, after /reset {r2_alone.strip()!r} match transformers")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_chat_through_a_pipe(llms_bin, tmp_path):
    model_dir = tmp_path / "chat_model"
    model, hf_tok = _make_chat_model(model_dir)
    r1 = _reply(model, hf_tok, [{"role": "user", "content": "hello there"}])
    proc = subprocess.run([str(llms_bin), "chat", "-m", model_dir, "--device", "cpu", "--dtype", "float32",
                           "--max-new-tokens", str(NEW), "--num-history", "0"],
                          input="hello there\nhello there\n/system be brief\n", capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # --num-history 0: the second identical message is answered without the first turn, so identically.
    assert lines[:3] == [r1, r1, "(system prompt set)"], lines
