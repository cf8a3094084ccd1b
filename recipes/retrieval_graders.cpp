// The retrieval-augmented-generation graders: templated judges (TemplatedJudgeGrader) with fixed
// prompts, each scoring one link of question -> retrieved context -> answer on a 1-5 scale.
#include <chorus/errors.hpp>
#include <chorus/grader.hpp>

namespace chorus {

namespace {

TemplatedJudgeGrader retrieval_judge(RetrievalJudgeOptions o, const std::string& key, const std::string& question) {
  if (o.context_key.empty())
    throw ConfigError("grader '" + (o.grader_key.empty() ? key : o.grader_key) + "': context_key must not be empty");
  auto context = "{{metadata." + o.context_key + "}}";
  auto text = question;
  for (auto at = text.find("{{context}}"); at != std::string::npos; at = text.find("{{context}}"))
    text.replace(at, 11, context);
  return TemplatedJudgeGrader({.grader_key = o.grader_key.empty() ? key : o.grader_key,
                               .user_template = text,
                               .model = std::move(o.model),
                               .endpoint = std::move(o.endpoint),
                               .min_score = 1,
                               .max_score = 5,
                               .sampling = o.sampling,
                               .max_parsing_retries = o.max_parsing_retries});
}

} // namespace

FaithfulnessGrader::FaithfulnessGrader(RetrievalJudgeOptions options)
  : Grader(retrieval_judge(std::move(options), "faithfulness",
                           "Context:\n{{context}}\n\nQuestion:\n{{prompt}}\n\nAnswer:\n{{completion}}\n\n"
                           "Is every claim the answer makes supported by the context? Score 5 when every claim is "
                           "supported by the context, 1 when its main claims are not; null when the answer makes no "
                           "factual claim.")) {}

AnswerRelevancyGrader::AnswerRelevancyGrader(RetrievalJudgeOptions options)
  : Grader(retrieval_judge(std::move(options), "answer_relevancy",
                           "Question:\n{{prompt}}\n\nAnswer:\n{{completion}}\n\n"
                           "How directly and completely does the answer address the question? Score 5 when it "
                           "answers exactly what was asked, 1 when it does not address the question at all.")) {}

ContextRelevancyGrader::ContextRelevancyGrader(RetrievalJudgeOptions options)
  : Grader(retrieval_judge(std::move(options), "context_relevancy",
                           "Question:\n{{prompt}}\n\nRetrieved context:\n{{context}}\n\n"
                           "How relevant is the retrieved context to answering the question? Score 5 when it holds "
                           "what the answer needs, 1 when it is unrelated to the question.")) {}

} // namespace chorus
