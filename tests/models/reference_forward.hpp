// The independent PyTorch forward pass (reference_forward.py) run from a test: what the transformer and
// scoring-model tests compare chorus's outputs with.
#pragma once

#include "models/checkpoint.hpp"
#include "models/safetensors.hpp"
#include "models/transformer.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace chorus::models::test {

/// `model` saved into `dir`/model and run on `tokens` [batch, time] by the independent PyTorch
/// forward (tests/models/reference_forward.py): its output tensor `name` ("logits", or "scores" for
/// a scoring model). With `adapter` (a PEFT folder) the script merges it into the saved weights
/// itself. @throws std::runtime_error if the script fails.
inline torch::Tensor reference_output(Transformer& model, const std::filesystem::path& dir, const torch::Tensor& tokens,
                                      const std::string& name, const std::filesystem::path& adapter = {}) {
  save_pretrained(model, dir / "model");
  {
    std::ofstream out(dir / "tokens.json");
    out << "[";
    for (std::int64_t b = 0; b < tokens.size(0); ++b) {
      out << (b ? ",[" : "[");
      for (std::int64_t t = 0; t < tokens.size(1); ++t)
        out << (t ? "," : "") << tokens[b][t].item<std::int64_t>();
      out << "]";
    }
    out << "]";
  }
  auto command = std::string("/usr/bin/python3 ") + CHORUS_SOURCE_DIR + "/tests/models/reference_forward.py "
    + (dir / "model").string() + " " + (dir / "tokens.json").string() + " " + (dir / "reference.safetensors").string()
    + (adapter.empty() ? "" : " " + adapter.string());
  if (std::system(command.c_str()) != 0)
    throw std::runtime_error("failed: " + command);
  return SafetensorsFile::open(dir / "reference.safetensors").load(name);
}

} // namespace chorus::models::test
