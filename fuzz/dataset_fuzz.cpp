// Fuzzes the JSONL dataset reader with each kind of example, strict and skipping bad lines: any bytes
// either read as examples or fail with a DatasetError naming the file and line.
#include <chorus/dataset.hpp>
#include <chorus/errors.hpp>

#include "fuzz/input_file.hpp"

namespace {

template <class Kind>
void read_both_ways(const std::filesystem::path& path) {
  for (bool skip : {false, true}) {
    try {
      std::vector<std::string> skipped;
      auto examples = chorus::read_dataset<Kind>(path, skip, &skipped);
      if (examples.empty())
        throw std::logic_error("read_dataset returned no examples without an error");
    } catch (const chorus::DatasetError&) {
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto path = chorus::fuzz::input_file("data.jsonl", data, size);
  read_both_ways<chorus::Completion>(path);
  read_both_ways<chorus::Prompt>(path);
  read_both_ways<chorus::Preference>(path);
  return 0;
}
