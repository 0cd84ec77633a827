// run_training as a recipe (see trainer.h): FineTuneRecipe holds a run's state and runs its named stages —
// setup (config, platform, data, experiment folder, model, optimizer, resume), step, evaluate, checkpoint, finish.
#include "llmstudio/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>

#include "llmstudio/core/error.h"
#include "llmstudio/experiment/experiment_dir.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/confined_files.h"
#include "llmstudio/io/safetensors.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/lora.h"
#include "llmstudio/platform/platform.h"
#include "llmstudio/tokenizer/tokenizer.h"
#include "llmstudio/train/augmentation.h"
#include "llmstudio/train/batching.h"
#include "llmstudio/train/checkpoints.h"
#include "llmstudio/train/deferred_scalar.h"
#include "llmstudio/train/loss.h"
#include "llmstudio/train/lr_schedule.h"
#include "llmstudio/train/mixed_precision.h"
#include "llmstudio/train/optimizer.h"
#include "llmstudio/train/packing.h"
#include "llmstudio/train/trainable_params.h"
#include "llmstudio/train/training_data.h"
#include "llmstudio/train/validation.h"

namespace llmstudio::train {
namespace fs = std::filesystem;
using experiment::ExperimentDir;
using experiment::RunProgress;
using experiment::RunStatus;
using experiment::SaveCheckpoint;
using nlohmann::json;

namespace {

// Log lines go to the caller's stream and to logs.txt.
class RunLog {
 public:
  explicit RunLog(std::ostream& out) : out_(out) {}
  void open(const fs::path& file) { file_.open(file, std::ios::app); }
  void line(const std::string& s) {
    out_ << s << "\n" << std::flush;
    if (file_) file_ << s << "\n" << std::flush;
  }
  std::ostream& stream() { return out_; }

 private:
  std::ostream& out_;
  std::ofstream file_;
};

void append_metric(const ExperimentDir& dir, const json& j) {
  std::ofstream out(dir.metrics_file(), std::ios::app);
  out << j.dump() << "\n";
}

// A run started by the studio ($LLMSTUDIO_CONFINE_ROOTS set) reads only backbone files that lie under the
// studio's allowed folders once symlinks are resolved (checked at the start and again before the final copies,
// since the folder may change during a long run).
void check_backbone_confined(const fs::path& backbone) {
  const auto roots = io::confine_roots_from_env();
  if (!roots.empty()) io::check_confined_folder(backbone, roots, "llm_backbone");
}

void copy_tokenizer_files(const fs::path& from, const fs::path& to) {
  check_backbone_confined(from);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"})
    if (fs::exists(from / f)) io::write_file_atomic(to / f, io::read_file(from / f));
}

std::string fmt(double v, int prec = 4) {
  std::ostringstream os;
  os << std::setprecision(prec) << v;
  return os.str();
}

std::string duration(double s) {
  std::ostringstream os;
  const auto t = static_cast<long>(s);
  os << t / 3600 << ":" << std::setw(2) << std::setfill('0') << (t / 60) % 60 << ":" << std::setw(2) << t % 60;
  return os.str();
}

// Loads a new experiment's config (paths made absolute, so --resume works from anywhere) or a resumed one's.
experiment::ExperimentConfig load_run_config(const TrainOptions& opts) {
  if (!opts.resume_dir.empty()) {
    const ExperimentDir dir(opts.resume_dir);
    LLMS_CHECK(dir.has_config(), "cannot resume ", opts.resume_dir, ": no cfg.yaml (not an experiment folder)");
    LLMS_CHECK(dir.has_checkpoint(), "cannot resume ", opts.resume_dir,
               ": no checkpoint (the run stopped before its first checkpoint; start it again)");
    const auto progress = experiment::read_run_progress(dir.path());
    LLMS_CHECK(!progress || progress->status != RunStatus::Finished, "experiment ", opts.resume_dir,
               " already finished; nothing to resume");
    return experiment::load_experiment_config(dir.config_file(), opts.overrides);
  }
  LLMS_CHECK(!opts.config_path.empty(), "give a config (-c cfg.yaml) or --resume <experiment dir>");
  auto cfg = experiment::load_experiment_config(opts.config_path, opts.overrides);
  auto absolute = [](std::string& p) {
    if (!p.empty() && p != "None") p = fs::absolute(p).lexically_normal().string();
  };
  absolute(cfg.llm_backbone);
  absolute(cfg.dataset.train_dataframe);
  absolute(cfg.architecture.pretrained_weights);
  if (cfg.dataset.validation_strategy == experiment::ValidationStrategy::Custom) absolute(cfg.dataset.validation_dataframe);
  return cfg;
}

// The causal-LM fine-tuning recipe. Each stage is a member function; the run's state lives in the members.
class FineTuneRecipe {
 public:
  FineTuneRecipe(const TrainOptions& opts, std::ostream& out) : opts_(opts), log_(out), dir_(fs::path()) {}

