// What a dataset's columns mean for causal-LM fine-tuning (H2O LLM Studio's dataset settings): finding the
// system/prompt/answer/id/parent-id columns, dropping rows without a prompt, checking the parent-id chains and
// grouping rows into conversations, and turning rows into tokenizer::ConversationRow for the prompt formatter.
//
// Checks, as H2O does them where H2O has them: a missing prompt or answer column is an error listing the columns
// found; a missing system or parent-id column disables that feature with a warning (H2O's defaults name
// "system" and "parent_id", which many datasets lack); with chaining on, the id column must exist, ids must be
// unique, no row may be its own parent and parent chains must not be circular (errors naming the ids and rows);
// parent ids that match no row start a new conversation and are counted. Deliberate difference: rows whose
// prompt is empty are dropped and counted (H2O trains on them with an empty prompt).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "llmstudio/data/table.h"
#include "llmstudio/tokenizer/prompt_format.h"

namespace llmstudio::data {

// Column settings (H2O names; "None" / "" for an optional column = not used).
struct ColumnSpec {
  std::string system_column = "system";
  std::vector<std::string> prompt_columns = {"instruction", "input"};
  std::string prompt_column_separator = "\\n\\n";  // as written in cfg.yaml; escapes decoded like H2O does
  std::string answer_column = "output";
  std::string parent_id_column = "parent_id";
  std::string id_column = "id";
};

// True for H2O's "no column" spellings: "", "None".
bool is_none_column(const std::string& name);

// Column indices in one table.
struct ResolvedColumns {
  std::optional<std::size_t> system;
  std::vector<std::size_t> prompts;
  std::size_t answer = 0;
  std::optional<std::size_t> id;         // set when chaining is on
  std::optional<std::size_t> parent_id;  // set when chaining is on
  bool chained() const { return parent_id.has_value(); }
};

// Finds the columns; throws for missing prompt/answer (or id with parent ids) columns, appends warnings for
// optional columns that are configured but absent. `role` ("train", "validation") goes into messages.
ResolvedColumns resolve_columns(const Table& table, const ColumnSpec& spec, const std::string& role,
                                std::vector<std::string>& warnings);

// The prompt text of a row as H2O builds it: the prompt columns joined with the decoded separator, nulls as "".
std::string prompt_text(const Table& table, const ResolvedColumns& cols, std::size_t row, const std::string& separator);

// Removes rows whose prompt text is empty; returns how many were removed.
std::size_t drop_empty_prompts(Table& table, const ResolvedColumns& cols);

struct Conversations {
  std::vector<std::vector<std::size_t>> groups;  // row indices of each conversation (ascending), by first row
  std::size_t dangling_parent_ids = 0;            // parent ids naming no row (those rows start a conversation)
  std::size_t chained_rows = 0;                   // rows whose parent is in the table
};

// Groups rows into conversations: rows linked through parent ids (siblings included, so a conversation tree
// never straddles a train/validation split). Without chaining every row is its own group. Throws
// llmstudio::Error for duplicate ids, self-parenting and circular chains.
Conversations find_conversations(const Table& table, const ResolvedColumns& cols);

// Rows for tokenizer::PromptFormatter: prompt text joined as above, answer/system nulls as "", ids in
// canonical form (data::canonical_id) so "7" and "7.0" match.
std::vector<tokenizer::ConversationRow> to_conversation_rows(const Table& table, const ColumnSpec& spec);

}  // namespace llmstudio::data
