// The requests of the actor-system tour: a stand-in policy, judge and trainer.
#pragma once

#include "runtime/message.hpp"

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

CHORUS_INSPECT(Busy, start_s, end_s)
CHORUS_INSPECT(GenerateReply, completion, policy_version, busy)
CHORUS_INSPECT(GenerateRequest, prompt)
CHORUS_INSPECT(GradeReply, score, busy)
CHORUS_INSPECT(GradeRequest, prompt, completion)
CHORUS_INSPECT(TrainReply, policy_version, loss, busy)
CHORUS_INSPECT(TrainRequest, scores)

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
