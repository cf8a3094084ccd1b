// RunCheckpoints: naming, atomic publication (write, fsync, rename, fsync the folder), pruning, and
// reading back for --resume.
#include "runtime/checkpoints.hpp"

#include <chorus/errors.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <unistd.h>

namespace chorus::detail {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "chorus-checkpoint-1";
constexpr const char* kManifest = "checkpoint.json";
constexpr const char* kLatest = "latest";
constexpr const char* kPartial = ".partial-";

[[noreturn]] void fail(const fs::path& path, const std::string& what) {
  throw CheckpointError(path.string() + ": " + what);
}

std::string folder_name(const CheckpointManifest& m) {
  std::string stage;
  for (char c : m.stage)
    stage += std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ? c : '_';
  char text[64];
  std::snprintf(text, sizeof(text), "%04d-", m.ordinal);
  std::string name = text + stage;
  std::snprintf(text, sizeof(text), "-step%06lld", static_cast<long long>(m.step));
  return name + text + (m.finished ? "-end" : "");
}

// Makes a file's (or a folder's entries') contents durable before a rename publishes them.
void sync(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail(path, std::string("cannot open to sync: ") + std::strerror(errno));
  int result = ::fsync(fd);
  int error = errno;
  ::close(fd);
  if (result != 0)
    fail(path, std::string("cannot sync to disk: ") + std::strerror(error));
}

void sync_tree(const fs::path& folder) {
  for (const auto& entry : fs::recursive_directory_iterator(folder))
    sync(entry.path());
  sync(folder);
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  if (!out)
    fail(path, "cannot write (disk full or not writable?)");
}

// Replaces `path` by a file holding `text`, all or nothing.
void replace_file(const fs::path& path, const std::string& text) {
  auto partial = path;
  partial += ".partial";
  write_file(partial, text);
  sync(partial);
  std::error_code ec;
  fs::rename(partial, path, ec);
  if (ec)
    fail(path, "cannot replace: " + ec.message());
  sync(path.parent_path());
}

Json to_json(const CheckpointManifest& m) {
  return {{"format", kFormat},
          {"ordinal", m.ordinal},
          {"stage", m.stage},
          {"step", m.step},
          {"finished", m.finished},
          {"weight_version", m.weight_version},
          {"metrics_bytes", m.metrics_bytes},
          {"state", m.state}};
}

} // namespace

CheckpointManifest read_manifest(const fs::path& folder) {
  auto file = folder / kManifest;
  std::ifstream in(file);
  if (!in)
    fail(file, "missing: not a complete checkpoint");
  auto json = Json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object())
    fail(file, "not a JSON object");
  if (!json.contains("format") || json["format"] != kFormat)
    fail(file, std::string("\"format\" must be \"") + kFormat + "\"");
  CheckpointManifest m;
  auto get = [&](const char* key, auto& out, bool (Json::*is)() const noexcept) {
    if (!json.contains(key) || !(json[key].*is)())
      fail(file, std::string("key \"") + key + "\" is missing or of the wrong type");
    out = json[key].get<std::decay_t<decltype(out)>>();
  };
  get("ordinal", m.ordinal, &Json::is_number_integer);
  get("stage", m.stage, &Json::is_string);
  get("step", m.step, &Json::is_number_integer);
  get("finished", m.finished, &Json::is_boolean);
  get("weight_version", m.weight_version, &Json::is_number_integer);
  get("metrics_bytes", m.metrics_bytes, &Json::is_number_unsigned);
  get("state", m.state, &Json::is_object);
  if (m.ordinal < 1 || m.step < 0)
    fail(file, "\"ordinal\" must be >= 1 and \"step\" >= 0");
  m.name = folder.filename().string();
  return m;
}

RunCheckpoints::RunCheckpoints(Options options) : options_(std::move(options)) {
  if (!options_.resume)
    return;
  auto latest_file = options_.dir / kLatest;
  std::ifstream in(latest_file);
  std::string name;
  if (!in || !std::getline(in, name) || name.empty())
    fail(latest_file, "no complete checkpoint to resume from (the run wrote none before it ended)");
  latest_ = read_manifest(options_.dir / name);
  for (auto& [ordinal, manifest] : committed())
    if (manifest.finished && ordinal < latest_->ordinal)
      finished_.emplace(ordinal, std::move(manifest));
  // What was logged after the checkpoint is logged again by the resumed steps (a run that logs no
  // metrics file has none to cut).
  if (options_.metrics.empty())
    return;
  std::error_code ec;
  auto size = fs::file_size(options_.metrics, ec);
  if (ec || size < latest_->metrics_bytes)
    fail(options_.metrics,
         "shorter than when checkpoint " + name + " was written (" + std::to_string(latest_->metrics_bytes)
           + " bytes): the run's metrics were changed");
  fs::resize_file(options_.metrics, latest_->metrics_bytes, ec);
  if (ec)
    fail(options_.metrics, "cannot cut back to the checkpoint: " + ec.message());
}

