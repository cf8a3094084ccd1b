#include "recipes/step_callbacks.hpp"

namespace chorus::detail {

Task<void> run_callbacks(const std::vector<Callback>& callbacks, StepEnd end, Metrics& metrics) {
  for (const auto& callback : callbacks) {
    auto figures = co_await callback(end);
    metrics.insert(metrics.end(), figures.begin(), figures.end());
  }
}

} // namespace chorus::detail
