// What a model actor's own process checks before it loads: the device it is asked for, against the
// LibTorch it runs (a node's may differ from the recipe's).
#include "actors/model_actors.hpp"
#include "actors/model_host.hpp"
#include "actors/weight_stream.hpp"

#include <gtest/gtest.h>

using namespace chorus::actors;

namespace {

std::string error_of(const std::string& device) {
  try {
    parse_device(device);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "";
}

} // namespace

TEST(ModelHost, TheDeviceIsOneThisProcessHas) {
  EXPECT_TRUE(parse_device("cpu").is_cpu());
  EXPECT_NE(error_of("tpu").find("device 'tpu' is not supported (expected cpu, cuda or cuda:N)"), std::string::npos)
    << error_of("tpu");
  auto devices = available_devices();
  if (devices == 0) {
    auto message = error_of("cuda:0");
    EXPECT_NE(message.find("device 'cuda:0': this process's LibTorch " + libtorch_version()
                           + " was built without CUDA (CPU only)"),
              std::string::npos)
      << message;
  } else {
    EXPECT_TRUE(parse_device("cuda").is_cuda());
    auto beyond = "cuda:" + std::to_string(devices);
    EXPECT_NE(error_of(beyond).find("does not exist"), std::string::npos) << error_of(beyond);
  }
}

TEST(ModelHost, ALoadOnADeviceThisProcessLacksIsALoadErrorNamingIt) {
  if (available_devices() > 0)
    GTEST_SKIP() << "this LibTorch has CUDA devices";
  ModelHost host;
  ModelActorSpec spec;
  spec.name = "policy";
  spec.device = "cuda";
  host.load(spec, 1);
  EXPECT_NE(host.load_error.find("cannot load model 'builtin:tiny': device 'cuda'"), std::string::npos)
    << host.load_error;
  EXPECT_THROW(host.prepare(), std::runtime_error);
}

TEST(WeightServer, HostTensorsAreServedInPlaceWithoutACopy) {
  auto tensors = std::make_shared<const std::vector<torch::Tensor>>(std::vector<torch::Tensor>{torch::ones({3})});
  EXPECT_EQ(on_host(tensors).get(), tensors.get());
}

TEST(ModelHost, TheSpecsGradientCheckpointingReachesTheModel) {
  for (bool on : {false, true}) {
    ModelHost host;
    ModelActorSpec spec;
    spec.name = "trainer";
    spec.gradient_checkpointing = on;
    host.load(spec, 1);
    ASSERT_TRUE(host.load_error.empty()) << host.load_error;
    EXPECT_EQ(host.model.model->gradient_checkpointing(), on);
  }
}
