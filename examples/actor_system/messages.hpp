// The requests of the actor-system tour: a stand-in policy, judge and trainer.
#pragma once

#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include <string>
#include <vector>

namespace tour {

/// When an actor was busy with a request, in seconds since the tour started.
struct Busy {
  double start_s = 0;
  double end_s = 0;
};

struct GenerateReply {
  std::string completion;
  int policy_version = 0;
  Busy busy;
};

struct GenerateRequest {
  using Reply = GenerateReply;
  std::string prompt;
};

struct GradeReply {
  double score = 0;
  Busy busy;
};

struct GradeRequest {
  using Reply = GradeReply;
  std::string prompt;
  std::string completion;
};

struct TrainReply {
  int policy_version = 0;
  double loss = 0;
  Busy busy;
};

struct TrainRequest {
  using Reply = TrainReply;
  std::vector<double> scores;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Busy& x) {
  return f(caf::meta::type_name("Busy"), x.start_s, x.end_s);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, GenerateReply& x) {
  return f(caf::meta::type_name("GenerateReply"), x.completion, x.policy_version, x.busy);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, GenerateRequest& x) {
  return f(caf::meta::type_name("GenerateRequest"), x.prompt);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, GradeReply& x) {
  return f(caf::meta::type_name("GradeReply"), x.score, x.busy);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, GradeRequest& x) {
  return f(caf::meta::type_name("GradeRequest"), x.prompt, x.completion);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, TrainReply& x) {
  return f(caf::meta::type_name("TrainReply"), x.policy_version, x.loss, x.busy);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, TrainRequest& x) {
  return f(caf::meta::type_name("TrainRequest"), x.scores);
}

} // namespace tour

CAF_BEGIN_TYPE_ID_BLOCK(chorus_tour, caf::first_custom_type_id + 800)
  CAF_ADD_TYPE_ID(chorus_tour, (tour::Busy))
  CAF_ADD_TYPE_ID(chorus_tour, (tour::GenerateReply))
  CAF_ADD_TYPE_ID(chorus_tour, (tour::GenerateRequest))
  CAF_ADD_TYPE_ID(chorus_tour, (tour::GradeReply))
  CAF_ADD_TYPE_ID(chorus_tour, (tour::GradeRequest))
  CAF_ADD_TYPE_ID(chorus_tour, (tour::TrainReply))
  CAF_ADD_TYPE_ID(chorus_tour, (tour::TrainRequest))
CAF_END_TYPE_ID_BLOCK(chorus_tour)
