// chorus-tokenize: the BPE tokenizer on the command line.
//
//   chorus-tokenize --tokenizer FILE_OR_DIR            < text   prints the ids as a JSON array
//   chorus-tokenize --tokenizer FILE_OR_DIR --decode   < ids    prints the text of a JSON array of ids
//
// No special tokens are added; special tokens spelled out in the text are recognised, as Hugging
// Face tokenizers do. Exit codes: 0 done, 1 bad input or tokenizer file, 2 bad command line.
#include <chorus/errors.hpp>

#include "models/bpe_tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <cstring>
#include <iostream>
#include <iterator>

int main(int argc, char** argv) {
  std::string path;
  bool decode = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc) {
      path = argv[++i];
    } else if (std::strcmp(argv[i], "--decode") == 0) {
      decode = true;
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::cout << "Usage: chorus-tokenize --tokenizer FILE_OR_DIR [--decode]\n"
                   "Reads UTF-8 text on stdin and prints its ids as a JSON array; with --decode reads a\n"
                   "JSON array of ids and prints the text. No special tokens are added.\n";
      return 0;
    } else {
      std::cerr << "chorus-tokenize: unexpected argument '" << argv[i] << "'; try --help\n";
      return 2;
    }
  }
  if (path.empty()) {
    std::cerr << "chorus-tokenize: --tokenizer FILE_OR_DIR is required; try --help\n";
    return 2;
  }
  try {
    auto tokenizer = chorus::models::BpeTokenizer::load(path);
    std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (decode) {
      auto ids = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
      if (ids.is_discarded() || !ids.is_array())
        throw chorus::Error("stdin: expected a JSON array of token ids");
      std::vector<std::int64_t> values;
      for (const auto& id : ids) {
        if (!id.is_number_integer())
          throw chorus::Error("stdin: expected integer token ids, got " + id.dump());
        values.push_back(id.get<std::int64_t>());
      }
      std::cout << tokenizer->decode(values);
    } else {
      std::cout << nlohmann::json(tokenizer->encode(input)).dump() << "\n";
    }
  } catch (const std::exception& error) {
    std::cerr << "chorus-tokenize: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
