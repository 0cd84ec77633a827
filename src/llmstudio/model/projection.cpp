// Fused projections (see projection.h).
#include "llmstudio/model/projection.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include "llmstudio/core/error.h"
#include "llmstudio/kernels/backend.h"

namespace llmstudio::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Where a group's adapters sit: adapter k (of the members that have one, in group order) writes output rows
// [row[k], row[k] + out[k]) and owns columns [col[k], col[k] + rank[k]) of the stacked rank R.
struct AdapterLayout {
  std::vector<std::int64_t> row, out, col, rank;
  std::vector<double> scaling;
  std::int64_t outputs = 0, total_rank = 0;
};

// B [outputs, R] in `dtype`: block k = scaling[k] * B_k, zeros elsewhere.
at::Tensor block_diagonal_b(at::TensorList bs, const AdapterLayout& lay, at::ScalarType dtype) {
  if (bs.size() == 1 && lay.out[0] == lay.outputs) return (bs[0].to(dtype) * lay.scaling[0]);
  at::Tensor b = at::zeros({lay.outputs, lay.total_rank}, bs[0].options().dtype(dtype));
  for (std::size_t k = 0; k < bs.size(); ++k) {
    at::Tensor block = b.narrow(0, lay.row[k], lay.out[k]).narrow(1, lay.col[k], lay.rank[k]);
    block.copy_(bs[k]);
    block.mul_(lay.scaling[k]);
  }
  return b;
}

// y = x W^T + (x A^T) B^T on 2-d operands; A = the members' A stacked [R, in], B = block_diagonal_b [O, R], both
// built here in x's dtype from the float32 adapters (gradients return to those directly: no autograd nodes for the
// stacking, scaling and casts).
// Backward (g = dL/dy, h = x A^T):
//   dB = g^T h (blocks, times scaling),  dh = g B,  dA = dh^T x (rows),  dx = dh A + g W (the second GEMM adds
//   into the first's output),  dW = g^T x only when W is trained.
struct FusedLinearFunction : torch::autograd::Function<FusedLinearFunction> {
  // output_needed false: y is left uninitialised (a checkpointed block's recomputation, which only needs the graph).
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, at::TensorList as,
                            at::TensorList bs, const AdapterLayout& lay, bool output_needed) {
    const at::ScalarType dtype = x.scalar_type();
    const at::Tensor a = (as.size() == 1 ? as[0] : at::cat(as, 0)).to(dtype);
    const at::Tensor b = block_diagonal_b(bs, lay, dtype);
    const at::Tensor h = at::mm(x, a.t());
    ctx->save_for_backward({x, w, a, b, h});
    ctx->saved_data["row"] = lay.row;
    ctx->saved_data["out"] = lay.out;
    ctx->saved_data["col"] = lay.col;
    ctx->saved_data["rank"] = lay.rank;
    ctx->saved_data["scaling"] = lay.scaling;
    if (!output_needed) return at::empty({x.size(0), w.size(0)}, x.options());
    const std::int64_t in = x.size(1), O = w.size(0), R = a.size(0);
    if (O >= 4 * in) {
      // Wide outputs (the gate/up pair): one GEMM over [x | h] and [W | B] instead of a second pass that reads and
      // writes the whole output; copying x and W costs less than that pass when O >= 4 in.
      at::Tensor xh = at::empty({x.size(0), in + R}, x.options());
      xh.narrow(1, 0, in).copy_(x);
      xh.narrow(1, in, R).copy_(h);
      return at::mm(xh, at::cat({w, b}, 1).t());
    }
    at::Tensor y = at::mm(x, w.t());
    y.addmm_(h, b.t());
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &a = saved[2], &b = saved[3], &h = saved[4];
    const auto row = ctx->saved_data["row"].toIntVector(), out = ctx->saved_data["out"].toIntVector();
    const auto col = ctx->saved_data["col"].toIntVector(), rank = ctx->saved_data["rank"].toIntVector();
    const auto scaling = ctx->saved_data["scaling"].toDoubleVector();
    const std::size_t n = row.size();
    variable_list result(2 + 2 * n + 2);  // x, w, the A's, the B's, layout, output_needed
    const at::Tensor& g = grads[0];
    if (!g.defined()) return result;
    const at::Tensor dh = at::mm(g, b);
    bool need_b = false, need_a = false;
    for (std::size_t k = 0; k < n; ++k) {
      need_a = need_a || ctx->needs_input_grad(2 + k);
      need_b = need_b || ctx->needs_input_grad(2 + n + k);
    }
    if (need_b) {
      const at::Tensor db = at::mm(g.t(), h);
      for (std::size_t k = 0; k < n; ++k)
        result[2 + n + k] = db.narrow(0, row[k], out[k]).narrow(1, col[k], rank[k]) * scaling[k];
    }
    if (need_a) {
      const at::Tensor da = at::mm(dh.t(), x);
      for (std::size_t k = 0; k < n; ++k) result[2 + k] = da.narrow(0, col[k], rank[k]);
    }
    if (ctx->needs_input_grad(0)) result[0] = at::mm(dh, a).addmm_(g, w);
    if (ctx->needs_input_grad(1)) result[1] = at::mm(g.t(), x);
    return result;
  }
};