std::map<int, CheckpointManifest> RunCheckpoints::committed() const {
  // Several folders of one ordinal: a stage's end checkpoint wins, then the later step.
  std::map<int, CheckpointManifest> result;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options_.dir, ec)) {
    auto name = entry.path().filename().string();
    if (!entry.is_directory() || name.starts_with(kPartial) || !fs::exists(entry.path() / kManifest))
      continue;
    CheckpointManifest manifest;
    try {
      manifest = read_manifest(entry.path());
    } catch (const CheckpointError&) {
      continue; // a leftover of a killed run that `latest` never named
    }
    auto& slot = result[manifest.ordinal];
    if (slot.name.empty() || std::tie(manifest.finished, manifest.step) > std::tie(slot.finished, slot.step))
      slot = std::move(manifest);
  }
  return result;
}

std::optional<CheckpointManifest> RunCheckpoints::resume_point(int ordinal, const std::string& stage) const {
  if (!latest_ || ordinal > latest_->ordinal)
    return std::nullopt;
  const CheckpointManifest* point = nullptr;
  if (ordinal == latest_->ordinal) {
    point = &*latest_;
  } else {
    auto found = finished_.find(ordinal);
    if (found == finished_.end())
      fail(options_.dir,
           "the end checkpoint of stage " + std::to_string(ordinal) + " ('" + stage
             + "') is missing: it was deleted, or the recipe begins its stages in another order now");
    point = &found->second;
  }
  if (point->stage != stage)
    fail(folder(*point),
         "stage " + std::to_string(ordinal) + " of the resumed run was '" + point->stage + "', but this run's is '"
           + stage + "': the recipe changed since the checkpoint");
  return *point;
}

fs::path RunCheckpoints::begin_write(const CheckpointManifest& manifest) {
  auto partial = options_.dir / (kPartial + folder_name(manifest));
  std::error_code ec;
  fs::remove_all(partial, ec);
  fs::create_directories(partial, ec);
  if (ec)
    fail(partial, "cannot create the checkpoint folder: " + ec.message());
  return partial;
}

fs::path RunCheckpoints::commit(const fs::path& partial, CheckpointManifest manifest) {
  std::error_code ec;
  manifest.metrics_bytes = options_.metrics.empty() ? 0 : fs::file_size(options_.metrics, ec);
  if (ec)
    fail(options_.metrics, "cannot measure: " + ec.message());
  manifest.name = folder_name(manifest);
  write_file(partial / kManifest, to_json(manifest).dump(2) + "\n");
  sync_tree(partial);
  auto final_folder = options_.dir / manifest.name;
  fs::remove_all(final_folder, ec); // a checkpoint of the same step that a killed run wrote but never named latest
  fs::rename(partial, final_folder, ec);
  if (ec)
    fail(final_folder, "cannot rename the finished checkpoint into place: " + ec.message());
  sync(options_.dir);
  replace_file(options_.dir / kLatest, manifest.name + "\n");
  prune(manifest);
  return final_folder;
}

void RunCheckpoints::prune(const CheckpointManifest& kept) const {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options_.dir, ec)) {
    if (!entry.is_directory())
      continue;
    auto name = entry.path().filename().string();
    bool keep = name == kept.name;
    if (!keep && !name.starts_with(kPartial) && fs::exists(entry.path() / kManifest)) {
      try {
        auto manifest = read_manifest(entry.path());
        keep = manifest.finished && manifest.ordinal < kept.ordinal;
      } catch (const CheckpointError&) {
      }
    }
    if (!keep)
      fs::remove_all(entry.path(), ec); // best effort: a leftover folder is pruned next time
  }
}

bool RunCheckpoints::defer_stop() noexcept {
  if (active_stages_.load() <= 0)
    return false;
  stop_pending_.store(true);
  return true;
}

} // namespace chorus::detail
