#include "haproxy/config/writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "os/fd.h"
#include "os/file.h"
#include "os/process.h"

namespace ep::haproxy::config {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

Status validate_config(const std::string& binary, const std::string& path,
                       std::chrono::milliseconds timeout) {
  os::ProcessOptions po;
  po.timeout = timeout;
  auto r = os::run_process({binary, "-c", "-f", path}, po);
  if (!r.ok()) return r.error();
  if (r->timed_out) {
    return Error::unavailable(binary + " -c -f " + path + " did not finish within " +
                              std::to_string(timeout.count()) + " ms");
  }
  if (r->exit_code != 0) {
    return Error::invalid("haproxy rejected the config (" + binary + " -c -f " + path + ", exit " +
                          std::to_string(r->exit_code) + "):\n" + r->output);
  }
  return {};
}

Result<WriteOutcome> write_config(const std::string& path, std::string_view content,
                                  const WriteOptions& options) {
  namespace fs = std::filesystem;
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists) {
    auto current = os::read_file(path);
    if (current.ok() && *current == content) return WriteOutcome::kUnchanged;
  }
  const fs::path live(path);
  const fs::path dir = live.has_parent_path() ? live.parent_path() : fs::path(".");
  std::string tmp = (dir / ("." + live.filename().string() + ".ep-XXXXXX")).string();
  // A new config may hold secrets (stats passwords, userlists): not world-readable. A replaced one
  // keeps its mode, owner and group (HAProxy or a reader of the file may rely on them).
  const mode_t mode = exists ? (st.st_mode & 07777) : 0640;
  os::UniqueFd fd(::mkstemp(tmp.data()));
  if (fd.get() < 0) {
    return Error::unavailable("cannot write " + path + ": cannot create a temp file in " +
                              dir.string() + ": " + errno_text(errno) +
                              " (the live file is unchanged)");
  }
  auto fail = [&](const std::string& what, int err) -> Error {
    ::unlink(tmp.c_str());
    return Error::unavailable("cannot write " + path + ": " + what + ": " + errno_text(err) +
                              " (the live file is unchanged)");
  };
  ::fchmod(fd.get(), mode);
  if (exists && (st.st_uid != ::geteuid() || st.st_gid != ::getegid()) &&
      ::fchown(fd.get(), st.st_uid, st.st_gid) != 0) {
    return fail("keep the owner " + std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid) +
                    " of the previous file on " + tmp,
                errno);
  }
  size_t off = 0;
  while (off < content.size()) {
    const ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write to " + tmp, errno);
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("fsync " + tmp, errno);
  if (::close(fd.release()) != 0) return fail("close " + tmp, errno);

  if (options.validate) {
    Status v = validate_config(options.binary, tmp, options.validate_timeout);
    if (!v.ok()) {
      ::unlink(tmp.c_str());
      Error e = v.error();
      // HAProxy names the temp file; name the file the user knows (same content, same lines).
      for (size_t at = e.message.find(tmp); at != std::string::npos;
           at = e.message.find(tmp, at + path.size())) {
        e.message.replace(at, tmp.size(), path);
      }
      e.message = "not writing " + path + ": " + e.message + "\n(the live file is unchanged)";
      return e;
    }
  }
  if (exists && !options.backup_suffix.empty()) {
    const std::string bak = path + options.backup_suffix;
    ::unlink(bak.c_str());
    if (::link(path.c_str(), bak.c_str()) != 0) {
      return fail("keep the previous file as " + bak, errno);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename " + tmp, errno);
  os::UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() >= 0) ::fsync(dfd.get());
  return WriteOutcome::kWritten;
}

}  // namespace ep::haproxy::config