  TrainResult run() {
    setup_config_and_platform();
    setup_data();
    open_experiment();
    try {
      setup_model();
      setup_optimizer();
      if (resuming()) restore_checkpoint();
      train();
      return interrupted_ ? interrupt() : finish();
    } catch (const std::exception& e) {
      // The status keeps the run's real progress: the steps done before the failure.
      experiment::write_run_progress(dir_.path(), {RunStatus::Failed, step_, plan_.total_steps, e.what()});
      throw;
    }
  }

 private:
  bool resuming() const { return !opts_.resume_dir.empty(); }
  bool lora() const { return cfg_.training.lora; }

  // ---- setup ---------------------------------------------------------------------------------------------------
  void setup_config_and_platform() {
    cfg_ = load_run_config(opts_);
    cfg_.validate();
    for (const auto& w : cfg_.warnings) log_.line("warning: " + w);
    facts_ = platform::probe_platform();
    const std::string dtype(experiment::to_string(cfg_.architecture.backbone_dtype));
    choice_ = platform::choose_device(facts_, platform::device_request_from(opts_.device), dtype);
    for (const auto& n : choice_.notes) log_.line("platform: " + n);
    // Full fine-tuning keeps float32 weights (the master copy); LoRA trains float32 adapters on a frozen base.
    model_dtype_ = lora() ? choice_.dtype : "float32";
    const auto ci = static_cast<std::size_t>(choice_.index);
    const bool device_bf16 = choice_.kind != platform::DeviceKind::CUDA ||
                             (ci < facts_.cuda_devices.size() && facts_.cuda_devices[ci].cc_major >= 8);
    mp_ = plan_mixed_precision(cfg_.environment.mixed_precision, cfg_.environment.mixed_precision_dtype, choice_.device,
                               cfg_.architecture.backbone_dtype, device_bf16);
  }

  // Data, the step plan and the validation metric: all checked before anything is written.
  void setup_data() {
    backbone_ = cfg_.llm_backbone;
    LLMS_CHECK(fs::is_directory(backbone_), "llm_backbone '", cfg_.llm_backbone,
               "' is not a folder; expected a local Hugging Face model folder (config.json, *.safetensors, tokenizer.json)");
    check_backbone_confined(backbone_);
    tok_.emplace(tokenizer::Tokenizer::from_path(backbone_));
    data_ = prepare_training_data(cfg_, *tok_);
    for (const auto& w : data_.warnings) log_.line("warning: " + w);
    plan_ = plan_steps(cfg_, data_.train_units(), opts_.max_steps);
    seed_ = cfg_.environment.seed >= 0 ? static_cast<std::uint64_t>(cfg_.environment.seed) : std::random_device{}();
    if (cfg_.environment.seed < 0) cfg_.environment.seed = static_cast<std::int64_t>(seed_ % (1ULL << 31));  // recorded
    augment_.emplace(cfg_, *tok_, data_.build_sample, std::move(data_.train_rows), seed_);
    // prediction.metric ranks evaluations; BLEU generates validation answers (train/validation.h).
    metric_ = ValidationMetric::from_config(cfg_);
    best_ = metric_.worst();
    if (metric_.generates() && !data_.validation.empty())
      predictor_.emplace(cfg_, *tok_, backbone_, data_.validation_rows, data_.validation, seed_);
    const std::string& pretrained = cfg_.architecture.pretrained_weights;  // a resumed run has its checkpoint
    if (!resuming() && !pretrained.empty() && pretrained != "None") pretrained_.emplace(read_pretrained_weights(pretrained));
  }

