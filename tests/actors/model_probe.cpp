// model_probe FOLDER PROMPT_IDS COMPLETION_IDS: loads a saved model folder in a fresh process and
// prints the completion's log-probs as one JSON line `LOGPROBS [...]` (ids comma-separated).
#include "models/generation.hpp"
#include "models/pretrained.hpp"

#include <nlohmann/json.hpp>

#include <iostream>
#include <sstream>

namespace {

std::vector<std::int64_t> parse_ids(const std::string& text) {
  std::vector<std::int64_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ','))
    ids.push_back(std::stoll(item));
  return ids;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: model_probe FOLDER PROMPT_IDS COMPLETION_IDS\n";
    return 2;
  }
  try {
    at::set_num_threads(1);
    auto model = chorus::models::load_pretrained_model(argv[1]);
    auto scores = chorus::models::score_logprobs(model.model, {parse_ids(argv[2])}, {parse_ids(argv[3])});
    std::cout << "LOGPROBS " << nlohmann::json(scores.front()).dump() << std::endl;
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "model_probe: " << error.what() << "\n";
    return 1;
  }
}
