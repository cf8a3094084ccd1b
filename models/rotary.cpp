// Rotary frequencies. The scaled variants follow the published formulas as transformers implements
// them (modeling_rope_utils): the same inputs must give a checkpoint the angles it was trained with.
#include "models/rotary.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace chorus::models {

namespace {

// Llama 3.1: wavelengths longer than the pre-training context / low_freq_factor are stretched by the
// factor, those shorter than context / high_freq_factor are kept, and the band between blends the two.
torch::Tensor llama3_frequencies(const torch::Tensor& inv_freq, const RopeScaling& rope) {
  auto context = static_cast<double>(rope.original_max_position_embeddings);
  auto low_wavelength = context / rope.low_freq_factor;
  auto high_wavelength = context / rope.high_freq_factor;
  auto wavelength = 2 * M_PI / inv_freq;
  auto stretched = torch::where(wavelength > low_wavelength, inv_freq / rope.factor, inv_freq);
  auto smooth = (context / wavelength - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
  auto blended = (1 - smooth) * stretched / rope.factor + smooth * stretched;
  auto medium = (wavelength >= high_wavelength) & (wavelength <= low_wavelength);
  return torch::where(medium, blended, stretched);
}

double yarn_mscale(double scale, double mscale = 1.0) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

// YaRN (arXiv 2309.00071): dimensions that turn fewer than beta_slow times over the pre-training
// context are interpolated (divided by the factor), those turning more than beta_fast times are kept,
// with a linear ramp between.
RotaryFrequencies yarn_frequencies(const torch::Tensor& inv_freq, const ModelConfig& config) {
  const auto& rope = config.rope_scaling;
  auto dim = static_cast<double>(config.rotary_dim());
  auto context = static_cast<double>(rope.original_max_position_embeddings);
  auto correction_dim = [&](double rotations) {
    return dim * std::log(context / (rotations * 2 * M_PI)) / (2 * std::log(config.rope_theta));
  };
  auto low = correction_dim(rope.beta_fast), high = correction_dim(rope.beta_slow);
  if (rope.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, dim - 1);
  if (low == high)
    high += 0.001; // as transformers does, against a division by zero
  auto ramp = ((torch::arange(config.rotary_dim() / 2, torch::kFloat32) - low) / (high - low)).clamp(0, 1);
  auto kept = 1 - ramp;
  RotaryFrequencies result;
  result.inv_freq = inv_freq / rope.factor * (1 - kept) + inv_freq * kept;
  if (rope.attention_factor)
    result.attention_factor = *rope.attention_factor;
  else if (rope.mscale && rope.mscale_all_dim && *rope.mscale != 0 && *rope.mscale_all_dim != 0)
    result.attention_factor = yarn_mscale(rope.factor, *rope.mscale) / yarn_mscale(rope.factor, *rope.mscale_all_dim);
  else
    result.attention_factor = yarn_mscale(rope.factor);
  return result;
}

// LongRoPE (arXiv 2402.13753), as Phi-3.5 and Phi-4 mini use it: each frequency divided by a factor
// of its own, searched for short sequences and for long ones, and cos/sin scaled by
// sqrt(1 + ln(factor) / ln(pre-training context)) unless the config gives the attention factor.
RotaryFrequencies longrope_frequencies(const torch::Tensor& inv_freq, const RopeScaling& rope) {
  auto divisors = [](const std::vector<double>& factors) {
    return torch::tensor(std::vector<float>(factors.begin(), factors.end()), torch::kFloat32);
  };
  RotaryFrequencies result;
  result.inv_freq = inv_freq / divisors(rope.short_factor);
  result.long_inv_freq = inv_freq / divisors(rope.long_factor);
  result.long_from = rope.original_max_position_embeddings;
  if (rope.attention_factor)
    result.attention_factor = *rope.attention_factor;
  else if (rope.factor > 1)
    result.attention_factor =
      std::sqrt(1 + std::log(rope.factor) / std::log(static_cast<double>(rope.original_max_position_embeddings)));
  return result;
}

} // namespace

RotaryFrequencies rotary_frequencies(const ModelConfig& config) {
  const auto dim = config.rotary_dim();
  auto exponents = torch::arange(0, dim, 2, torch::kFloat32) / static_cast<double>(dim);
  auto inv_freq = 1.0 / torch::pow(config.rope_theta, exponents);
  const auto& rope = config.rope_scaling;
  if (rope.type == "default")
    return {inv_freq, 1.0};
  if (rope.type == "linear")
    return {inv_freq / rope.factor, 1.0};
  if (rope.type == "llama3")
    return {llama3_frequencies(inv_freq, rope), 1.0};
  if (rope.type == "yarn")
    return yarn_frequencies(inv_freq, config);
  if (rope.type == "longrope")
    return longrope_frequencies(inv_freq, rope);
  throw std::invalid_argument("rope type '" + rope.type + "' is not supported");
}

} // namespace chorus::models