  void open_experiment() {
    dir_ = ExperimentDir(resuming() ? opts_.resume_dir : fs::path(cfg_.output_directory) / cfg_.experiment_name);
    if (!resuming()) {
      const auto existing = experiment::read_run_progress(dir_.path());
      LLMS_CHECK(!fs::exists(dir_.status_file()), "experiment folder ", dir_.path(), " already holds a run (status ",
                 existing ? std::string(experiment::to_string(existing->status)) : std::string("unreadable"),
                 "); choose another experiment_name, delete it, or --resume it");
      fs::create_directories(dir_.path());
      experiment::save_resolved_config(cfg_, dir_.path());
    }
    log_.open(dir_.log_file());
    log_.line("experiment " + dir_.path().string() + (resuming() ? " (resumed)" : ""));
    log_.line("resolved config:\n" + experiment::to_yaml(cfg_));
    log_.line("data: " + std::to_string(data_.train.size()) + " train samples, " + std::to_string(data_.validation.size()) +
              " validation samples; " + std::to_string(plan_.total_steps) + " optimizer steps (" +
              std::to_string(plan_.steps_per_epoch) + " per epoch, batch " + std::to_string(cfg_.training.batch_size) +
              " x accumulation " + std::to_string(cfg_.training.grad_accumulation) + ")");
    if (cfg_.training.packing)
      log_.line("packing: " + std::to_string(data_.train.size()) + " samples in " +
                std::to_string(data_.packed_rows.size()) + " rows of at most " +
                std::to_string(cfg_.tokenizer.max_length) + " tokens");
    log_.line("precision: " + mp_.note);
    if (!augment_->summary().empty()) log_.line(augment_->summary());
    experiment::write_run_progress(dir_.path(), {RunStatus::Running, 0, plan_.total_steps, ""});
  }

  void setup_model() {
    lm_.emplace(model::CausalLM::load(backbone_, {choice_.device, model_dtype_}));
    if (pretrained_) log_pretrained(apply_pretrained_base_weights(*lm_, *pretrained_, lora()));
    // LoRA/rsLoRA/DoRA adapters + lora_unfreeze_layers, or all minus freeze_layers; intermediate_dropout.
    auto chosen = setup_trainable(*lm_, cfg_, seed_);
    if (pretrained_ && lora()) log_pretrained(apply_pretrained_adapter_weights(*lm_, *pretrained_));
    params_ = std::move(chosen.params);
    lcfg_ = std::move(chosen.lora_config);
    for (const auto& line : chosen.log) log_.line(line);
    pretrained_.reset();
    std::int64_t trainable = 0;
    for (auto& [n, p] : params_) trainable += p.numel();
    log_.line("model: " + lm_->config().architecture + " on " + choice_.device + " (" + model_dtype_ + "), " +
              (lora() ? std::string(lcfg_.use_dora ? "DoRA" : "LoRA") + (lcfg_.use_rslora ? " (rsLoRA)" : "") +
                            " r=" + std::to_string(lcfg_.r)
                      : std::string("full fine-tuning")) + ", " +
              std::to_string(trainable) + " trainable parameters");
    lm_->set_gradient_checkpointing(cfg_.architecture.gradient_checkpointing);
    lm_->set_neftune_noise_alpha(augment_->neftune_noise_alpha());
    if (cfg_.architecture.gradient_checkpointing)
      log_.line("gradient checkpointing: the " + std::to_string(lm_->layers().size()) +
                " decoder blocks are recomputed in backward");
  }

  void log_pretrained(const std::string& line) {
    if (!line.empty()) log_.line(line);
  }

  void setup_optimizer() {
    const auto& t = cfg_.training;
    optimizer_.emplace(params_, OptimizerConfig::h2o(t.optimizer, t.learning_rate, t.weight_decay));
    if (!t.differential_learning_rate_layers.empty()) {
      const auto& layers = t.differential_learning_rate_layers;
      optimizer_->set_lr_factors(differential_lr_factors(params_, layers, t.learning_rate, t.differential_learning_rate));
      const auto marks = differential_lr_factors(params_, layers, 1.0, 2.0);  // 2 where a name matches
      const auto n = std::count(marks.begin(), marks.end(), 2.0);
      log_.line(n ? "differential learning rate " + fmt(t.differential_learning_rate) + " for " + std::to_string(n) +
                        " trainable tensors (training.differential_learning_rate_layers)"
                  : "warning: training.differential_learning_rate_layers matches no trainable parameter");
    }
    const auto warmup = static_cast<std::int64_t>(
        std::llround(t.warmup_epochs * static_cast<double>(plan_.steps_per_epoch)));
    schedule_ = LrSchedule{t.schedule, t.learning_rate, t.min_learning_rate_ratio, warmup, plan_.total_steps};
    schedule_.validate();
    loss_kind_ = t.loss_function;
    eval_every_ = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(std::llround(t.evaluation_epochs * static_cast<double>(plan_.steps_per_epoch))));
  }

