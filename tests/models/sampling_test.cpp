// Token choice: draws follow the softmax, each row depends on its own generator only, greedy rows
// take the argmax, and top_k / top_p restrict the candidates.
#include "models/sampling.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>

using namespace chorus::models;

namespace {

TEST(Sampling, DrawsFollowTheProbabilities) {
  std::vector<float> probabilities{0.5f, 0.0f, 0.2f, 0.25f, 0.05f};
  auto generator = at::detail::createCPUGenerator(11);
  std::vector<int> counts(probabilities.size());
  const int draws = 40000;
  for (int i = 0; i < draws; ++i)
    ++counts[static_cast<std::size_t>(draw_token(probabilities.data(), 5, generator))];
  EXPECT_EQ(counts[1], 0); // a zero is never drawn
  for (std::size_t i = 0; i < probabilities.size(); ++i) {
    const double p = probabilities[i], sd = std::sqrt(p * (1 - p) / draws);
    EXPECT_NEAR(static_cast<double>(counts[i]) / draws, p, 5 * sd + 1e-9) << "token " << i;
  }
}

TEST(Sampling, EachRowDependsOnItsOwnGeneratorOnly) {
  torch::manual_seed(2);
  auto logits = torch::randn({3, 50});
  SamplingOptions sampled{.temperature = 1.0}, greedy{.temperature = 0};
  auto run = [&](const std::vector<const SamplingOptions*>& options, std::vector<std::uint64_t> seeds) {
    std::vector<at::Generator> owned;
    for (auto seed : seeds)
      owned.push_back(at::detail::createCPUGenerator(seed));
    std::vector<at::Generator*> generators;
    for (auto& g : owned)
      generators.push_back(&g);
    std::vector<std::int64_t> tokens;
    for (int step = 0; step < 20; ++step)
      for (auto token : sample_tokens(logits, options, generators))
        tokens.push_back(token);
    return tokens;
  };
  auto alone = run({&sampled, &sampled, &sampled}, {1, 2, 3});
  auto again = run({&sampled, &sampled, &sampled}, {1, 2, 3});
  EXPECT_EQ(alone, again);
  // Row 1 with a greedy neighbour and another seed beside it draws the same tokens.
  auto mixed = run({&greedy, &sampled, &sampled}, {9, 2, 4});
  for (std::size_t i = 1; i < alone.size(); i += 3)
    EXPECT_EQ(mixed[i], alone[i]);
  for (std::size_t i = 0; i < mixed.size(); i += 3)
    EXPECT_EQ(mixed[i], logits[0].argmax().item<std::int64_t>());
}

TEST(Sampling, TopKAndTopPRestrictTheCandidates) {
  torch::manual_seed(3);
  auto logits = torch::randn({1, 40});
  auto order = std::get<1>(logits[0].sort(-1, /*descending=*/true));
  SamplingOptions top3{.temperature = 2.0, .top_k = 3}, nucleus{.temperature = 1.0, .top_p = 1e-6};
  auto generator = at::detail::createCPUGenerator(5);
  std::set<std::int64_t> seen;
  for (int i = 0; i < 300; ++i) {
    seen.insert(sample_tokens(logits, {&top3}, {&generator})[0]);
    EXPECT_EQ(sample_tokens(logits, {&nucleus}, {&generator})[0], order[0].item<std::int64_t>());
  }
  std::set<std::int64_t> top{order[0].item<std::int64_t>(), order[1].item<std::int64_t>(),
                             order[2].item<std::int64_t>()};
  EXPECT_EQ(seen, top); // all three drawn at temperature 2, nothing else
}

} // namespace

// The draw that runs where the probabilities are (a GPU) chooses what the row-by-row CPU draw
// chooses, from the same generators, including rows with zeros and a near-one-hot row.
TEST(Sampling, TheWholeBatchDrawChoosesWhatTheRowByRowDrawChooses) {
  torch::manual_seed(4);
  auto probabilities = (torch::randn({64, 300}) * 3).softmax(-1);
  probabilities.narrow(1, 0, 40).zero_(); // tokens never drawn
  probabilities[5].zero_();
  probabilities[5][299] = 1.0f; // only the last token can be drawn
  probabilities = probabilities.contiguous();
  std::vector<at::Generator> by_row, whole;
  std::vector<at::Generator*> whole_pointers;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    by_row.push_back(at::detail::createCPUGenerator(seed + 100));
    whole.push_back(at::detail::createCPUGenerator(seed + 100));
  }
  for (auto& generator : whole)
    whole_pointers.push_back(&generator);
  for (int round = 0; round < 3; ++round) {
    auto drawn = draw_tokens(probabilities, whole_pointers);
    ASSERT_EQ(drawn.size(), 64u);
    for (std::int64_t row = 0; row < 64; ++row) {
      auto expected = draw_token(probabilities[row].data_ptr<float>(), 300, by_row[static_cast<std::size_t>(row)]);
      EXPECT_EQ(drawn[static_cast<std::size_t>(row)], expected) << "row " << row << ", round " << round;
      EXPECT_GE(drawn[static_cast<std::size_t>(row)], 40);
    }
    EXPECT_EQ(drawn[5], 299);
  }
}
