// Process-wide settings of the long-running servers (`llmstudio ui`, `llmstudio serve`): a private umask (files
// and folders they create are 0600/0700: datasets, the database, logs, exports) and, with glibc, a cap on malloc
// arenas plus a way to hand freed memory back to the OS after a model is unloaded. Elsewhere these are no-ops
// (macOS's allocator has no per-thread arenas to cap).
#pragma once

namespace llmstudio::platform {

// umask(077) and, with glibc, M_ARENA_MAX = max_arenas. Call once at start-up, before threads are created.
void harden_server_process(int max_arenas = 4);
// Returns the free memory of every malloc arena to the OS (malloc_trim(0) with glibc); call after freeing a model.
void release_free_memory();

}  // namespace llmstudio::platform
