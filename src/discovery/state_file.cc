#include "discovery/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "os/file.h"
#include "os/json.h"

namespace ep::discovery {

using nlohmann::json;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string render_state(const SavedState& state, std::int64_t now,
                         const OperatorMaint* operator_maint) {
  json j;
  j["version"] = 1;
  j["written_at"] = now;
  j["backends"] = json::object();
  for (const auto& [backend, sources] : state) {
    json jb = json::object();
    for (const auto& [source, saved] : sources) {
      json eps = json::array();
      for (const auto& e : saved.endpoints) {
        json je = {{"address", e.address}, {"port", e.port}, {"backup", e.backup}};
        if (e.weight) je["weight"] = *e.weight;
        if (!e.id.empty()) je["id"] = e.id;
        eps.push_back(std::move(je));
      }
      jb[source] = {{"saved_at", saved.saved_at}, {"endpoints", std::move(eps)}};
    }
    j["backends"][backend] = {{"sources", std::move(jb)}};
  }
  if (operator_maint != nullptr && !operator_maint->empty()) j["operator_maint"] = *operator_maint;
  return j.dump(1) + "\n";
}

Result<SavedState> parse_state(std::string_view text, const std::string& where,
                               OperatorMaint* operator_maint) {
  auto parsed = os::parse_json(text, where);
  if (!parsed) return parsed.error();
  const json& j = *parsed;
  auto bad = [&](const std::string& what) { return Error::invalid(where + ": " + what); };
  if (!j.is_object() || !j.contains("version") || j["version"] != 1) {
    return bad("not an ElasticProxy state file (version 1 expected)");
  }
  if (!j.contains("backends") || !j["backends"].is_object()) return bad("no 'backends' object");
  SavedState out;
  for (const auto& [backend, jb] : j["backends"].items()) {
    if (!jb.is_object() || !jb.contains("sources") || !jb["sources"].is_object()) {
      return bad("backend '" + backend + "': no 'sources' object");
    }
    for (const auto& [source, js] : jb["sources"].items()) {
      const std::string who = "backend '" + backend + "' source '" + source + "'";
      if (!js.is_object() || !js.contains("saved_at") || !js["saved_at"].is_number_integer() ||
          !js.contains("endpoints") || !js["endpoints"].is_array()) {
        return bad(who + ": needs 'saved_at' (integer) and 'endpoints' (array)");
      }
      SavedSource s;
      s.saved_at = js["saved_at"].get<std::int64_t>();
      for (const auto& je : js["endpoints"]) {
        if (!je.is_object() || !je.contains("address") || !je["address"].is_string() ||
            !je.contains("port") || !je["port"].is_number_unsigned()) {
          return bad(who + ": an endpoint needs 'address' (string) and 'port' (number)");
        }
        Endpoint e;
        e.address = je["address"].get<std::string>();
        const auto port = je["port"].get<std::uint64_t>();
        if (port > 65535) return bad(who + ": port " + std::to_string(port) + " out of range");
        e.port = static_cast<std::uint32_t>(port);
        if (je.contains("weight")) {
          if (!je["weight"].is_number_integer()) return bad(who + ": 'weight' must be an integer");
          e.weight = je["weight"].get<long>();
        }
        if (je.contains("backup")) e.backup = je["backup"].is_boolean() && je["backup"].get<bool>();
        if (je.contains("id") && je["id"].is_string()) e.id = je["id"].get<std::string>();
        s.endpoints.push_back(std::move(e));
      }
      out[backend][source] = std::move(s);
    }
  }
  if (operator_maint != nullptr && j.contains("operator_maint")) {
    const json& om = j["operator_maint"];
    if (!om.is_object()) return bad("'operator_maint' must be an object");
    for (const auto& [backend, names] : om.items()) {
      if (!names.is_array()) return bad("operator_maint '" + backend + "' must be a list");
      for (const auto& n : names) {
        if (!n.is_string()) return bad("operator_maint '" + backend + "': names are strings");
        (*operator_maint)[backend].push_back(n.get<std::string>());
      }
    }
  }
  return out;
}

Result<SavedState> load_state(const std::string& path, OperatorMaint* operator_maint) {
  auto text = os::read_file(path);
  if (!text) return text.error();
  return parse_state(*text, path, operator_maint);
}

Status write_state(const std::string& path, const std::string& text) {
  const std::filesystem::path p(path);
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  const std::string tmp = path + ".tmp";
  auto fail = [&](const std::string& what) {
    const std::string msg = "state file " + path + ": " + what + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return Error::unavailable(msg);
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return fail("cannot create " + tmp);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return fail("cannot write " + tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail("cannot fsync " + tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename " + tmp);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

std::string default_state_path() {
  if (const char* d = std::getenv("STATE_DIRECTORY"); d != nullptr && *d != '\0') {
    std::string dir(d);
    if (auto colon = dir.find(':'); colon != std::string::npos) dir.resize(colon);
    return dir + "/state.json";
  }
  std::error_code ec;
  if (std::filesystem::is_directory("/var/lib/elasticproxy", ec)) {
    return "/var/lib/elasticproxy/state.json";
  }
  return "";
}

}  // namespace ep::discovery
