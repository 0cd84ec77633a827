// DecodeStep (see decode_step.h): the static-shape decode step and its device-side bookkeeping.
#include "llmstudio/infer/decode_step.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "llmstudio/core/error.h"

namespace llmstudio::infer {

DecodeStep::DecodeStep(const model::CausalLM& lm, std::int64_t batch, std::int64_t capacity)
    : lm_(&lm),
      batch_(batch),
      capacity_(capacity),
      cache_(model::KVCache::allocate(lm.config(), batch, capacity, lm.device(), lm.dtype())),
      graphed_([this](const std::vector<at::Tensor>& inputs) { return run(inputs); }, lm.device()) {
  const auto longs = at::TensorOptions().dtype(at::kLong).device(lm.device());
  column_ = at::zeros({1}, longs);
  positions_ = at::zeros({batch, 1}, longs);
  key_mask_ = at::zeros({batch, capacity}, at::TensorOptions().dtype(at::kBool).device(lm.device()));
  key_index_ = at::arange(capacity, longs);
}

void DecodeStep::begin(const at::Tensor& prompt_mask) {
  LLMS_CHECK(prompt_mask.dim() == 2 && prompt_mask.size(0) == batch_, "DecodeStep::begin: prompt_mask must be [",
             batch_, ", prompt length], found ", prompt_mask.dim(), " dims with ",
             prompt_mask.dim() > 0 ? prompt_mask.size(0) : 0, " rows");
  const std::int64_t P = prompt_mask.size(1);
  LLMS_CHECK(P > 0 && P < capacity_, "DecodeStep::begin: prompt length ", P, " must be in [1, ", capacity_,
             ") (the cache's capacity leaves no room for a new token otherwise)");
  LLMS_CHECK(!cache_.is_static() && cache_.length == P, "DecodeStep::begin: the cache holds ", cache_.length,
             " prefilled positions", cache_.is_static() ? " and is already static" : "", ", expected ", P,
             "; run the prefill forward with cache() and advance it first");
  const at::Tensor mask = prompt_mask.to(lm_->device());
  key_mask_.zero_();
  key_mask_.narrow(1, 0, P).copy_(mask.to(at::kBool));
  positions_.copy_(mask.to(at::kLong).sum(1, /*keepdim=*/true));  // the next token's position: real tokens so far
  column_.fill_(P);
  cache_.write_index = column_;
  prompt_length_ = P;
}

std::vector<at::Tensor> DecodeStep::run(const std::vector<at::Tensor>& inputs) {
  const at::Tensor& tokens = inputs.at(0);
  const std::int64_t B = batch_, C = capacity_;
  // The new token is a real key for every row (finished rows carry padding tokens whose outputs are never used).
  key_mask_.index_fill_(1, column_, true);
  model::AttentionInputs& attn = cache_.static_attention;
  attn.full_mask = key_mask_.view({B, 1, 1, C});
  attn.window_mask = attn.full_mask;
  if (const auto& window = lm_->config().sliding_window) {
    // keys k with column - window < k <= column (the later columns are not in key_mask yet)
    attn.window_mask = attn.full_mask.logical_and(key_index_.gt(column_ - *window).view({1, 1, 1, C}));
  }
  // The same masks as [B, capacity] rows, for the decode attention kernel (model/attention.h).
  attn.key_mask = key_mask_;
  attn.window_key_mask = attn.window_mask.view({B, C});
  const at::Tensor hidden = lm_->hidden_states(tokens.view({B, 1}), {}, positions_, &cache_);
  return {lm_->logits(hidden).select(1, 0).to(at::kFloat)};
}

at::Tensor DecodeStep::step(const at::Tensor& tokens) {
  LLMS_CHECK(cache_.is_static(), "DecodeStep::step before begin(): prefill the prompts and call begin() first");
  LLMS_CHECK(tokens.dim() == 1 && tokens.size(0) == batch_ && tokens.scalar_type() == at::kLong,
             "DecodeStep::step: tokens must be [", batch_, "] int64, found ", tokens.dim(), " dims, ",
             c10::toString(tokens.scalar_type()));
  return graphed_(batch_, {tokens}).at(0);
}

void DecodeStep::advance() {
  column_.add_(1);
  positions_.add_(1);
}

void DecodeStep::restart() {
  cache_.write_index = at::Tensor();
  cache_.reset();
  prompt_length_ = 0;
}

namespace {

// What a captured step depends on besides its own buffers: the address of every weight and adapter tensor, the
// adapters' scalings (constants in the graph) and the training flag (dropout paths).
std::vector<std::uint64_t> model_identity(const model::CausalLM& lm) {
  std::vector<std::uint64_t> id;
  auto add = [&](const at::Tensor& t) { id.push_back(t.defined() ? reinterpret_cast<std::uintptr_t>(t.data_ptr()) : 0); };
  for (const auto& [name, t] : lm.named_parameters()) add(t);
  for (const auto& l : lm.layers())
    for (const model::Linear* lin : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
      for (const at::Tensor* t : {&lin->weight, &lin->bias, &lin->lora_a, &lin->lora_b, &lin->lora_magnitude}) add(*t);
      std::uint64_t bits = 0;
      std::memcpy(&bits, &lin->lora_scaling, sizeof bits);
      id.push_back(bits);
    }
  id.push_back(lm.training() ? 1 : 0);
  return id;
}

// A model's kept decode steps (what CausalLM::inference_state holds), most recently used last.
struct DecodeStepPool {
  std::mutex mutex;
  std::vector<std::uint64_t> identity;
  std::vector<std::shared_ptr<DecodeStep>> steps;
};

}  // namespace

std::shared_ptr<DecodeStep> acquire_decode_step(const model::CausalLM& lm, std::int64_t batch, std::int64_t tokens) {
  if (!platform::cuda_graphs_enabled(lm.device())) return std::make_shared<DecodeStep>(lm, batch, tokens);
  const std::int64_t capacity = (tokens + kDecodeCapacityStep - 1) / kDecodeCapacityStep * kDecodeCapacityStep;
  static std::mutex slot_mutex;  // the first use of a model's slot
  std::shared_ptr<DecodeStepPool> pool;
  {
    const std::lock_guard<std::mutex> lock(slot_mutex);
    std::shared_ptr<void>& slot = lm.inference_state();
    if (!slot) slot = std::make_shared<DecodeStepPool>();
    pool = std::static_pointer_cast<DecodeStepPool>(slot);
  }
  const std::lock_guard<std::mutex> lock(pool->mutex);
  std::vector<std::uint64_t> identity = model_identity(lm);
  if (identity != pool->identity) {  // other weights or adapters: every captured step is stale
    pool->steps.clear();
    pool->identity = std::move(identity);
  }
  auto& steps = pool->steps;
  auto it = std::find_if(steps.begin(), steps.end(), [&](const std::shared_ptr<DecodeStep>& s) {
    return s->batch() == batch && s->capacity() == capacity;
  });
  if (it != steps.end() && it->use_count() > 1)  // in use by another generation: not shared
    return std::make_shared<DecodeStep>(lm, batch, capacity);
  std::shared_ptr<DecodeStep> step;
  if (it != steps.end()) {
    step = *it;
    steps.erase(it);
    step->attach(lm);
    step->restart();
  } else {
    step = std::make_shared<DecodeStep>(lm, batch, capacity);
  }
  steps.push_back(step);
  while (steps.size() > kDecodeStepsKept) steps.erase(steps.begin());
  return step;
}

}  // namespace llmstudio::infer
