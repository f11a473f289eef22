#pragma once
// The process's malloc policy (glibc), in one place: how the daemon keeps its resident memory
// close to what it really holds (docs/benchmarks.md, "Scale").

#include <cstddef>

namespace ep::os {

// At process start, before any thread: two malloc arenas (glibc's default is 8 per core, each
// keeping its own free pages) and a fixed mmap threshold, so the multi-MiB buffers of a whole
// HAProxy read are unmapped when freed (with the default, glibc raises the threshold after the
// first such free and later ones stay in an arena, fragmented).
void tune_malloc();

// Hands the free pages inside the heap back to the kernel (malloc_trim(0)): start-up and big
// changes leave a peak of freed memory that glibc keeps resident otherwise. Costs about a
// millisecond on a large heap: call it after bursts, not on a timer. Returns true when memory
// was released.
bool release_free_memory();

}  // namespace ep::os
