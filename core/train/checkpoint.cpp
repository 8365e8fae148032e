// Checkpoint files: torch zip archives holding a string-keyed dict with a content hash.
#include "core/train/checkpoint.h"

#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

namespace jslds {

CheckpointError::CheckpointError(const std::filesystem::path& path, const std::string& message)
    : std::runtime_error(path.string() + ": " + message), path_(path) {}

namespace {

constexpr const char* kCheckpointFormat = "jslds-checkpoint/1";
constexpr const char* kTrainStateFormat = "jslds-train-state/1";
constexpr const char* kContentKey = "content_sha256";

std::vector<char> read_whole_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw CheckpointError(file, "cannot open for reading (does the file exist?)");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw CheckpointError(file, "read error");
  return bytes;
}

// The hash input of one entry: name, kind, and the exact content.
void append_entry(std::string& buffer, const std::string& key, const c10::IValue& value,
                  const std::filesystem::path& file) {
  buffer.append(key).push_back('\0');
  if (value.isTensor()) {
    const at::Tensor t = value.toTensor().cpu().contiguous();
    buffer.append("tensor:").append(c10::toString(t.scalar_type())).append(":");
    for (const int64_t s : t.sizes()) buffer.append(std::to_string(s)).push_back(',');
    buffer.push_back('\0');
    buffer.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  } else if (value.isString()) {
    buffer.append("string:").append(value.toStringRef());
  } else if (value.isInt()) {
    buffer.append("int:").append(std::to_string(value.toInt()));
  } else {
    throw CheckpointError(file, fmt::format("entry '{}' has unsupported type {}", key, value.tagKind()));
  }
  buffer.push_back('\0');
}

std::string content_hash(const std::map<std::string, c10::IValue>& entries, const std::filesystem::path& file) {
  std::string buffer;
  for (const auto& [key, value] : entries) {
    if (key != kContentKey) append_entry(buffer, key, value, file);
  }
  return sha256_hex(buffer);
}

FileDigest save_entries(const std::filesystem::path& file, std::map<std::string, c10::IValue> entries) {
  entries[kContentKey] = content_hash(entries, file);
  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  for (const auto& [key, value] : entries) dict.insert(key, value);
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  try {
    return write_file_atomically(file, std::string_view(bytes.data(), bytes.size()));
  } catch (const FileWriteError& e) {
    throw CheckpointError(file, e.problem());
  }
}

// Reads, parses and verifies a file written by save_entries with the given format tag.
std::map<std::string, c10::IValue> load_entries(const std::filesystem::path& file, const char* format) {
  const std::vector<char> bytes = read_whole_file(file);
  c10::IValue root;
  try {
    root = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    throw CheckpointError(file, fmt::format("not a readable torch archive ({} bytes; truncated or corrupted?): {}",
                                            bytes.size(), e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw CheckpointError(file, fmt::format("not a readable torch archive ({} bytes; truncated or corrupted?): {}",
                                            bytes.size(), e.what()));
  }
  if (!root.isGenericDict()) throw CheckpointError(file, "expected a dict at the top level of the archive");
  std::map<std::string, c10::IValue> entries;
  for (const auto& item : root.toGenericDict()) {
    if (!item.key().isString()) throw CheckpointError(file, "expected string keys in the top-level dict");
    entries.emplace(item.key().toStringRef(), item.value());
  }
  auto format_it = entries.find("format");
  if (format_it == entries.end() || !format_it->second.isString() || format_it->second.toStringRef() != format) {
    const std::string found = format_it == entries.end()       ? std::string("missing")
                              : format_it->second.isString() ? "'" + format_it->second.toStringRef() + "'"
                                                             : "a " + format_it->second.tagKind();
    std::string hint;
    if (format_it != entries.end() && format_it->second.isString() &&
        format_it->second.toStringRef() == kTrainStateFormat)
      hint = ": this is a training state (train_state.pt, the optimiser's side of a checkpoint); give checkpoint.pt "
             "beside it, or the run directory";
    else if (format_it != entries.end() && format_it->second.isString() &&
             format_it->second.toStringRef() == kCheckpointFormat)
      hint = ": this is a model checkpoint (checkpoint.pt), not a training state";
    throw CheckpointError(file, fmt::format("not a {} file (entry 'format' is {}){}", format, found, hint));
  }
  auto hash_it = entries.find(kContentKey);
  if (hash_it == entries.end() || !hash_it->second.isString()) {
    throw CheckpointError(file, "entry 'content_sha256' is missing: cannot verify the file, refusing to load it");
  }
  const std::string computed = content_hash(entries, file);
  if (computed != hash_it->second.toStringRef()) {
    throw CheckpointError(file, fmt::format("content hash mismatch (stored {}, computed {}): the file is corrupted, "
                                            "refusing to load it",
                                            hash_it->second.toStringRef(), computed));
  }
  return entries;
}

const c10::IValue& require(const std::map<std::string, c10::IValue>& entries, const std::string& key,
                           const std::filesystem::path& file) {
  auto it = entries.find(key);
  if (it == entries.end()) throw CheckpointError(file, fmt::format("entry '{}' is missing", key));
  return it->second;
}

int64_t require_int(const std::map<std::string, c10::IValue>& entries, const std::string& key,
                    const std::filesystem::path& file) {
  const c10::IValue& v = require(entries, key, file);
  if (!v.isInt()) throw CheckpointError(file, fmt::format("entry '{}' should be an int, is {}", key, v.tagKind()));
  return v.toInt();
}

at::Tensor require_tensor(const std::map<std::string, c10::IValue>& entries, const std::string& key,
                          const std::filesystem::path& file) {
  const c10::IValue& v = require(entries, key, file);
  if (!v.isTensor()) throw CheckpointError(file, fmt::format("entry '{}' should be a tensor, is {}", key, v.tagKind()));
  return v.toTensor();
}

std::string require_string(const std::map<std::string, c10::IValue>& entries, const std::string& key,
                           const std::filesystem::path& file) {
  const c10::IValue& v = require(entries, key, file);
  if (!v.isString()) throw CheckpointError(file, fmt::format("entry '{}' should be a string, is {}", key, v.tagKind()));
  return v.toStringRef();
}

// A string entry, or "" when absent (entries added after format version 1 was fixed).
std::string optional_string(const std::map<std::string, c10::IValue>& entries, const std::string& key) {
  auto it = entries.find(key);
  return it != entries.end() && it->second.isString() ? it->second.toStringRef() : std::string();
}

// Copies every parameter and buffer of `model` from the verified entries.
void copy_into(const std::map<std::string, c10::IValue>& entries, JsldsModelImpl& model,
               const std::filesystem::path& file) {
  torch::NoGradGuard no_grad;
  auto copy_all = [&](const auto& named) {
    for (const auto& item : named) {
      const at::Tensor source = require_tensor(entries, item.key(), file);
      at::Tensor target = item.value();
      if (source.sizes() != target.sizes() || source.scalar_type() != target.scalar_type()) {
        throw CheckpointError(file, fmt::format("'{}' is {} {}, but the model expects {} {}", item.key(),
                                                c10::toString(source.scalar_type()), c10::str(source.sizes()),
                                                c10::toString(target.scalar_type()), c10::str(target.sizes())));
      }
      target.copy_(source);
    }
  };
  copy_all(model.named_parameters());
  copy_all(model.named_buffers());
}

}  // namespace


FileDigest save_checkpoint(const std::filesystem::path& file, const JsldsModelImpl& model, const RunConfig& config,
                           int64_t step, const std::string& data_sha256) {
  std::map<std::string, c10::IValue> entries;
  for (const auto& item : model.named_parameters()) entries[item.key()] = item.value().detach().cpu().contiguous();
  for (const auto& item : model.named_buffers()) entries[item.key()] = item.value().detach().cpu().contiguous();
  entries["config"] = to_toml(config);
  entries["format"] = std::string(kCheckpointFormat);
  entries["step"] = step;
  if (!data_sha256.empty()) entries["data_sha256"] = data_sha256;
  const ModelDims& d = model.options.dims;
  entries["dims.neurons"] = d.neurons;
  entries["dims.heldin_neurons"] = d.heldin_neurons;
  entries["dims.external_inputs"] = d.external_inputs;
  entries["dims.outputs"] = d.outputs;
  return save_entries(file, std::move(entries));
}

LoadedModel load_checkpoint(const std::filesystem::path& checkpoint_pt) {
  const auto entries = load_entries(checkpoint_pt, kCheckpointFormat);
  LoadedModel loaded;
  loaded.config_toml = require_string(entries, "config", checkpoint_pt);
  loaded.config = parse_config(loaded.config_toml, checkpoint_pt.string() + " (entry 'config')");
  loaded.step = require_int(entries, "step", checkpoint_pt);
  loaded.dims.neurons = require_int(entries, "dims.neurons", checkpoint_pt);
  loaded.dims.heldin_neurons = require_int(entries, "dims.heldin_neurons", checkpoint_pt);
  loaded.dims.external_inputs = require_int(entries, "dims.external_inputs", checkpoint_pt);
  loaded.dims.outputs = require_int(entries, "dims.outputs", checkpoint_pt);
  try {
    loaded.model = JsldsModel(JsldsModelOptions(loaded.config.model, loaded.dims));
  } catch (const c10::Error& e) {
    throw CheckpointError(checkpoint_pt, fmt::format("its configuration does not describe a valid model: {}",
                                                     e.what_without_backtrace()));
  }
  copy_into(entries, *loaded.model, checkpoint_pt);
  loaded.data_sha256 = optional_string(entries, "data_sha256");
  return loaded;
}

int64_t load_parameters(const std::filesystem::path& checkpoint_pt, JsldsModelImpl& model,
                        std::string* config_toml) {
  const auto entries = load_entries(checkpoint_pt, kCheckpointFormat);
  copy_into(entries, model, checkpoint_pt);
  if (config_toml) *config_toml = require_string(entries, "config", checkpoint_pt);
  return require_int(entries, "step", checkpoint_pt);
}

FileDigest save_train_state(const std::filesystem::path& file, const TrainState& state) {
  std::map<std::string, c10::IValue> entries;
  entries["format"] = std::string(kTrainStateFormat);
  entries["step"] = state.step;
  entries["config_sha256"] = state.config_sha256;
  if (!state.data_sha256.empty()) entries["data_sha256"] = state.data_sha256;
  if (!state.builds.empty()) entries["jslds_builds"] = state.builds;
  // Whole microseconds: the content hash covers ints, strings and tensors, not floats.
  entries["train_microseconds"] = static_cast<int64_t>(std::llround(state.train_seconds * 1e6));
  entries["optimizer"] = state.optimizer_archive;
  entries["rng.global_cpu"] = state.global_rng_state;
  entries["rng.batches"] = state.batch_rng_state;
  return save_entries(file, std::move(entries));
}

TrainState load_train_state(const std::filesystem::path& file) {
  const auto entries = load_entries(file, kTrainStateFormat);
  TrainState state;
  state.step = require_int(entries, "step", file);
  state.config_sha256 = require_string(entries, "config_sha256", file);
  state.optimizer_archive = require_tensor(entries, "optimizer", file);
  state.global_rng_state = require_tensor(entries, "rng.global_cpu", file);
  state.batch_rng_state = require_tensor(entries, "rng.batches", file);
  state.data_sha256 = optional_string(entries, "data_sha256");
  state.builds = optional_string(entries, "jslds_builds");
  if (auto it = entries.find("train_microseconds"); it != entries.end() && it->second.isInt()) {
    state.train_seconds = static_cast<double>(it->second.toInt()) * 1e-6;
    state.has_train_seconds = true;
  }
  return state;
}

}  // namespace jslds
