// run_training (see trainer.h).
#include "llmstudio/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <optional>
#include <mutex>
#include <random>
#include <sstream>

#include "llmstudio/core/error.h"
#include "llmstudio/data/dataset_columns.h"
#include "llmstudio/data/dataset_split.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/confined_files.h"
#include "llmstudio/io/safetensors.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/lora.h"
#include "llmstudio/platform/platform.h"
#include "llmstudio/tokenizer/tokenizer.h"
#include "llmstudio/train/batching.h"
#include "llmstudio/train/loss.h"
#include "llmstudio/train/lr_schedule.h"
#include "llmstudio/train/mixed_precision.h"
#include "llmstudio/train/optimizer.h"
#include "llmstudio/train/packing.h"
#include "llmstudio/train/validation.h"

namespace llmstudio::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Log lines go to the caller's stream and to logs.txt.
class RunLog {
 public:
  RunLog(std::ostream& out) : out_(out) {}
  void open(const fs::path& file) { file_.open(file, std::ios::app); }
  void line(const std::string& s) {
    out_ << s << "\n" << std::flush;
    if (file_) file_ << s << "\n" << std::flush;
  }
 private:
  std::ostream& out_;
  std::ofstream file_;
};

void write_status(const fs::path& dir, const std::string& status, std::int64_t step, std::int64_t total,
                  const std::string& message = "") {
  json j = {{"status", status}, {"step", step}, {"total_steps", total}, {"message", message}};
  io::write_file_atomic(dir / "status.json", j.dump(2) + "\n");
}

std::string read_status(const fs::path& dir) {
  if (!fs::exists(dir / "status.json")) return "";
  try {
    return json::parse(io::read_file(dir / "status.json")).value("status", "");
  } catch (const json::parse_error&) {
    return "";
  }
}

void append_metric(const fs::path& dir, const json& j) {
  std::ofstream out(dir / "metrics.jsonl", std::ios::app);
  out << j.dump() << "\n";
}

// Writes `files` into dir/checkpoint atomically: a fresh folder renamed over the old one.
void write_checkpoint(const fs::path& dir, const io::NamedTensors& model_tensors, const std::map<std::string, at::Tensor>& opt_state,
                      const json& trainer_state) {
  const fs::path tmp = dir / "checkpoint.tmp", final_dir = dir / "checkpoint", old = dir / "checkpoint.old";
  io::remove_tree(tmp);
  fs::create_directories(tmp);
  io::save_safetensors(tmp / "model.safetensors", model_tensors);
  io::NamedTensors opt;
  for (const auto& [k, v] : opt_state) opt.emplace_back(k, v);
  io::save_safetensors(tmp / "optimizer.safetensors", opt);
  io::write_file_atomic(tmp / "trainer_state.json", trainer_state.dump(2) + "\n");
  io::remove_tree(old);
  if (fs::exists(final_dir)) fs::rename(final_dir, old);
  fs::rename(tmp, final_dir);
  io::remove_tree(old);
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

}  // namespace

