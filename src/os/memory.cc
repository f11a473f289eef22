#include "os/memory.h"

#include <malloc.h>

namespace ep::os {

void tune_malloc() {
  ::mallopt(M_ARENA_MAX, 2);
  ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

bool release_free_memory() { return ::malloc_trim(0) != 0; }

}  // namespace ep::os