  void load_checkpoint_weights(const fs::path& ck) {
    auto weights = io::load_safetensors_dir(ck / "model.safetensors");
    at::NoGradGuard ng;
    for (auto& [n, p] : params_) {
      auto it = weights.find(n);
      LLMS_CHECK(it != weights.end(), ck, ": checkpoint lacks ", n, " (was it made with another config?)");
      p.copy_(it->second);
    }
  }

  void restore_checkpoint() {
    const fs::path ck = dir_.checkpoint_dir();
    const auto st = experiment::read_trainer_state(ck);
    step_ = st.step;
    if (st.best_metric) best_ = *st.best_metric;
    load_checkpoint_weights(ck);
    optimizer_->load_state(io::load_safetensors_dir(ck / "optimizer.safetensors"));
    if (mp_.loss_scaling && st.loss_scale) scaler_.restore(*st.loss_scale, st.loss_scale_good_steps);
    log_.line("resumed at step " + std::to_string(step_) + " of " + std::to_string(plan_.total_steps));
  }

  // ---- the loop -------------------------------------------------------------------------------------------------
  void train() {
    if (cfg_.training.evaluate_before_training && step_ == 0) {
      evaluate();
      keep_predictions(true);  // no checkpoint yet: not a "best" to beat
    }
    lm_->set_training(true);
    platform::reset_peak_device_memory(choice_.device);
    first_step_ = step_;
    t_start_ = std::chrono::steady_clock::now();
    while (step_ < plan_.total_steps && !interrupted_) {
      const std::int64_t epoch = step_ / plan_.steps_per_epoch;
      if (augment_->parents_active()) data_.train = augment_->epoch_samples(epoch);  // H2O re-draws parents per item
      const auto batches = make_batches(epoch_order(data_.train_units(), seed_, epoch, true), cfg_.training.batch_size,
                                        cfg_.training.drop_last_batch);
      for (std::int64_t s = step_ % plan_.steps_per_epoch; s < plan_.steps_per_epoch && step_ < plan_.total_steps; ++s) {
        if (opts_.stop && opts_.stop->load()) {
          interrupted_ = true;
          break;
        }
        const double lr = step(batches, s);
        queue_log(lr);
        if (step_ % eval_every_ == 0 || step_ == plan_.total_steps) {
          flush_log();
          if (opts_.progress_bar) log_.stream() << "\n";
          after_evaluation(evaluate());
          experiment::write_run_progress(dir_.path(), {RunStatus::Running, step_, plan_.total_steps, ""});
        }
        if (opts_.after_step) {
          flush_log();  // the hook sees this step's metrics written
          opts_.after_step(step_);
        }
        if (opts_.step_observer) opts_.step_observer(step_);
      }
    }
    flush_log();
    if (opts_.progress_bar) log_.stream() << "\n";
  }

