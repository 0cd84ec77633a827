// umask, malloc arena cap and trim of the server processes (see process_limits.h).
#include "llmstudio/platform/process_limits.h"

#include <sys/stat.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace llmstudio::platform {

void harden_server_process(int max_arenas) {
  ::umask(077);
#if defined(__GLIBC__)
  if (max_arenas > 0) ::mallopt(M_ARENA_MAX, max_arenas);
#else
  (void)max_arenas;
#endif
}

void release_free_memory() {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
}

}  // namespace llmstudio::platform
