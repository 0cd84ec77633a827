// Gradient checkpointing (see grad_checkpoint.h).
#include "llmstudio/model/grad_checkpoint.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <ATen/core/ivalue.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <mutex>

#include "llmstudio/core/error.h"
#include "llmstudio/model/layer_schema.h"

namespace llmstudio::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Autocast settings of one device type (thread-local in libtorch: the backward pass may run on another thread).
struct AutocastState {
  at::DeviceType type = at::kCPU;
  bool enabled = false;
  at::ScalarType dtype = at::kFloat;
  static AutocastState capture(at::DeviceType t) {
    return {t, at::autocast::is_autocast_enabled(t), at::autocast::get_autocast_dtype(t)};
  }
  void apply() const {
    at::autocast::set_autocast_enabled(type, enabled);
    at::autocast::set_autocast_dtype(type, dtype);
  }
};

// What the backward pass needs besides the saved input: the block, its parameters, RNG and autocast state.
struct CheckpointState : torch::CustomClassHolder {
  BlockFn block;
  std::vector<at::Tensor> params;
  bool preserve_rng = false;
  at::Device device = at::kCPU;
  at::Tensor rng_state;                  // the device generator's state before the forward run
  std::vector<AutocastState> autocast;   // the forward's autocast settings (device type, and CPU)
};

thread_local bool t_recomputing = false;

// Sets t_recomputing for a scope.
struct RecomputeScope {
  bool was = t_recomputing;
  RecomputeScope() { t_recomputing = true; }
  ~RecomputeScope() { t_recomputing = was; }
};

at::Generator generator_for(const at::Device& device) { return at::globalContext().defaultGenerator(device); }

at::Tensor get_rng_state(const at::Device& device) {
  at::Generator gen = generator_for(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng_state(const at::Device& device, const at::Tensor& state) {
  at::Generator gen = generator_for(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  // Runs under no-grad (Function::apply turns grad mode off for forward): no activations are kept.
  static variable_list forward(AutogradContext* ctx, const at::Tensor& h, at::TensorList /*params*/,
                               const c10::intrusive_ptr<CheckpointState>& state) {
    state->device = h.device();
    if (state->preserve_rng) state->rng_state = get_rng_state(state->device);
    state->autocast = {AutocastState::capture(h.device().type())};
    if (h.device().type() != at::kCPU) state->autocast.push_back(AutocastState::capture(at::kCPU));
    ctx->save_for_backward({h});
    ctx->saved_data["state"] = at::IValue::make_capsule(state);
    // Autocast caches its casts of leaf weights for the rest of the autocast region; casts made here, under
    // no-grad, must not be reused by code that needs their gradients, so this run bypasses the cache.
    const bool cache = at::autocast::is_autocast_cache_enabled();
    at::autocast::set_autocast_cache_enabled(false);
    at::Tensor y;
    try {
      y = state->block(h);
    } catch (...) {
      at::autocast::set_autocast_cache_enabled(cache);
      throw;
    }
    at::autocast::set_autocast_cache_enabled(cache);
    return {y};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor h = ctx->get_saved_variables()[0];
    auto state = c10::static_intrusive_pointer_cast<CheckpointState>(ctx->saved_data["state"].toCapsule());
    const bool need_h = ctx->needs_input_grad(0);

    // Recompute with grad, under the forward's RNG and autocast state; put the current state back after.
    at::Tensor rng_now;
    if (state->preserve_rng) {
      rng_now = get_rng_state(state->device);
      set_rng_state(state->device, state->rng_state);
    }
    std::vector<AutocastState> autocast_now;
    for (const auto& a : state->autocast) autocast_now.push_back(AutocastState::capture(a.type));
    for (const auto& a : state->autocast) a.apply();
    const bool any_autocast = std::any_of(state->autocast.begin(), state->autocast.end(), [](auto& a) { return a.enabled; });
    if (any_autocast) at::autocast::increment_nesting();
    at::Tensor x = h.detach().requires_grad_(need_h);
    at::Tensor y;
    try {
      at::AutoGradMode grad_on(true);
      const RecomputeScope recompute;
      y = state->block(x);
    } catch (...) {
      if (any_autocast && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
      for (const auto& a : autocast_now) a.apply();
      if (state->preserve_rng) set_rng_state(state->device, rng_now);
      throw;
    }
    if (any_autocast && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    for (const auto& a : autocast_now) a.apply();
    if (state->preserve_rng) set_rng_state(state->device, rng_now);

    // Gradients of the block's input and of every parameter that wants one.
    std::vector<at::Tensor> inputs;
    std::vector<std::size_t> slot;  // position of each input in the returned list (0 = h, 1 + i = params[i])
    if (need_h) {
      inputs.push_back(x);
      slot.push_back(0);
    }
    for (std::size_t i = 0; i < state->params.size(); ++i)
      if (ctx->needs_input_grad(1 + i)) {
        inputs.push_back(state->params[i]);
        slot.push_back(1 + i);
      }
    variable_list out(2 + state->params.size());  // h, params..., state (never a gradient)
    if (inputs.empty() || !y.requires_grad()) return out;
    auto grads = torch::autograd::grad({y}, inputs, {grad_outputs[0]}, /*retain_graph=*/false,
                                       /*create_graph=*/false, /*allow_unused=*/true);
    for (std::size_t k = 0; k < grads.size(); ++k) out[slot[k]] = grads[k];
    return out;
  }
};

}  // namespace

bool recomputing_block() { return t_recomputing; }

at::Tensor checkpointed(const BlockFn& block, const at::Tensor& h, const std::vector<at::Tensor>& params,
                        bool preserve_rng) {
  LLMS_CHECK(at::GradMode::is_enabled(), "checkpointed(): called with grad mode off (call the block directly)");
  auto state = c10::make_intrusive<CheckpointState>();
  state->block = block;
  state->params = params;
  state->preserve_rng = preserve_rng;
  return CheckpointFunction::apply(h, at::TensorList(state->params), state)[0];
}

std::vector<at::Tensor> trainable_tensors(const LayerSchema& schema, const DecoderLayer& l) {
  std::vector<at::Tensor> out;
  auto add = [&](const at::Tensor& t) {
    if (t.defined() && t.requires_grad()) out.push_back(t);
  };
  for (const auto& t : schema.tensors) add(layer_tensor(l, t));
  for (const Linear* lin : layer_linears(schema, l)) {
    add(lin->lora_a);
    add(lin->lora_b);
    add(lin->lora_magnitude);
  }
  return out;
}

bool layer_uses_dropout(const LayerSchema& schema, const DecoderLayer& l) {
  for (const Linear* lin : layer_linears(schema, l))
    if (lin->lora_a.defined() && lin->lora_dropout > 0) return true;
  return false;
}

}  // namespace llmstudio::model
