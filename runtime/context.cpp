// RecipeContext: a plain bundle; the one behaviour it has is asking the runtime whether to stop.
#include <chorus/context.hpp>

#include "runtime/runtime.hpp"

namespace chorus {

RecipeContext::RecipeContext(Runtime& runtime, std::string recipe_name, std::filesystem::path output_dir,
                             MetricsLogger metrics, std::shared_ptr<spdlog::logger> log)
  : runtime_(&runtime), recipe_name_(std::move(recipe_name)), output_dir_(std::move(output_dir)),
    metrics_(std::move(metrics)), log_(std::move(log)) {}

asio::any_io_executor RecipeContext::executor() const {
  return runtime_->executor();
}

bool RecipeContext::stop_requested() const noexcept {
  return runtime_->stop_requested();
}

} // namespace chorus