  // One optimizer step over `accum` micro-batches (batches s*accum ... of the epoch); returns its learning rate.
  double step(const std::vector<std::vector<std::size_t>>& batches, std::int64_t s) {
    seed_step_generator();
    optimizer_->zero_grad();
    const std::int64_t accum = cfg_.training.grad_accumulation;
    at::Tensor step_loss = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(lm_->device()));
    for (std::int64_t a = 0; a < accum; ++a) {
      Batch b = collate_batch(batches[static_cast<std::size_t>(s * accum + a)]);
      augment_->mask_batch(b, step_, a);
      move_to_device(b, lm_->device());
      at::Tensor loss;
      {
        AutocastScope autocast(lm_->device().type(), mp_.dtype, mp_.enabled);
        loss = causal_lm_loss_from_hidden(
                   lm_->hidden_states(b.input_ids, b.model_mask(), b.position_ids, nullptr, &b.segments),
                   lm_->lm_head_weight(), b.labels, loss_kind_) /
               static_cast<double>(accum);
      }
      (mp_.loss_scaling ? scaler_.scale_loss(loss) : loss).backward();
      step_loss += loss.detach();
      tokens_seen_ += b.tokens;
    }
    const bool apply = !mp_.loss_scaling || unscale_and_check(step_loss);
    if (apply && cfg_.training.gradient_clip > 0) optimizer_->clip_grad_norm(cfg_.training.gradient_clip);
    const double lr = schedule_.at(step_);
    if (apply) optimizer_->step(lr);
    ++step_;
    step_loss_ = step_loss;  // read by queue_log without waiting for the device
    return lr;
  }