TrainResult run_training(const TrainOptions& opts, std::ostream& out) {
  RunLog log(out);
  const bool resuming = !opts.resume_dir.empty();
  ExperimentConfig cfg;
  if (resuming) {
    LLMS_CHECK(fs::exists(opts.resume_dir / "cfg.yaml"), "cannot resume ", opts.resume_dir,
               ": no cfg.yaml (not an experiment folder)");
    LLMS_CHECK(fs::exists(opts.resume_dir / "checkpoint" / "trainer_state.json"), "cannot resume ", opts.resume_dir,
               ": no checkpoint (the run stopped before its first checkpoint; start it again)");
    const std::string st = read_status(opts.resume_dir);
    LLMS_CHECK(st != "finished", "experiment ", opts.resume_dir, " already finished; nothing to resume");
    cfg = experiment::load_experiment_config(opts.resume_dir / "cfg.yaml", opts.overrides);
  } else {
    LLMS_CHECK(!opts.config_path.empty(), "give a config (-c cfg.yaml) or --resume <experiment dir>");
    cfg = experiment::load_experiment_config(opts.config_path, opts.overrides);
    // Paths are relative to the working folder (as in H2O); the saved config holds them absolute so that
    // --resume works from anywhere.
    auto absolute = [](std::string& p) {
      if (!p.empty() && p != "None") p = fs::absolute(p).lexically_normal().string();
    };
    absolute(cfg.llm_backbone);
    absolute(cfg.dataset.train_dataframe);
    if (cfg.dataset.validation_strategy == "custom") absolute(cfg.dataset.validation_dataframe);
  }
  cfg.validate();
  for (const auto& w : cfg.warnings) log.line("warning: " + w);

  // Platform and dtype.
  auto facts = platform::probe_platform();
  auto choice = platform::choose_device(facts, platform::device_request_from(opts.device),
                                        cfg.architecture.backbone_dtype == "auto" ? "auto" : cfg.architecture.backbone_dtype);
  for (const auto& n : choice.notes) log.line("platform: " + n);
  const bool lora = cfg.training.lora;
  // Full fine-tuning keeps float32 weights (the master copy); LoRA trains float32 adapters on a frozen base.
  const std::string model_dtype = lora ? choice.dtype : "float32";
  const bool device_bf16 = choice.kind != platform::DeviceKind::CUDA ||
                           (choice.index < static_cast<int>(facts.cuda_devices.size()) &&
                            facts.cuda_devices[static_cast<std::size_t>(choice.index)].cc_major >= 8);
  const MixedPrecisionPlan mp = plan_mixed_precision(cfg.environment.mixed_precision, cfg.environment.mixed_precision_dtype,
                                                     choice.device, cfg.architecture.backbone_dtype, device_bf16);

  // Data (checked before anything is written).
  const fs::path backbone = cfg.llm_backbone;
  LLMS_CHECK(fs::is_directory(backbone), "llm_backbone '", cfg.llm_backbone,
             "' is not a folder; expected a local Hugging Face model folder (config.json, *.safetensors, tokenizer.json)");
  check_backbone_confined(backbone);
  auto tok = tokenizer::Tokenizer::from_path(backbone);
  auto datasets = data::prepare_datasets(dataset_spec(cfg));
  for (const auto& w : datasets.report.warnings) log.line("warning: " + w);
  tokenizer::Encoder enc = [&tok](std::string_view s) { return tok.encode(s, false); };
  std::optional<tokenizer::ChatTemplate> chat;
  if (cfg.dataset.use_chat_template) {
    LLMS_CHECK(!tok.chat_template().empty(), "dataset.use_chat_template is true but ", backbone,
               " has no chat_template in tokenizer_config.json");
    chat.emplace(tok.chat_template());
  }
  tokenizer::ChatTemplateOptions topts;
  if (!tok.bos_token().empty()) topts.bos_token = tok.bos_token();
  if (!tok.eos_token().empty()) topts.eos_token = tok.eos_token();
  tokenizer::PromptFormatter formatter(prompt_format_config(cfg), enc, tok.eos_token(), chat ? &*chat : nullptr, topts);
  const auto colspec = dataset_spec(cfg).columns;
  auto train_samples = formatter.build_all(data::to_conversation_rows(datasets.train, colspec));
  const auto val_rows = data::to_conversation_rows(datasets.validation, colspec);
  auto val_samples = formatter.build_all(val_rows);
  LLMS_CHECK(!train_samples.empty(), "no training samples after preparing ", cfg.dataset.train_dataframe);
  const std::int32_t pad_id = tok.pad_id().value_or(tok.eos_id().value_or(0));
  // training.packing: rows of samples are formed once; an epoch then shuffles and batches rows, not samples.
  std::vector<std::vector<std::size_t>> packed_rows;
  if (cfg.training.packing) packed_rows = pack_samples(sample_lengths(train_samples), cfg.tokenizer.max_length);
  const std::size_t train_units = cfg.training.packing ? packed_rows.size() : train_samples.size();

  const std::int64_t bs = cfg.training.batch_size, accum = cfg.training.grad_accumulation;
  const auto batches_per_epoch =
      static_cast<std::int64_t>(make_batches(epoch_order(train_units, 0, 0, false), bs, cfg.training.drop_last_batch).size());
  const std::int64_t steps_per_epoch = std::max<std::int64_t>(1, batches_per_epoch / accum);
  std::int64_t total_steps = steps_per_epoch * cfg.training.epochs;
  if (opts.max_steps > 0) total_steps = std::min(total_steps, opts.max_steps);
  const std::uint64_t seed = cfg.environment.seed >= 0 ? static_cast<std::uint64_t>(cfg.environment.seed) : std::random_device{}();
  if (cfg.environment.seed < 0) cfg.environment.seed = static_cast<std::int64_t>(seed % (1ULL << 31));  // recorded
  // prediction.metric ranks evaluations; BLEU generates validation answers (train/validation.h), set up here so
  // that bad prediction settings fail before the experiment folder exists.
  const ValidationMetric metric = ValidationMetric::from_config(cfg);
  std::optional<ValidationPredictor> predictor;
  if (metric.generates() && !val_samples.empty()) predictor.emplace(cfg, tok, backbone, val_rows, val_samples, seed);

  // Experiment folder.
  const fs::path dir = resuming ? opts.resume_dir : fs::path(cfg.output_directory) / cfg.experiment_name;
  if (!resuming) {
    LLMS_CHECK(!fs::exists(dir / "status.json"), "experiment folder ", dir, " already holds a run (status ",
               read_status(dir), "); choose another experiment_name, delete it, or --resume it");
    fs::create_directories(dir);
    save_resolved_config(cfg, dir);
  }
  log.open(dir / "logs.txt");
  log.line("experiment " + dir.string() + (resuming ? " (resumed)" : ""));
  log.line("resolved config:\n" + to_yaml(cfg));
  log.line("data: " + std::to_string(train_samples.size()) + " train samples, " + std::to_string(val_samples.size()) +
           " validation samples; " + std::to_string(total_steps) + " optimizer steps (" + std::to_string(steps_per_epoch) +
           " per epoch, batch " + std::to_string(bs) + " x accumulation " + std::to_string(accum) + ")");
  if (cfg.training.packing)
    log.line("packing: " + std::to_string(train_samples.size()) + " samples in " + std::to_string(packed_rows.size()) +
             " rows of at most " + std::to_string(cfg.tokenizer.max_length) + " tokens");
  log.line("precision: " + mp.note);
  write_status(dir, "running", 0, total_steps);

  try {
    // Model.
    auto lm = model::CausalLM::load(backbone, {choice.device, model_dtype});
    model::LoraConfig lcfg;
    std::vector<std::pair<std::string, at::Tensor>> params;
    if (lora) {
      lcfg.r = cfg.training.lora_r;
      lcfg.alpha = static_cast<double>(cfg.training.lora_alpha);
      lcfg.dropout = cfg.training.lora_dropout;
      lcfg.target_modules = cfg.training.lora_target_module_list();
      model::attach_lora(lm, lcfg, seed);
      params = model::lora_parameters(lm);
    } else {
      params = lm.named_parameters();
      for (auto& [n, p] : params) p.set_requires_grad(true);
    }
    std::int64_t trainable = 0;
    for (auto& [n, p] : params) trainable += p.numel();
    log.line("model: " + lm.config().architecture + " on " + choice.device + " (" + model_dtype + "), " +
             (lora ? "LoRA r=" + std::to_string(lcfg.r) : std::string("full fine-tuning")) + ", " +
             std::to_string(trainable) + " trainable parameters");

    OptimizerConfig ocfg;
    ocfg.name = cfg.training.optimizer;
    ocfg.lr = cfg.training.learning_rate;
    ocfg.weight_decay = cfg.training.weight_decay;
    Optimizer optimizer(params, ocfg);
    if (!cfg.training.differential_learning_rate_layers.empty()) {
      const auto& layers = cfg.training.differential_learning_rate_layers;
      optimizer.set_lr_factors(differential_lr_factors(params, layers, cfg.training.learning_rate,
                                                       cfg.training.differential_learning_rate));
      const auto marks = differential_lr_factors(params, layers, 1.0, 2.0);  // 2 where a name matches
      const auto n = std::count(marks.begin(), marks.end(), 2.0);
      log.line(n ? "differential learning rate " + fmt(cfg.training.differential_learning_rate) + " for " +
                       std::to_string(n) + " trainable tensors (training.differential_learning_rate_layers)"
                 : "warning: training.differential_learning_rate_layers matches no trainable parameter");
    }
    lm.set_gradient_checkpointing(cfg.architecture.gradient_checkpointing);
    if (cfg.architecture.gradient_checkpointing)
      log.line("gradient checkpointing: the " + std::to_string(lm.layers().size()) + " decoder blocks are recomputed in backward");
    LossScaler scaler;
    LrSchedule schedule{cfg.training.schedule, cfg.training.learning_rate, cfg.training.min_learning_rate_ratio,
                        static_cast<std::int64_t>(std::llround(cfg.training.warmup_epochs * static_cast<double>(steps_per_epoch))),
                        total_steps};
    schedule.validate();
    const LossKind loss_kind = parse_loss_kind(cfg.training.loss_function);

    std::int64_t step = 0;
    double best = metric.worst();  // best validation value so far (save_checkpoint: best)
    auto load_checkpoint_weights = [&](const fs::path& ck) {
      auto weights = io::load_safetensors_dir(ck / "model.safetensors");
      at::NoGradGuard ng;
      for (auto& [n, p] : params) {
        auto it = weights.find(n);
        LLMS_CHECK(it != weights.end(), ck, ": checkpoint lacks ", n, " (was it made with another config?)");
        p.copy_(it->second);
      }
    };
    if (resuming) {
      const fs::path ck = dir / "checkpoint";
      auto st = json::parse(io::read_file(ck / "trainer_state.json"));
      step = st.at("step").get<std::int64_t>();
      if (st.contains("best_metric")) best = st.at("best_metric").get<double>();
      load_checkpoint_weights(ck);
      optimizer.load_state(io::load_safetensors_dir(ck / "optimizer.safetensors"));
      if (mp.loss_scaling && st.contains("loss_scale"))
        scaler.restore(st.at("loss_scale").get<double>(), st.value("loss_scale_good_steps", std::int64_t{0}));
      log.line("resumed at step " + std::to_string(step) + " of " + std::to_string(total_steps));
    }

    auto save_ckpt = [&](std::int64_t at_step) {
      if (cfg.training.save_checkpoint == "disable") return;
      io::NamedTensors t;
      for (auto& [n, p] : params) t.emplace_back(n, p.detach());
      json state = {{"step", at_step}, {"total_steps", total_steps}, {"seed", seed}};
      if (std::isfinite(best)) state["best_metric"] = best;
      if (mp.loss_scaling) {
        state["loss_scale"] = scaler.scale();
        state["loss_scale_good_steps"] = scaler.good_steps();
      }
      write_checkpoint(dir, t, optimizer.state(), state);
    };

    std::optional<ValidationPredictions> predictions;  // of the latest evaluation (prediction.metric BLEU)
    auto evaluate = [&](std::int64_t at_step) -> double {
      if (val_samples.empty()) return NAN;
      at::NoGradGuard ng;
      lm.set_training(false);
      double sum = 0;
      std::int64_t n = 0;
      auto order = epoch_order(val_samples.size(), 0, 0, false);
      for (const auto& rows : make_batches(order, bs, false)) {
        Batch b = collate(val_samples, rows, 1.0, pad_id);
        at::Tensor labels = b.labels.to(lm.device());
        const std::int64_t targets = labels.narrow(1, 1, labels.size(1) - 1).ne(-100).sum().item<std::int64_t>();
        if (targets == 0) continue;
        at::Tensor loss = causal_lm_loss(lm.forward(b.input_ids, b.attention_mask), labels, LossKind::TokenAveraged);
        sum += loss.item<double>() * static_cast<double>(targets);
        n += targets;
      }
      lm.set_training(true);
      const double loss = n ? sum / static_cast<double>(n) : NAN;
      json m = {{"type", "validation"}, {"step", at_step}, {"loss", loss}, {"perplexity", std::exp(loss)}};
      std::string line = "validation step " + std::to_string(at_step) + ": loss " + fmt(loss) + ", perplexity " + fmt(std::exp(loss));
      double value = loss;  // what ranks evaluations: the loss for Perplexity
      if (predictor) {
        predictions = predictor->predict(lm, at_step);
        value = predictions->corpus.score;
        m["bleu"] = value;
        line += ", BLEU " + fmt(value) + " (" + std::to_string(predictions->rows.size()) + " predictions, " +
                std::to_string(predictions->generated_tokens) + " tokens in " + fmt(predictions->seconds, 3) + " s)";
      }
      append_metric(dir, m);
      log.line(line);
      return value;
    };
    // validation_predictions.csv: the best evaluation's with save_checkpoint best, else the last one's.
    auto keep_predictions = [&](bool improved) {
      if (!predictions || (!improved && cfg.training.save_checkpoint == "best")) return;
      write_validation_predictions(dir / "validation_predictions.csv", *predictions);
      log.line("validation predictions of step " + std::to_string(predictions->step) + " in validation_predictions.csv");
    };

    const std::int64_t eval_every = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(std::llround(cfg.training.evaluation_epochs * static_cast<double>(steps_per_epoch))));
    double last_loss = NAN;
    if (cfg.training.evaluate_before_training && step == 0) {
      evaluate(0);
      keep_predictions(true);  // no checkpoint yet: not a "best" to beat
    }

    lm.set_training(true);
    platform::reset_peak_device_memory(choice.device);
    const std::int64_t first_step = step;
    const auto t_start = std::chrono::steady_clock::now();
    std::int64_t tokens_seen = 0;
    bool interrupted = false;
    while (step < total_steps) {
      const std::int64_t epoch = step / steps_per_epoch, in_epoch = step % steps_per_epoch;
      auto batches = make_batches(epoch_order(train_units, seed, epoch, true), bs, cfg.training.drop_last_batch);
      for (std::int64_t s = in_epoch; s < steps_per_epoch && step < total_steps; ++s) {
        if (opts.stop && opts.stop->load()) {
          interrupted = true;
          break;
        }
        // Dropout draws depend only on (seed, step): a resumed run repeats them exactly.
        {
          at::Generator gen = at::globalContext().defaultGenerator(lm.device());  // shares the global state
          std::lock_guard<std::mutex> lock(gen.mutex());
          gen.set_current_seed(seed * 7919ULL + static_cast<std::uint64_t>(step));
        }
        optimizer.zero_grad();
        at::Tensor step_loss = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(lm.device()));
        std::int64_t step_tokens = 0;
        for (std::int64_t a = 0; a < accum; ++a) {
          const auto& rows = batches[static_cast<std::size_t>(s * accum + a)];
          Batch b = cfg.training.packing
                        ? collate_packed(train_samples, packed_rows, rows, cfg.tokenizer.max_length, pad_id, lm.device())
                        : collate(train_samples, rows, cfg.tokenizer.padding_quantile, pad_id);
          at::Tensor loss;
          {
            AutocastScope autocast(lm.device().type(), mp.dtype, mp.enabled);
            loss = causal_lm_loss(lm.forward(b.input_ids, b.attention_mask, b.position_ids), b.labels, loss_kind) /
                   static_cast<double>(accum);
          }
          (mp.loss_scaling ? scaler.scale_loss(loss) : loss).backward();
          step_loss += loss.detach();
          step_tokens += b.tokens;
        }
        bool apply_step = true;
        if (mp.loss_scaling) {
          // float16: unscale, then the step's one synchronisation reads the loss and the inf/nan flag together.
          at::Tensor found_inf = scaler.unscale_(params);
          at::Tensor host = at::stack({step_loss, found_inf.to(step_loss.device())}).to(at::kCPU);
          last_loss = host[0].item<double>();
          apply_step = scaler.update(host[1].item<double>() != 0.0);
          if (!apply_step)
            log.line("step " + std::to_string(step + 1) + ": inf/nan gradients, step skipped; loss scale now " + fmt(scaler.scale()));
        }
        if (apply_step && cfg.training.gradient_clip > 0) optimizer.clip_grad_norm(cfg.training.gradient_clip);
        const double lr = schedule.at(step);
        if (apply_step) optimizer.step(lr);
        ++step;
        tokens_seen += step_tokens;
        if (!mp.loss_scaling) last_loss = step_loss.item<double>();  // the one synchronisation per step, for logging
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
        const double tps = elapsed > 0 ? static_cast<double>(tokens_seen) / elapsed : 0;
        const std::int64_t done_here = step - first_step;
        const double eta = done_here > 0 ? elapsed / static_cast<double>(done_here) * static_cast<double>(total_steps - step) : 0;
        append_metric(dir, {{"type", "train"}, {"step", step}, {"epoch", static_cast<double>(step) / static_cast<double>(steps_per_epoch)},
                            {"loss", last_loss}, {"lr", lr}, {"tokens_per_s", tps}, {"elapsed_s", elapsed}});
        std::string line = "step " + std::to_string(step) + "/" + std::to_string(total_steps) + "  loss " + fmt(last_loss) +
                           "  lr " + fmt(lr, 3) + "  " + fmt(tps, 5) + " tok/s  ETA " + duration(eta);
        if (opts.progress_bar) out << "\r" << line << "   " << std::flush;
        else log.line(line);
        if (step % eval_every == 0 || step == total_steps) {
          if (opts.progress_bar) out << "\n";
          const double vl = evaluate(step);
          const bool improved = metric.improves(vl, best);  // BLEU: higher; Perplexity: lower loss
          if (improved) best = vl;
          keep_predictions(improved);
          if (cfg.training.save_checkpoint == "best" && improved) {
            save_ckpt(step);
          } else if (cfg.training.save_checkpoint == "last") {
            save_ckpt(step);
          }
          write_status(dir, "running", step, total_steps);
        }
      }
      if (interrupted) break;
    }
    if (opts.progress_bar) out << "\n";
    if (interrupted) {
      save_ckpt(step);
      write_status(dir, "interrupted", step, total_steps, "stopped by a signal; resume with llmstudio train --resume");
      log.line("interrupted at step " + std::to_string(step) + "; checkpoint written; resume with: llmstudio train --resume " +
               dir.string());
      return {dir, "interrupted", step, total_steps, last_loss};
    }
    // The final model. With save_checkpoint best it is the best evaluation's (kept in checkpoint/), as in H2O.
    if (cfg.training.save_checkpoint == "best" && std::isfinite(best) && fs::exists(dir / "checkpoint" / "model.safetensors")) {
      load_checkpoint_weights(dir / "checkpoint");
      log.line(std::string("final model: the best evaluation's weights (") + (metric.name == "BLEU" ? "BLEU " : "validation loss ") + fmt(best) + ")");
    } else if (cfg.training.save_checkpoint != "last" || fs::exists(dir / "checkpoint")) {
      save_ckpt(step);
    }
    if (lora) {
      model::save_peft_adapter(lm, lcfg, dir, fs::absolute(backbone).string());
    } else {
      io::NamedTensors t;
      for (auto& [n, p] : lm.named_parameters()) t.emplace_back(n, p.detach());
      io::save_sharded(dir, t, 2ULL << 30, {{"format", "pt"}});
      check_backbone_confined(backbone);
      io::write_file_atomic(dir / "config.json", io::read_file(backbone / "config.json"));
    }
    copy_tokenizer_files(backbone, dir);
    write_status(dir, "finished", step, total_steps);
    const double peak_gib = static_cast<double>(platform::peak_device_memory_bytes(choice.device)) / (1024.0 * 1024 * 1024);
    append_metric(dir, {{"type", "summary"}, {"step", step}, {"peak_device_memory_gib", peak_gib}});
    log.line("finished: " + std::to_string(step) + " steps, last loss " + fmt(last_loss) + "; model in " + dir.string() +
             (peak_gib > 0 ? "; peak device memory " + fmt(peak_gib, 3) + " GiB" : ""));
    return {dir, "finished", step, total_steps, last_loss};
  } catch (const std::exception& e) {
    write_status(dir, "failed", 0, total_steps, e.what());
    throw;
  }
}

}  // namespace llmstudio::train
