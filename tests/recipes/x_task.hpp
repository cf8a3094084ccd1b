// The toy RL task the algorithm tests share: open-ended prompts, rewarded for writing 'x'.
#pragma once

#include <chorus/dataset.hpp>
#include <chorus/grader.hpp>

#include <algorithm>
#include <vector>

namespace chorus::test {

/// The share of the completion's characters that are 'x': a reward a policy can climb token by token.
inline double share_of_x(const Sample& sample) {
  if (sample.completion.empty())
    return 0.0;
  return static_cast<double>(std::count(sample.completion.begin(), sample.completion.end(), 'x'))
    / static_cast<double>(sample.completion.size());
}

/// Four open-ended prompts.
inline std::vector<Prompt> x_task_prompts() {
  std::vector<Prompt> result;
  for (const char* text : {"Write something.", "Say anything.", "Go on.", "Tell me more."})
    result.push_back({{{"user", text}}, Json::object()});
  return result;
}

} // namespace chorus::test