  // Dropout draws depend only on (seed, step): a resumed run repeats them exactly.
  void seed_step_generator() {
    at::Generator gen = at::globalContext().defaultGenerator(lm_->device());  // shares the global state
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed_ * 7919ULL + static_cast<std::uint64_t>(step_));
  }

  Batch collate_batch(const std::vector<std::size_t>& rows) const {
    return cfg_.training.packing ? collate_packed(data_.train, data_.packed_rows, rows, cfg_.tokenizer.max_length,
                                                  data_.pad_id, lm_->device())
                                 : collate(data_.train, rows, cfg_.tokenizer.padding_quantile, data_.pad_id);
  }

  // float16: unscale, then the step's one synchronisation reads the loss and the inf/nan flag together. False when
  // the step must be skipped.
  bool unscale_and_check(const at::Tensor& step_loss) {
    at::Tensor found_inf = scaler_.unscale_(params_);
    at::Tensor host = at::stack({step_loss, found_inf.to(step_loss.device())}).to(at::kCPU);
    last_loss_ = host[0].item<double>();
    const bool apply = scaler_.update(host[1].item<double>() != 0.0);
    if (!apply)
      log_.line("step " + std::to_string(step_ + 1) + ": inf/nan gradients, step skipped; loss scale now " +
                fmt(scaler_.scale()));
    return apply;
  }

  // The step's metrics are written once its loss is on the host: after the next step has been queued (so the
  // device never waits for the host between steps), or earlier where something reads them (flush_log).
  void queue_log(double lr) {
    flush_log();
    pending_.emplace();
    pending_->step = step_;
    pending_->lr = lr;
    pending_->tokens_seen = tokens_seen_;
    if (mp_.loss_scaling) pending_->loss_read = true;  // last_loss_ already read with the inf/nan flag
    else pending_->loss.put(step_loss_);
  }

  void flush_log() {
    if (!pending_) return;
    if (!pending_->loss_read) last_loss_ = pending_->loss.get();
    const std::int64_t step = pending_->step, tokens = pending_->tokens_seen;
    const double lr = pending_->lr;
    pending_.reset();
    log_step(step, lr, tokens);
  }

  void log_step(std::int64_t step, double lr, std::int64_t tokens_seen) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start_).count();
    const double tps = elapsed > 0 ? static_cast<double>(tokens_seen) / elapsed : 0;
    const std::int64_t done_here = step - first_step_, total = plan_.total_steps;
    const double eta = done_here > 0 ? elapsed / static_cast<double>(done_here) * static_cast<double>(total - step) : 0;
    const double epoch = static_cast<double>(step) / static_cast<double>(plan_.steps_per_epoch);
    append_metric(dir_, {{"type", "train"}, {"step", step}, {"epoch", epoch}, {"loss", last_loss_}, {"lr", lr},
                         {"tokens_per_s", tps}, {"elapsed_s", elapsed}});
    const std::string line = "step " + std::to_string(step) + "/" + std::to_string(total) + "  loss " +
                             fmt(last_loss_) + "  lr " + fmt(lr, 3) + "  " + fmt(tps, 5) + " tok/s  ETA " + duration(eta);
    if (opts_.progress_bar) log_.stream() << "\r" << line << "   " << std::flush;
    else log_.line(line);
  }

  // ---- evaluate ------------------------------------------------------------------------------------------------
  // Validation loss (token-averaged) and, with prediction.metric BLEU, generated predictions; returns the value that
  // ranks evaluations (the loss for Perplexity, the BLEU score), NaN without validation data.
  double evaluate() {
    if (data_.validation.empty()) return NAN;
    const double loss = validation_loss();
    json m = {{"type", "validation"}, {"step", step_}, {"loss", loss}, {"perplexity", std::exp(loss)}};
    std::string line = "validation step " + std::to_string(step_) + ": loss " + fmt(loss) + ", perplexity " +
                       fmt(std::exp(loss));
    double value = loss;
    if (predictor_) {
      predictions_ = predictor_->predict(*lm_, step_);
      value = predictions_->corpus.score;
      m["bleu"] = value;
      line += ", BLEU " + fmt(value) + " (" + std::to_string(predictions_->rows.size()) + " predictions, " +
              std::to_string(predictions_->generated_tokens) + " tokens in " + fmt(predictions_->seconds, 3) + " s)";
    }
    append_metric(dir_, m);
    log_.line(line);
    return value;
  }

  double validation_loss() {
    at::NoGradGuard ng;
    lm_->set_training(false);
    double sum = 0;
    std::int64_t n = 0;
    for (const auto& rows : make_batches(epoch_order(data_.validation.size(), 0, 0, false), cfg_.training.batch_size, false)) {
      const Batch b = collate(data_.validation, rows, 1.0, data_.pad_id);
      const at::Tensor labels = b.labels.to(lm_->device());
      const auto targets = labels.narrow(1, 1, labels.size(1) - 1).ne(-100).sum().item<std::int64_t>();
      if (targets == 0) continue;
      const at::Tensor loss = causal_lm_loss_from_hidden(lm_->hidden_states(b.input_ids, b.attention_mask),
                                                         lm_->lm_head_weight(), labels, LossKind::TokenAveraged);
      sum += loss.item<double>() * static_cast<double>(targets);
      n += targets;
    }
    lm_->set_training(true);
    return n ? sum / static_cast<double>(n) : NAN;
  }

  // Ranks an evaluation and checkpoints as training.save_checkpoint says.
  void after_evaluation(double value) {
    const bool improved = metric_.improves(value, best_);  // BLEU: higher; Perplexity: lower loss
    if (improved) best_ = value;
    keep_predictions(improved);
    const SaveCheckpoint mode = cfg_.training.save_checkpoint;
    if ((mode == SaveCheckpoint::Best && improved) || mode == SaveCheckpoint::Last ||
        mode == SaveCheckpoint::EachEvaluationEpoch)
      checkpoint();
    if (mode == SaveCheckpoint::EachEvaluationEpoch && step_ > 0) {
      const auto name = evaluation_checkpoint_name(step_, plan_.steps_per_epoch, cfg_.training.grad_accumulation);
      save_evaluation_checkpoint(dir_.path(), name, *lm_, lora() ? std::optional(lcfg_) : std::nullopt, backbone_);
      log_.line("model of step " + std::to_string(step_) + " saved in " + name + " (training.save_checkpoint)");
    }
  }

  // validation_predictions.csv: the best evaluation's with save_checkpoint best, else the last one's.
  void keep_predictions(bool improved) {
    if (!predictions_ || (!improved && cfg_.training.save_checkpoint == SaveCheckpoint::Best)) return;
    write_validation_predictions(dir_.predictions_file(), *predictions_);
    log_.line("validation predictions of step " + std::to_string(predictions_->step) + " in validation_predictions.csv");
  }

  // ---- checkpoint ------------------------------------------------------------------------------------------------
  void checkpoint() {
    if (cfg_.training.save_checkpoint == SaveCheckpoint::Disable) return;
    io::NamedTensors t;
    for (auto& [n, p] : params_) t.emplace_back(n, p.detach());
    experiment::TrainerState state;
    state.step = step_;
    state.total_steps = plan_.total_steps;
    state.seed = seed_;
    if (std::isfinite(best_)) state.best_metric = best_;
    if (mp_.loss_scaling) {
      state.loss_scale = scaler_.scale();
      state.loss_scale_good_steps = scaler_.good_steps();
    }
    experiment::write_checkpoint(dir_.checkpoint_dir(), t, optimizer_->state(), state);
  }

  // ---- finish ------------------------------------------------------------------------------------------------------
  TrainResult interrupt() {
    checkpoint();
    experiment::write_run_progress(dir_.path(), {RunStatus::Interrupted, step_, plan_.total_steps,
                                                 "stopped by a signal; resume with llmstudio train --resume"});
    log_.line("interrupted at step " + std::to_string(step_) + "; checkpoint written; resume with: llmstudio train --resume " +
              dir_.path().string());
    return {dir_.path(), RunStatus::Interrupted, step_, plan_.total_steps, last_loss_};
  }

  // The final model. With save_checkpoint best it is the best evaluation's (kept in checkpoint/), as in H2O.
  TrainResult finish() {
    const SaveCheckpoint mode = cfg_.training.save_checkpoint;
    if (mode == SaveCheckpoint::Best && std::isfinite(best_) && fs::exists(dir_.checkpoint_dir() / "model.safetensors")) {
      load_checkpoint_weights(dir_.checkpoint_dir());
      log_.line(std::string("final model: the best evaluation's weights (") +
                (metric_.generates() ? "BLEU " : "validation loss ") + fmt(best_) + ")");
    } else if (mode != SaveCheckpoint::Last || fs::exists(dir_.checkpoint_dir())) {
      checkpoint();
    }
    save_final_model();
    copy_tokenizer_files(backbone_, dir_.path());
    experiment::write_run_progress(dir_.path(), {RunStatus::Finished, step_, plan_.total_steps, ""});
    const double peak_gib = static_cast<double>(platform::peak_device_memory_bytes(choice_.device)) / (1024.0 * 1024 * 1024);
    append_metric(dir_, {{"type", "summary"}, {"step", step_}, {"peak_device_memory_gib", peak_gib}});
    log_.line("finished: " + std::to_string(step_) + " steps, last loss " + fmt(last_loss_) + "; model in " +
              dir_.path().string() + (peak_gib > 0 ? "; peak device memory " + fmt(peak_gib, 3) + " GiB" : ""));
    return {dir_.path(), RunStatus::Finished, step_, plan_.total_steps, last_loss_};
  }

  void save_final_model() {
    save_model_files(dir_.path(), *lm_, lora() ? std::optional(lcfg_) : std::nullopt, backbone_);
  }

  // ---- state ---------------------------------------------------------------------------------------------------------
  const TrainOptions& opts_;
  RunLog log_;
  experiment::ExperimentConfig cfg_;
  platform::PlatformFacts facts_;
  platform::DeviceChoice choice_;
  std::string model_dtype_;
  MixedPrecisionPlan mp_;
  fs::path backbone_;
  std::optional<tokenizer::Tokenizer> tok_;
  TrainingData data_;
  StepPlan plan_;
  std::uint64_t seed_ = 0;
  ValidationMetric metric_;
  std::optional<ValidationPredictor> predictor_;
  std::optional<Augmentation> augment_;  // augmentation.*: token masking, parents, NEFTune
  std::optional<ValidationPredictions> predictions_;  // of the latest evaluation (prediction.metric BLEU)
  ExperimentDir dir_;
  std::optional<PretrainedWeights> pretrained_;  // architecture.pretrained_weights, until the model has them
  std::optional<model::CausalLM> lm_;
  model::LoraConfig lcfg_;
  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::optional<Optimizer> optimizer_;
  LossScaler scaler_;
  LrSchedule schedule_;
  LossKind loss_kind_ = LossKind::TokenAveraged;
  std::int64_t eval_every_ = 1;
  std::int64_t step_ = 0, first_step_ = 0, tokens_seen_ = 0;
  double best_ = NAN, last_loss_ = NAN;
  struct PendingLog {
    std::int64_t step = 0;
    double lr = 0;
    std::int64_t tokens_seen = 0;
    DeferredScalar loss;
    bool loss_read = false;
  };
  std::optional<PendingLog> pending_;  // the last step, not yet logged (queue_log)
  at::Tensor step_loss_;               // the last step's loss, on the device
  bool interrupted_ = false;
  std::chrono::steady_clock::time_point t_start_;
};

}  // namespace

TrainResult run_training(const TrainOptions& opts, std::ostream& out) { return FineTuneRecipe(opts, out).run(); }

}  // namespace llmstudio::train
