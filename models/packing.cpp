#include "models/packing.hpp"

#include <map>

namespace chorus::models {

namespace {

std::vector<std::int64_t> row_prefix(const torch::Tensor& tokens, std::int64_t row, std::int64_t length) {
  auto values = tokens[row].narrow(0, 0, length).contiguous();
  return {values.data_ptr<std::int64_t>(), values.data_ptr<std::int64_t>() + length};
}

torch::Tensor int64_tensor(const std::vector<std::int64_t>& values, std::vector<std::int64_t> shape) {
  return torch::tensor(values, torch::kInt64).view(shape);
}

} // namespace

std::vector<std::size_t> grouped_by_prompt(const std::vector<const std::vector<std::int64_t>*>& prompts) {
  std::map<std::vector<std::int64_t>, std::size_t> group_of;
  std::vector<std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    auto [found, added] = group_of.emplace(*prompts[i], groups.size());
    if (added)
      groups.emplace_back();
    groups[found->second].push_back(i);
  }
  std::vector<std::size_t> order;
  for (const auto& group : groups)
    order.insert(order.end(), group.begin(), group.end());
  return order;
}

std::optional<PackedBatch> pack_shared_prompts(const SequenceBatch& batch) {
  auto rows = static_cast<std::int64_t>(batch.prompt_lengths.size());
  auto tokens = batch.tokens.to(torch::kCPU).contiguous();
  std::vector<std::vector<std::int64_t>> prompts;
  for (std::int64_t i = 0; i < rows; ++i)
    prompts.push_back(row_prefix(tokens, i, batch.prompt_lengths[static_cast<std::size_t>(i)]));
  std::vector<const std::vector<std::int64_t>*> pointers;
  for (const auto& prompt : prompts)
    pointers.push_back(&prompt);
  auto order = grouped_by_prompt(pointers);

  // The packed rows: members of a group are consecutive in `order`. A row takes the next member of
  // its group while its attention area stays within twice that of the members' own rows: long
  // completions after a short prompt (packing would save little) then get rows of their own.
  std::vector<std::vector<std::size_t>> row_members;
  std::int64_t length = 0, own_area = 0;
  for (std::size_t k = 0; k < order.size(); ++k) {
    auto i = order[k];
    auto p = static_cast<std::int64_t>(prompts[i].size()), c = batch.completion_lengths[i];
    bool same_prompt = k > 0 && prompts[i] == prompts[order[k - 1]];
    if (!same_prompt || (length + c) * (length + c) > 2 * (own_area + (p + c) * (p + c))) {
      row_members.emplace_back();
      length = p;
      own_area = 0;
    }
    row_members.back().push_back(i);
    length += c;
    own_area += (p + c) * (p + c);
  }
  if (static_cast<std::int64_t>(row_members.size()) == rows)
    return std::nullopt;
  std::int64_t time = 1;
  for (const auto& members : row_members) {
    auto row_length = static_cast<std::int64_t>(prompts[members.front()].size());
    for (auto i : members)
      row_length += batch.completion_lengths[i];
    time = std::max(time, row_length);
  }

  auto packed_rows = static_cast<std::int64_t>(row_members.size());
  auto targets_per_row = batch.tokens.size(1) - 1;
  std::vector<std::int64_t> packed(static_cast<std::size_t>(packed_rows * time), 0);
  std::vector<std::int64_t> positions(packed.size(), 0);
  auto allowed = torch::zeros({packed_rows, time, time}, torch::kBool);
  auto allow = allowed.accessor<bool, 3>();
  std::vector<std::int64_t> sources, targets, places;
  const auto* all_tokens = tokens.data_ptr<std::int64_t>();
  const auto width = tokens.size(1);
  for (std::int64_t r = 0; r < packed_rows; ++r) {
    const auto& members = row_members[static_cast<std::size_t>(r)];
    const auto& prompt = prompts[members.front()];
    auto p = static_cast<std::int64_t>(prompt.size());
    auto at = [&](std::int64_t t) { return static_cast<std::size_t>(r * time + t); };
    for (std::int64_t t = 0; t < p; ++t) {
      packed[at(t)] = prompt[static_cast<std::size_t>(t)];
      positions[at(t)] = t;
      for (std::int64_t key = 0; key <= t; ++key)
        allow[r][t][key] = true;
    }
    auto offset = p;
    for (auto i : members) {
      auto row = static_cast<std::int64_t>(i);
      auto c = batch.completion_lengths[i];
      for (std::int64_t j = 0; j < c; ++j) {
        auto t = offset + j;
        auto token = all_tokens[row * width + p + j];
        packed[at(t)] = token;
        positions[at(t)] = p + j;
        for (std::int64_t key = 0; key < p; ++key)
          allow[r][t][key] = true;
        for (std::int64_t key = offset; key <= t; ++key)
          allow[r][t][key] = true;
        // Token j is predicted by the prompt's last state (j = 0) or by the completion's token j - 1.
        sources.push_back(r * time + (j == 0 ? p - 1 : t - 1));
        targets.push_back(token);
        places.push_back(row * targets_per_row + p - 1 + j);
      }
      offset += c;
    }
    for (auto t = offset; t < time; ++t)
      allow[r][t][t] = true; // padding attends to itself only: its softmax stays finite
  }
  auto n = static_cast<std::int64_t>(sources.size());
  return PackedBatch{int64_tensor(packed, {packed_rows, time}),
                     int64_tensor(positions, {packed_rows, time}),
                     allowed,
                     int64_tensor(sources, {n}),
                     int64_tensor(targets, {n}),
                     int64_tensor(places, {n})};
}

} // namespace chorus::models
