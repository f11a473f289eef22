// Replays inputs through a libFuzzer target without libFuzzer (fuzz/CMakeLists.txt): every file
// named on the command line, and every file under each directory named, in a sorted order, is
// passed once to LLVMFuzzerTestOneInput. A target's own checks abort on a broken invariant, and
// the sanitizers of the build report memory errors and undefined behaviour: the test fails.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "os/file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      for (const auto& e : fs::recursive_directory_iterator(arg, ec)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
    } else if (fs::is_regular_file(arg, ec)) {
      files.push_back(arg);
    } else {
      std::fprintf(stderr, "replay: %s: no such file or directory\n", argv[i]);
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  std::size_t bytes = 0;
  for (const auto& f : files) {
    auto text = ep::os::read_file(f.string(), 16 * 1024 * 1024, false);
    if (!text) {
      std::fprintf(stderr, "replay: %s: %s\n", f.c_str(), text.error().message.c_str());
      return 2;
    }
    bytes += text->size();
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(text->data()), text->size());
  }
  std::printf("replay: %zu inputs, %zu bytes, no failure\n", files.size(), bytes);
  return files.empty() ? 2 : 0;
}
