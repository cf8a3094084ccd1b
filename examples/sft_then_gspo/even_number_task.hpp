// The main job's task, generated from a seed: "Is 347 even? JSON please.", answered as a JSON object
// {"answer": "no"}. The demonstrations are answered right, but too few for the rule: SFT learns the
// format and part of the rule (read the last digit); GSPO then learns the rest from a reward for being
// right.
#pragma once

#include <chorus/chorus.hpp>

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace even_number {

/// The JSON object every answer must be.
chorus::Json answer_schema();

/// `count` prompts with metadata {"answer": "yes" or "no", "number": n}, drawn from `seed`, about
/// numbers from 10 to 999 that are not in `excluded`; with `distinct`, each number at most once.
std::vector<chorus::Prompt> prompts(int count, std::uint64_t seed, const std::set<int>& excluded = {},
                                    bool distinct = false);

/// Writes `prompts` as JSONL, one {"prompt": text, "answer": "yes" or "no", "number": n} a line
/// (creating the folder). @throws chorus::Error naming the file if it cannot be written.
void write_jsonl(const std::filesystem::path& file, const std::vector<chorus::Prompt>& prompts);

/// Demonstrations for the first `count` prompts: the right format and the right answer.
std::vector<chorus::Completion> demonstrations(const std::vector<chorus::Prompt>& prompts, std::size_t count);

/// The reward: the format (weight 0.2) and being right (weight 0.8), each logged under its key.
chorus::Grader reward();

// -- the judge ---------------------------------------------------------------------

/// The judge's BinaryJudgeGrader options: the task's criterion, greedy, room for a verdict line.
chorus::BinaryJudgeOptions judge_options(chorus::InferenceModel judge);

/// One response per prompt, drawn from `seed`: the right answer (40%), the wrong one (40%) or a
/// malformed one (20%), labelled 1 where the task's rule passes it (right JSON, right answer) and 0
/// where it does not, with the rule's reasoning in the metadata ("Ends in 7: odd, so "no". The
/// response says "no"."): the judge's training and held-out verdicts (binary_judge_demonstrations,
/// judge_agreement).
std::vector<chorus::Metric> verdicts(const std::vector<chorus::Prompt>& prompts, std::uint64_t seed);

struct Evaluation {
  double format = 0.0;   // share of answers that are the JSON object asked for
  double accuracy = 0.0; // share of answers that are right
};

/// Greedy answers to every prompt of `eval`, scored.
chorus::Task<Evaluation> evaluate(chorus::TrainingModel model, std::vector<chorus::Prompt> eval);

} // namespace even_number
