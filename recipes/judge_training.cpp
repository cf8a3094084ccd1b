// Training a model into a BinaryJudgeGrader's judge: labelled responses rendered in the grader's
// own prompt format, and the agreement of a judge with held-out labels.
#include <chorus/gather.hpp>
#include <chorus/grader.hpp>

#include <algorithm>

namespace chorus {

namespace {

bool passes(double label) {
  return label > 0.5;
}

} // namespace

std::vector<Completion> binary_judge_demonstrations(const BinaryJudgeOptions& options,
                                                    const std::vector<Metric>& verdicts) {
  std::vector<Completion> result;
  result.reserve(verdicts.size());
  for (const auto& verdict : verdicts) {
    std::string answer = passes(verdict.label) ? "VERDICT: PASS" : "VERDICT: FAIL";
    auto reasoning = verdict.metadata.find("reasoning");
    if (reasoning != verdict.metadata.end() && reasoning->is_string() && !reasoning->get<std::string>().empty())
      answer = reasoning->get<std::string>() + "\n" + answer;
    result.push_back(
      {binary_judge_prompt(options, {verdict.prompt, verdict.completion, verdict.metadata}), answer, Json::object()});
  }
  return result;
}

Task<double> judge_agreement(const Grader& grader, std::vector<Metric> verdicts) {
  std::vector<Task<Grade>> grades;
  grades.reserve(verdicts.size());
  for (const auto& verdict : verdicts)
    grades.push_back(grader.grade({verdict.prompt, verdict.completion, verdict.metadata}));
  auto results = co_await when_all(std::move(grades));
  double agreed = 0;
  for (std::size_t i = 0; i < verdicts.size(); ++i)
    agreed += !results[i].ignored && passes(results[i].score) == passes(verdicts[i].label) ? 1.0 : 0.0;
  co_return agreed / static_cast<double>(std::max<std::size_t>(verdicts.size(), 1));
}

double majority_verdict_share(const std::vector<Metric>& verdicts) {
  auto passed =
    std::count_if(verdicts.begin(), verdicts.end(), [](const Metric& verdict) { return passes(verdict.label); });
  auto commoner =
    std::max<std::size_t>(static_cast<std::size_t>(passed), verdicts.size() - static_cast<std::size_t>(passed));
  return static_cast<double>(commoner) / static_cast<double>(std::max<std::size_t>(verdicts.size(), 1));
}

Task<double> measure_judge(const Grader& grader, std::vector<Metric> held_out, const std::string& name,
                           RecipeContext& ctx) {
  auto always_the_same = majority_verdict_share(held_out);
  auto count = held_out.size();
  auto accuracy = co_await judge_agreement(grader, std::move(held_out));
  ctx.log().info("judge {}: accuracy {:.3f} on {} held-out verdicts", name, accuracy, count);
  if (accuracy <= always_the_same)
    ctx.log().warn("judge {}: no better than answering the same verdict every time ({:.3f}): GSPO will learn "
                   "from noise (train it longer or on more verdicts, try another seed, or give a judge folder)",
                   name, always_the_same);
  co_return accuracy;
}

} // namespace chorus
