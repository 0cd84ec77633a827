"""H2O LLM Studio's `augmentation.*` keys against Python re-implementations of H2O's code (CPU, seconds).

- skip_parent_probability / random_parent_probability: the conversation chains of each epoch equal those of
  H2O's CustomDataset.augment_data (text_causal_language_modeling_ds.py) run on H2O's ConversationChainHandler
  chains, with np.random replaced by numpy.random.RandomState(<our documented per-sample seed>); the built
  samples' text equals H2O's system/prompt/answer formatting of those chains (system from the first round).
- token_mask_probability: the masked positions and ids equal H2O's BaseNLPAug.forward (augmentations/nlp_aug.py)
  with torch.bernoulli on a torch.Generator seeded with our documented per-step seed; the model's loss on the
  masked batch equals transformers' loss on H2O's masked batch.
- neftune_noise_alpha: training-mode logits equal transformers' with H2O's neftune_post_forward_hook registered
  on the embeddings (same torch seed); evaluation logits are exactly those without NEFTune.
- e2e: a short `llmstudio train` with all four keys finishes, its training losses differ from a plain run, its
  step-0 validation loss does not, and a second identical run repeats its losses exactly (seeded).
"""
import json
import subprocess

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO, built_tool, run_cli
from tiny_models import make_model, position_ids_from_mask
from tiny_tokenized_model import make_tokenized_model

M64 = (1 << 64) - 1
TOKEN_MASK, PARENTS = 1, 2


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def aug_seed(seed, stream, a, b):
    """train/augmentation.cpp augmentation_seed."""
    h = splitmix64(seed)
    for v in (stream, a, b):
        h = splitmix64(h ^ v)
    return h & ((1 << 63) - 1)


def _tool():
    return built_tool("llms_augment_tool")


