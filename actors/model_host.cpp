#include "actors/model_host.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace chorus::actors {

torch::ScalarType parse_dtype(const std::string& dtype) {
  if (dtype == "float32" || dtype == "fp32")
    return torch::kFloat32;
  if (dtype == "bfloat16" || dtype == "bf16")
    return torch::kBFloat16;
  throw std::invalid_argument("dtype '" + dtype + "' is not supported (expected float32 or bfloat16)");
}

std::string device_problem(const std::string& device) {
  if (device == "cpu")
    return {};
  std::int64_t index = 0;
  bool cuda = device == "cuda";
  if (!cuda && device.rfind("cuda:", 0) == 0 && device.size() > 5 && device.size() < 9) {
    cuda = device.find_first_not_of("0123456789", 5) == std::string::npos;
    index = cuda ? std::stoll(device.substr(5)) : 0;
  }
  if (!cuda)
    return "device '" + device + "' is not supported (expected cpu, cuda or cuda:N)";
  auto devices = available_devices();
  if (devices == 0)
    return "device '" + device + "': this process's LibTorch " + libtorch_version()
      + " was built without CUDA (CPU only): use device = cpu, or build chorus against a CUDA LibTorch";
  if (index >= devices)
    return "device '" + device + "' does not exist: LibTorch sees " + std::to_string(devices)
      + " CUDA device(s), cuda:0 to cuda:" + std::to_string(devices - 1);
  return {};
}

torch::Device parse_device(const std::string& device) {
  if (auto problem = device_problem(device); !problem.empty())
    throw std::invalid_argument(problem);
  return torch::Device(device);
}

TokenizeReply ModelHost::tokenize(const TokenizeRequest& request) const {
  const auto& tokenizer = *model.tokenizer;
  return TokenizeReply{request.messages.empty()
                         ? tokenizer.encode(request.text)
                         : tokenizer.apply_chat_template(request.messages, request.add_generation_prompt, request.tools,
                                                         request.enable_thinking)};
}

void ModelHost::load(ModelActorSpec model_spec, int weight) {
  spec = std::move(model_spec);
  try {
    cores = CoreBudget::process().join(spec.name, weight, spec.threads);
    follow_share();
    model = models::load_pretrained_model(spec.reference, parse_dtype(spec.dtype), spec.seed, parse_device(spec.device),
                                          spec.scoring ? models::Head::scoring : models::Head::language_model);
    model.model->set_gradient_checkpointing(spec.gradient_checkpointing);
    // Every actor of a model draws the same new adapters (the seed's), so the trainer and its
    // replicas start from the same weights.
    if (!spec.adapter.empty())
      models::load_adapter(model.model, spec.adapter);
    else if (spec.lora_r > 0)
      model.model->add_adapters(spec.lora_config(), spec.seed);
  } catch (const std::exception& error) {
    load_error = "cannot load model '" + spec.reference + "': " + error.what();
  }
}

void ModelHost::prepare() {
  if (!load_error.empty())
    throw std::runtime_error(load_error);
  follow_share();
  // Three one-thread actors on two cores (a policy, a judge, a trainer): the OS shares the cores
  // evenly and the trainer, the stage the others wait for, runs ~8% slower (bench_overlap). An
  // inference actor then lowers its own thread's priority (nice +5: the trainer gets about three
  // times its share of a contended core), for the rest of its life: an unprivileged thread cannot
  // raise it back. OpenMP workers it already has keep theirs; threads it starts later inherit it.
  if (!yielded && cores && cores->should_yield_to_trainer()) {
    yielded = true;
    auto thread = static_cast<id_t>(syscall(SYS_gettid));
    errno = 0;
    int lowered = std::min(getpriority(PRIO_PROCESS, thread) + 5, 19);
    if (errno == 0 && setpriority(PRIO_PROCESS, thread, lowered) == 0)
      spdlog::info("{}: shares {} cores with a trainer; runs at nice {} to leave it a core", spec.name,
                   CoreBudget::process().cores(), lowered);
  }
}

void ModelHost::follow_share() {
  if (!cores)
    return;
  threads = cores->threads();
  // at::get_num_threads first: a thread's first LibTorch parallel call sets its OpenMP threads from a
  // process-wide value that another actor may have set last, so that first call must come before ours.
  if (at::get_num_threads() != threads)
    at::set_num_threads(threads);
}

void ModelHost::set_busy(bool busy) {
  if (cores)
    cores->set_busy(busy);
}

ModelHost::Working::Working(ModelHost& host) : host_(host) {
  host_.set_busy(true);
  host_.follow_share();
}

ModelHost::Working::~Working() {
  host_.set_busy(false);
}

ModelInfo ModelHost::info(std::int64_t weight_version) const {
  ModelInfo result;
  result.model_type = model.model->config().model_type;
  result.vocab_size = model.model->config().vocab_size;
  for (const auto& parameter : model.model->parameters()) {
    result.parameters += parameter.numel();
    result.trained_parameters += parameter.requires_grad() ? parameter.numel() : 0;
  }
  result.weight_version = weight_version;
  result.threads = threads;
  result.thinks = model.tokenizer->thinks();
  result.opens_thinking_off = model.tokenizer->opens_thinking(false);
  result.opens_thinking_on = model.tokenizer->opens_thinking(true);
  result.tool_calls = static_cast<std::int32_t>(model.tokenizer->tool_call_format());
  if (const auto& generation = model.model->config().generation_config; !generation.is_null())
    result.generation_config = generation.dump();
  return result;
}

} // namespace chorus::actors
