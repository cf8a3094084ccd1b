// TextStream: the pieces of a streamed completion never split a UTF-8 character, never show text a
// stop string cuts, and add up to the finished completion's text.
#include "models/generation.hpp"
#include "models/text_stream.hpp"
#include "models/tokenizer.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace chorus::models;

TEST(TextStream, HoldsBackPartialCharactersAndStopPrefixes) {
  EXPECT_EQ(final_text_length("abc", {}), 3u);
  EXPECT_EQ(final_text_length("ab\xE2\x82", {}), 2u);     // the first two bytes of "€"
  EXPECT_EQ(final_text_length("ab\xE2\x82\xAC", {}), 5u); // "€" complete
  EXPECT_EQ(final_text_length("ab\xF0\x9F\x98", {}), 2u); // three bytes of a four-byte emoji
  EXPECT_EQ(final_text_length("ab\xFF", {}), 3u);         // never the start of a character: final
  EXPECT_EQ(final_text_length("ab\xE2"
                              "c",
                              {}),
            4u);                                            // broken for good: final
  EXPECT_EQ(final_text_length("hello wor", {"world"}), 6u); // "wor" may become the stop string
  EXPECT_EQ(final_text_length("hello world!", {"world"}), 6u);
  EXPECT_EQ(final_text_length("a\n\n", {"\n\n\n", "x"}), 1u);
  EXPECT_EQ(final_text_length("ab", {"b"}), 1u); // the stop string itself is never shown
}

TEST(TextStream, PiecesAddUpToTheFinishedText) {
  auto tokenizer = std::make_shared<ByteTokenizer>();
  std::mt19937 random(5);
  const std::vector<std::string> stops = {"END", "\n\n"};
  // Completions of random bytes, UTF-8 characters, stop strings and special tokens.
  const std::vector<std::string> atoms = {
    "a", "b", " ", "\n", "E", "N", "D", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xFF", "\x80"};
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<std::int64_t> tokens;
    for (int i = 0; i < 30; ++i) {
      if (random() % 10 == 0) {
        tokens.push_back(ByteTokenizer::kImEnd);
        continue;
      }
      for (unsigned char byte : atoms[random() % atoms.size()])
        tokens.push_back(byte);
    }
    TextStream stream(tokenizer, stops);
    std::string streamed;
    std::vector<std::int64_t> so_far;
    for (auto token : tokens) {
      so_far.push_back(token);
      auto piece = stream.advance(so_far);
      streamed += piece;
    }
    auto finished = text_before_stop(tokenizer->decode(tokens, true), stops);
    ASSERT_LE(streamed.size(), finished.size());
    EXPECT_EQ(finished.compare(0, streamed.size(), streamed), 0) << "trial " << trial;
    EXPECT_EQ(stream.emitted(), streamed.size());
    // What was held back at the end is only a partial character or the start of a stop string.
    EXPECT_LE(finished.size() - streamed.size(), 3u) << "trial " << trial;
  }
}
