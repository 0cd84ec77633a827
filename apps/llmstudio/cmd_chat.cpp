// `llmstudio chat`: an interactive chat in the terminal (or through a pipe). One user message per stdin line;
// the reply is streamed to stdout and ends with a newline. Commands: /reset (forget the history),
// /system <text> (set the system prompt), /exit (or end of input). History is kept for --num-history turns
// (H2O's num_history) and formatted by infer::PromptBuilder.
#include <unistd.h>

#include <iostream>
#include <string>

#include "command.h"
#include "generation_flags.h"
#include "llmstudio/core/error.h"
#include "llmstudio/infer/text_generation.h"

namespace llmstudio::cli {
namespace {

struct ChatOptions {
  GenerationFlags flags;
  int num_history = 4;
};

void setup_chat(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  auto* cmd = app.add_subcommand("chat", "Chat with a model in the terminal (one message per line; /reset, /system, /exit)");
  add_generation_flags(cmd, o->flags);
  cmd->add_option("--num-history", o->num_history, "Earlier turns kept in the prompt (H2O num_history; -1 = all)");
  cmd->callback([o] {
    LoadedModel m = load_model(o->flags);
    const infer::GenerationConfig g = generation_config(o->flags, m);
    auto builder = prompt_builder(o->flags, m, false);
    const auto stops = stop_strings(o->flags, m);
    const bool tty = isatty(STDIN_FILENO) != 0;
    std::cerr << "chat with " << o->flags.model << " on " << m.device << " (" << infer::to_string(builder.format())
              << " prompts); /reset clears the history, /system TEXT sets the system prompt, /exit quits\n";
    infer::Conversation conv;
    conv.system = o->flags.system;
    std::string line;
    while (true) {
      if (tty) std::cout << "> " << std::flush;
      if (!std::getline(std::cin, line)) break;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      if (line == "/exit" || line == "/quit") break;
      if (line == "/reset") {
        conv.turns.clear();
        std::cout << "(history cleared)" << std::endl;
        continue;
      }
      if (line.rfind("/system", 0) == 0 && (line.size() == 7 || line[7] == ' ')) {
        conv.system = line.size() > 8 ? line.substr(8) : "";
        std::cout << (conv.system.empty() ? "(system prompt removed)" : "(system prompt set)") << std::endl;
        continue;
      }
      conv.turns.push_back({line, ""});
      conv.trim_history(o->num_history);
      try {
        auto ids = builder.encode(conv);
        auto results = infer::generate_text(m.lm, *m.tok, {ids}, g, stops,
                                            [](std::size_t, std::string_view s) { std::cout << s << std::flush; });
        std::cout << std::endl;
        conv.turns.back().assistant = results[0].text;
      } catch (const Error& e) {  // a bad turn (e.g. a template error) must not end the session
        std::cout << std::endl;
        std::cerr << "error: " << e.what() << "\n";
        conv.turns.pop_back();
      }
    }
    if (tty) std::cout << std::endl;
  });
}

}  // namespace
LLMS_COMMAND(65, setup_chat);
}  // namespace llmstudio::cli