at::ScalarType compute_dtype(const at::Tensor& x) {
  const at::DeviceType type = x.device().type();
  return at::autocast::is_autocast_enabled(type) ? at::autocast::get_autocast_dtype(type) : x.scalar_type();
}

}  // namespace

bool fused_projection_applies(const ProjectionGroup& group, const at::Tensor& x, bool training) {
  if (group.empty() || !x.is_cuda() || !at::autocast::is_autocast_enabled(at::kCUDA) || kernels::reference_only())
    return false;
  const std::int64_t in = group[0]->weight.size(1);
  for (const Linear* l : group) {
    if (!l->weight.defined() || l->bias.defined() || l->lora_magnitude.defined() || l->weight.size(1) != in) return false;
    if (l->lora_a.defined() && training && l->lora_dropout > 0) return false;  // a dropout mask per projection
  }
  return x.size(-1) == in;
}

namespace {

// The group's weights as one view when they are adjacent rows of one buffer (and, with `frozen`, none needs a
// gradient: a view would hide them from autograd); undefined otherwise.
at::Tensor adjacent_weights(const ProjectionGroup& group, bool frozen) {
  const at::Tensor& first = group[0]->weight;
  if (group.size() == 1) return first;
  bool adjacent = first.is_contiguous() && !(frozen && first.requires_grad());
  std::int64_t rows = first.size(0);
  for (std::size_t i = 1; adjacent && i < group.size(); ++i) {
    const at::Tensor &w = group[i]->weight, &prev = group[i - 1]->weight;
    adjacent = w.is_contiguous() && !(frozen && w.requires_grad()) && w.scalar_type() == first.scalar_type() &&
               w.size(1) == first.size(1) && w.storage().is_alias_of(first.storage()) &&
               static_cast<const char*>(w.data_ptr()) == static_cast<const char*>(prev.data_ptr()) + prev.nbytes();
    rows += w.size(0);
  }
  return adjacent ? first.as_strided({rows, first.size(1)}, {first.size(1), 1}, first.storage_offset()) : at::Tensor();
}

}  // namespace

at::Tensor inference_stacked_weight(const ProjectionGroup& group, bool training) {
  if (group.empty() || training || at::GradMode::is_enabled()) return {};
  for (const Linear* l : group)
    if (!l->weight.defined() || l->bias.defined() || l->lora_a.defined() || l->lora_magnitude.defined()) return {};
  return adjacent_weights(group, /*frozen=*/false);
}

at::Tensor stacked_weight(const ProjectionGroup& group) {
  LLMS_CHECK(!group.empty(), "stacked_weight: empty projection group");
  if (at::Tensor w = adjacent_weights(group, /*frozen=*/true); w.defined()) return w;
  std::vector<at::Tensor> ws;
  for (const Linear* l : group) ws.push_back(l->weight);
  return at::cat(ws, 0);
}

void stack_weight_storage(const std::vector<Linear*>& group) {
  if (group.size() < 2) return;
  std::vector<at::Tensor> ws;
  for (const Linear* l : group) {
    const at::Tensor& w = l->weight;
    if (!w.defined() || w.dim() != 2 || w.size(1) != group[0]->weight.size(1) ||
        w.scalar_type() != group[0]->weight.scalar_type() || w.device() != group[0]->weight.device())
      return;
    ws.push_back(w);
  }
  at::Tensor buffer;
  {
    at::NoGradGuard no_grad;
    buffer = at::cat(ws, 0);
  }
  std::int64_t row = 0;
  for (Linear* l : group) {
    const bool trained = l->weight.requires_grad();
    const std::int64_t n = l->weight.size(0);
    l->weight = buffer.narrow(0, row, n);
    if (trained) l->weight.set_requires_grad(true);
    row += n;
  }
}

at::Tensor fused_projection(const ProjectionGroup& group, const at::Tensor& x, bool output_needed) {
  LLMS_CHECK(!group.empty(), "fused_projection: empty projection group");
  const std::int64_t in = group[0]->weight.size(1);
  LLMS_CHECK(x.size(-1) == in, "fused_projection: input has ", x.size(-1), " features, the weights take ", in);
  const at::ScalarType dtype = compute_dtype(x);
  at::Tensor w = stacked_weight(group).to(dtype);
  std::vector<at::Tensor> as, bs;
  AdapterLayout lay;
  for (const Linear* l : group) {
    if (l->lora_a.defined()) {
      as.push_back(l->lora_a);
      bs.push_back(l->lora_b);
      lay.row.push_back(lay.outputs);
      lay.out.push_back(l->weight.size(0));
      lay.col.push_back(lay.total_rank);
      lay.rank.push_back(l->lora_a.size(0));
      lay.scaling.push_back(l->lora_scaling);
      lay.total_rank += l->lora_a.size(0);
    }
    lay.outputs += l->weight.size(0);
  }
  const at::Tensor x2 = x.reshape({-1, in}).to(dtype);
  // Without adapters libtorch's own matmul backward is already one GEMM per gradient.
  at::Tensor y = as.empty() ? at::mm(x2, w.t())
                            : FusedLinearFunction::apply(x2, w, at::TensorList(as), at::TensorList(bs), lay, output_needed);
  std::vector<std::int64_t> shape = x.sizes().vec();
  shape.back() = w.size(0);
  return y.view(shape);
}

}  // namespace llmstudio::model