def _run(*args):
    proc = subprocess.run([str(_tool()), *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# ---- parents ---------------------------------------------------------------------------------------------------

ROWS = [
    dict(id="a1", parent_id=None, system="Sys-a", prompt="a1?", answer="a1!"),
    dict(id="a2", parent_id="a1", system="Sys-a2", prompt="a2?", answer="a2!"),
    dict(id="a3", parent_id="a2", system=None, prompt="a3?", answer="a3!"),
    dict(id="a4", parent_id="a3", system=None, prompt="a4?", answer="a4!"),
    dict(id="b1", parent_id=None, system=None, prompt="b1?", answer="b1!"),
    dict(id="b2", parent_id="b1", system="Sys-b2", prompt="b2?", answer="b2!"),
    dict(id="c1", parent_id=None, system="Sys-c", prompt="c1?", answer="c1!"),
    dict(id="d1", parent_id="zz", system=None, prompt="d1?", answer="d1!"),  # dangling parent: starts a chain
    dict(id="a5", parent_id="a4", system=None, prompt="a5?", answer="a5!"),
]


def h2o_chains(rows, limit_chained_samples):
    """ConversationChainHandler.get_conversation_chain_ids."""
    ids = [r["id"] for r in rows]
    parents = [r["parent_id"] if r["parent_id"] in set(ids) else None for r in rows]
    id2parent = {i: p for i, p in zip(ids, parents) if p is not None}
    ends = [i for i in ids if i not in set(id2parent.values())] if limit_chained_samples else ids
    index = {i: k for k, i in enumerate(ids)}

    def chain(end):
        out, p = [end], end
        while p in id2parent:
            p = id2parent[p]
            out = [p] + out
        return out

    return [[index[i] for i in chain(e)] for e in ends]


def h2o_augment_data(chain, num_rows, skip, random_parent, rs):
    """CustomDataset.augment_data with np.random -> rs (a chain of row indices instead of encodings)."""
    parent_encodings = chain[:-1]
    parent_encodings = [e for e in parent_encodings if rs.random() > skip]
    if rs.random() < random_parent:
        idx = rs.randint(num_rows)
        parent_encodings = [idx] + parent_encodings[1:]
    return parent_encodings + [chain[-1]]


def h2o_text(rows, chain):
    """parse_system (first round's system) + parse_prompt + parse_answer per round, eos '</s>', H2O markers."""
    system = rows[chain[0]]["system"] or ""
    text = f"<|system|>{system}</s>" if system else ""
    for r in chain:
        text += f"<|prompt|>{rows[r]['prompt']}</s><|answer|>{rows[r]['answer']}</s>"
    return text


@pytest.mark.parametrize("limit", [0, 1])
def test_parent_skip_and_random_parent_match_h2o(tmp_path, limit):
    skip, random_parent, seed, epochs = 0.4, 0.35, 1234, 4
    (tmp_path / "rows.json").write_text(json.dumps(ROWS))
    out = json.loads(_run("parents", tmp_path / "rows.json", skip, random_parent, seed, epochs, limit))
    # The RandomState re-implementation itself.
    rs_a, rs_b = np.random.RandomState(seed), np.random.RandomState(seed)
    assert out["numpy"]["random"] == [rs_a.random() for _ in range(5)]
    assert out["numpy"]["randint"] == [int(rs_b.randint(1000)) for _ in range(5)]
    assert out["seed_example"] == aug_seed(seed, PARENTS, 1, 2)

    base = h2o_chains(ROWS, limit)
    skipped = replaced = 0
    for epoch in range(epochs):
        expected = [h2o_augment_data(c, len(ROWS), skip, random_parent,
                                     np.random.RandomState(aug_seed(seed, PARENTS, epoch, i) & 0xFFFFFFFF))
                    for i, c in enumerate(base)]
        assert out["chains"][epoch] == expected, f"epoch {epoch}"
        assert out["texts"][epoch] == [h2o_text(ROWS, c) for c in expected], f"epoch {epoch}"
        for b, e in zip(base, expected):
            skipped += len(b) - len(e) > 0
            replaced += any(r not in b for r in e)
    print(f"limit_chained_samples={limit}: {len(base)} samples x {epochs} epochs, "
          f"{skipped} with a skipped parent, {replaced} with a random parent")
    assert skipped > 0 and replaced > 0  # the data exercise both branches
    assert out["chains"][0] != out["chains"][1]  # re-drawn per epoch


def test_parent_probabilities_zero_leave_chains_unchanged(tmp_path):
    (tmp_path / "rows.json").write_text(json.dumps(ROWS))
    out = json.loads(_run("parents", tmp_path / "rows.json", 0, 0, 5, 2, 0))
    assert out["chains"] == [h2o_chains(ROWS, False)] * 2


# ---- token masking -----------------------------------------------------------------------------------------------

def _batch(vocab, rows=3, length=14, seed=11):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (rows, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0
    mask[2, :9] = 0
    ids[mask == 0] = 0
    labels = ids.clone()
    labels[mask == 0] = -100
    labels[:, :6] = -100
    labels[torch.arange(rows), mask.argmax(1)] = -100
    return ids, mask, labels


def test_token_masking_matches_h2o(tmp_path):
    model_dir = tmp_path / "model"
    model = make_model("llama_gqa_llama3rope_tied", model_dir)
    ids, mask, labels = _batch(model.config.vocab_size)
    (tmp_path / "batch.json").write_text(json.dumps(
        {"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "labels": labels.tolist()}))
    p, max_length, seed, step, micro, mask_id = 0.3, 20, 7, 3, 1, 5
    _run("mask", model_dir, tmp_path / "batch.json", p, max_length, seed, step, micro, mask_id, tmp_path / "out.safetensors")
    ours = load_file(tmp_path / "out.safetensors")

    # H2O's BaseNLPAug.forward on the batch as H2O holds it (left-padded to max_length), then batch_padding's cut.
    g = torch.Generator().manual_seed(aug_seed(seed, TOKEN_MASK, step, micro))
    drawn = torch.bernoulli(torch.full((ids.shape[0], max_length), float(p)), generator=g).bool()
    m = drawn[:, -ids.shape[1]:]
    h2o_ids, h2o_mask, h2o_labels = ids.clone(), mask.clone(), labels.clone()
    h2o_ids[m] = mask_id
    h2o_mask[m] = 0
    h2o_labels[m] = -100
    print(f"masked {int((m & (mask == 1)).sum())} of {int(mask.sum())} real tokens")
    assert 0 < int((m & (mask == 1)).sum()) < int(mask.sum())
    assert torch.equal(ours["input_ids"], h2o_ids)
    assert torch.equal(ours["labels"], h2o_labels)
    assert torch.equal(ours["position_ids"], position_ids_from_mask(mask))  # positions of the unmasked batch
    T = ids.shape[1]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    allowed = causal[None, None] & h2o_mask.bool()[:, None, None, :]
    empty = ~allowed.any(-1, keepdim=True)
    allowed |= torch.eye(T, dtype=torch.bool)[None, None] & empty  # a query with no key keeps its own
    assert torch.equal(ours["attention_mask"].bool(), allowed)

    # The loss on the masked batch equals transformers' on H2O's masked batch. Queries left without keys are the
    # one difference (they keep their own key here); none of them precedes a target in this batch.
    real_empty = empty[:, 0, :, 0] & (mask == 1)
    assert not (real_empty[:, :-1] & (h2o_labels[:, 1:] != -100)).any()
    with torch.no_grad():
        logits = model(input_ids=h2o_ids, attention_mask=h2o_mask, position_ids=position_ids_from_mask(mask)).logits
    sel = h2o_labels[:, 1:] != -100
    ref = torch.nn.functional.cross_entropy(logits[:, :-1][sel].float(), h2o_labels[:, 1:][sel])
    diff = abs(ours["loss"].item() - ref.item())
    print(f"loss on the masked batch: ours {ours['loss'].item():.6f}, transformers {ref.item():.6f}, |diff| {diff:.2e}")
    assert diff < 1e-5


# ---- NEFTune -----------------------------------------------------------------------------------------------------

def test_neftune_matches_h2o_hook_in_training_only(tmp_path):
    model_dir = tmp_path / "model"
    model = make_model("qwen2_gqa_bias_tied", model_dir)
    ids, mask, _ = _batch(model.config.vocab_size)
    (tmp_path / "batch.json").write_text(json.dumps(
        {"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "labels": ids.tolist()}))
    alpha, seed = 5.0, 99
    _run("neftune", model_dir, tmp_path / "batch.json", alpha, seed, tmp_path / "out.safetensors")
    ours = load_file(tmp_path / "out.safetensors")

    def neftune_post_forward_hook(module, inputs, output):  # H2O's (utils/modeling_utils.py)
        if module.training:
            dims = torch.tensor(output.size(1) * output.size(2))
            mag_norm = module.neftune_noise_alpha / torch.sqrt(dims)
            output = output + torch.zeros_like(output).uniform_(-mag_norm, mag_norm)
        return output

    emb = model.get_input_embeddings()
    emb.neftune_noise_alpha = alpha
    handle = emb.register_forward_hook(neftune_post_forward_hook)
    pos = position_ids_from_mask(mask)
    real = mask.bool()
    with torch.no_grad():
        model.train()
        torch.manual_seed(seed)
        ref_train = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        model.eval()
        ref_eval = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    handle.remove()
    d_train = (ours["train"] - ref_train)[real].abs().max().item()
    d_eval = (ours["eval"] - ref_eval)[real].abs().max().item()
    effect = (ours["train"] - ours["plain"])[real].abs().max().item()
    print(f"NEFTune alpha {alpha}: train logits vs H2O hook max |diff| {d_train:.2e}; eval vs transformers eval "
          f"{d_eval:.2e}; noise changes logits by up to {effect:.3f}")
    assert d_train < 1e-4 and d_eval < 1e-4
    assert effect > 1e-2
    assert torch.equal(ours["eval"], ours["plain"])  # no noise outside training (validation, generation)


# ---- e2e ---------------------------------------------------------------------------------------------------------

BASE_SETS = ["training.epochs=1", "training.batch_size=4", "training.learning_rate=0.003", "training.lora_dropout=0.0",
             "training.evaluation_epochs=1", "training.evaluate_before_training=true", "tokenizer.max_length=64",
             "environment.seed=3"]
AUGMENT_SETS = ["augmentation.token_mask_probability=0.2", "augmentation.skip_parent_probability=0.5",
                "augmentation.random_parent_probability=0.5", "augmentation.neftune_noise_alpha=5"]


STEPS = 5


@pytest.fixture(scope="module")
def tokenized_model(tmp_path_factory):
    return make_tokenized_model(tmp_path_factory.mktemp("m") / "tiny")


def _train(llms_bin, model_dir, out, name, sets, check=True):
    args = ["train", "-c", REPO / "examples" / "cfg.yaml", "--device", "cpu", "--max-steps", STEPS]
    for s in [*BASE_SETS, *sets, f"llm_backbone={model_dir}", f"output_directory={out}", f"experiment_name={name}"]:
        args += ["--set", s]
    proc = run_cli(llms_bin, *args, cwd=REPO, check=check)
    if not check:
        return proc
    exp = out / name
    assert json.loads((exp / "status.json").read_text())["status"] == "finished"
    metrics = [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]
    train = [m["loss"] for m in metrics if m["type"] == "train"]
    val0 = [m["loss"] for m in metrics if m["type"] == "validation" and m["step"] == 0]
    return proc.stdout + proc.stderr, train, val0[0]


def test_training_with_all_four_keys(llms_bin, tokenized_model, tmp_path):
    model_dir = tokenized_model
    _, plain, plain_val0 = _train(llms_bin, model_dir, tmp_path, "plain", [])
    log, aug, aug_val0 = _train(llms_bin, model_dir, tmp_path, "aug", AUGMENT_SETS)
    _, again, again_val0 = _train(llms_bin, model_dir, tmp_path, "again", AUGMENT_SETS)
    print(f"train losses plain {[round(x, 4) for x in plain]}\n             augmented {[round(x, 4) for x in aug]}")
    print(f"step-0 validation loss plain {plain_val0:.6f}, augmented {aug_val0:.6f}")
    assert "augmentation: token masking p=0.2" in log and "NEFTune noise alpha=5" in log, log
    assert len(aug) == len(plain) == STEPS
    assert max(abs(a - b) for a, b in zip(aug, plain)) > 1e-3
    assert aug_val0 == plain_val0  # validation sees no augmentation
    assert again == aug and again_val0 == aug_val0  # seeded: the same run repeats exactly


def test_parent_augmentation_with_packing_is_refused(llms_bin, tokenized_model, tmp_path):
    proc = _train(llms_bin, tokenized_model, tmp_path, "packed", ["training.packing=true",
                                                             "augmentation.skip_parent_probability=0.2"], check=False)
    assert proc.returncode != 0 and "training.packing" in proc.stderr, proc.stderr
    assert not (tmp_path / "packed" / "status.json").exists()  # refused before the experiment folder exists
