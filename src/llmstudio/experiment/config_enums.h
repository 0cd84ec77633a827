// The experiment config's keys with a fixed set of values, as enums, and their names as cfg.yaml spells them
// (H2O LLM Studio's values, in the order its config classes list them). The schema table (config_schema.h) offers
// these names as each key's allowed values, so a value parses to an enum and a `switch` over one that leaves a
// value out is a compiler warning (-Wswitch). Names that the parser accepts but validate() refuses or replaces
// (int4, AdamW8bit, GPT) are enumerators too: the table says what happens to them.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace llmstudio::experiment {

enum class ValidationStrategy { Automatic, Custom };
enum class BackboneDtype { Auto, Float32, BFloat16, Float16, Int8, Int4 };
enum class LossFunction { TokenAveraged, SampleAveraged };
enum class OptimizerKind { AdamW, Adam, SGD, RMSprop, Adadelta, AdamW8bit };
enum class ScheduleKind { Cosine, Linear, Constant };
enum class SaveCheckpoint { Last, Best, EachEvaluationEpoch, Disable };
enum class MetricKind { Perplexity, BLEU, GPT };
enum class MixedPrecisionDtype { BFloat16, Float16 };
enum class LoggerKind { None, Neptune, WandB };

// EnumNames<E>::names[i] is the cfg.yaml name of the enumerator with value i.
template <typename E>
struct EnumNames;
template <>
struct EnumNames<ValidationStrategy> {
  static constexpr std::array<std::string_view, 2> names = {"automatic", "custom"};
};
template <>
struct EnumNames<BackboneDtype> {
  static constexpr std::array<std::string_view, 6> names = {"auto", "float32", "bfloat16", "float16", "int8", "int4"};
};
template <>
struct EnumNames<LossFunction> {
  static constexpr std::array<std::string_view, 2> names = {"TokenAveragedCrossEntropy", "SampleAveragedCrossEntropy"};
};
template <>
struct EnumNames<OptimizerKind> {
  static constexpr std::array<std::string_view, 6> names = {"AdamW", "Adam", "SGD", "RMSprop", "Adadelta", "AdamW8bit"};
};
template <>
struct EnumNames<ScheduleKind> {
  static constexpr std::array<std::string_view, 3> names = {"Cosine", "Linear", "Constant"};
};
template <>
struct EnumNames<SaveCheckpoint> {
  static constexpr std::array<std::string_view, 4> names = {"last", "best", "each_evaluation_epoch", "disable"};
};
template <>
struct EnumNames<MetricKind> {
  static constexpr std::array<std::string_view, 3> names = {"Perplexity", "BLEU", "GPT"};
};
template <>
struct EnumNames<MixedPrecisionDtype> {
  static constexpr std::array<std::string_view, 2> names = {"bfloat16", "float16"};
};
template <>
struct EnumNames<LoggerKind> {
  static constexpr std::array<std::string_view, 3> names = {"None", "Neptune", "W&B"};
};

// dataset.data_sample_choice is a list whose items are one of these.
inline constexpr std::array<std::string_view, 2> kDataSampleChoices = {"Train", "Validation"};

template <typename E>
constexpr std::string_view to_string(E e) {
  return EnumNames<E>::names[static_cast<std::size_t>(e)];
}

// The enumerator named `name` (exact spelling), or nullopt.
template <typename E>
constexpr std::optional<E> enum_from_string(std::string_view name) {
  const auto& names = EnumNames<E>::names;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<E>(i);
  return std::nullopt;
}

}  // namespace llmstudio::experiment
