// Config loading: defaults, JSON files, --set overrides, and an error naming the source, the key
// path and the expected type for every kind of mistake.
#include <chorus/config.hpp>

#include "tests/expect_error.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace test_config {

struct Optimizer {
  double lr = 1e-5;
  double weight_decay = 0.01;
  std::vector<double> betas{0.9, 0.999};
};
CHORUS_CONFIG(Optimizer, lr, weight_decay, betas)

struct Training {
  chorus::Required<std::string> dataset;
  int epochs = 1;
  std::int64_t max_steps = 1000;
  bool shuffle = true;
  std::optional<int> seed;
  std::string name = "run";
  Optimizer optimizer;
};
CHORUS_CONFIG(Training, dataset, epochs, max_steps, shuffle, seed, name, optimizer)

struct Grading {
  chorus::Json schema;
};
CHORUS_CONFIG(Grading, schema)

} // namespace test_config

using namespace chorus;
using chorus::test::expect_error_containing;
using test_config::Training;

namespace {

std::filesystem::path write_file(const std::string& name, const std::string& text) {
  auto path = std::filesystem::path(::testing::TempDir()) / name;
  std::ofstream(path) << text;
  return path;
}

TEST(Config, DefaultsComeFromTheStruct) {
  auto config = load_config<Training>({}, {"dataset=data.jsonl"});
  EXPECT_EQ(*config.dataset, "data.jsonl");
  EXPECT_EQ(config.epochs, 1);
  EXPECT_DOUBLE_EQ(config.optimizer.lr, 1e-5);
  EXPECT_EQ(config.optimizer.betas, (std::vector<double>{0.9, 0.999}));
  EXPECT_FALSE(config.seed.has_value());
}

TEST(Config, FileThenOverridesInOrder) {
  auto file = write_file("training.json", R"({"dataset": "a.jsonl", "epochs": 3,
    "optimizer": {"lr": 0.5}, "seed": 7})");
  auto config = load_config<Training>(file,
                                      {"optimizer.lr=1e-3", "epochs=4", "epochs=5", "name=hello world",
                                       "optimizer.betas=0.5,0.6", "shuffle=false", "seed=null"});
  EXPECT_EQ(*config.dataset, "a.jsonl");
  EXPECT_EQ(config.epochs, 5);
  EXPECT_DOUBLE_EQ(config.optimizer.lr, 1e-3);
  EXPECT_DOUBLE_EQ(config.optimizer.weight_decay, 0.01) << "a partial section keeps the other defaults";
  EXPECT_EQ(config.optimizer.betas, (std::vector<double>{0.5, 0.6}));
  EXPECT_EQ(config.name, "hello world");
  EXPECT_FALSE(config.shuffle);
  EXPECT_FALSE(config.seed.has_value());
}

TEST(Config, ListOverrideAcceptsJson) {
  auto config = load_config<Training>({}, {"dataset=x", "optimizer.betas=[0.1, 0.2, 0.3]"});
  EXPECT_EQ(config.optimizer.betas, (std::vector<double>{0.1, 0.2, 0.3}));
}

TEST(Config, AJsonFieldKeepsWhatTheFileOrTheOverrideGives) {
  using test_config::Grading;
  auto file = write_file("grading.json", R"({"schema": {"type": "object", "required": ["answer"]}})");
  EXPECT_EQ(load_config<Grading>(file, {}).schema, Json({{"type", "object"}, {"required", {"answer"}}}));
  EXPECT_EQ(load_config<Grading>(file, {R"(schema={"enum": ["yes", "no"]})"}).schema, Json({{"enum", {"yes", "no"}}}));
  EXPECT_TRUE(load_config<Grading>({}, {}).schema.is_null());
  expect_error_containing<ConfigError>([&] { load_config<Grading>({}, {"schema={\"type\": "}); }, {"schema", "JSON"});
}

TEST(Config, UnknownKeyInFileNamesFileKeyAndSuggestion) {
  auto file = write_file("unknown.json", R"({"dataset": "a", "optimizer": {"lrr": 0.1}})");
  expect_error_containing<ConfigError>([&] { load_config<Training>(file, {}); },
                                       {"unknown.json", "'optimizer.lrr'", "did you mean 'lr'"});
}

TEST(Config, UnknownKeyInOverride) {
  expect_error_containing<ConfigError>([&] { load_config<Training>({}, {"dataset=x", "epoch=3"}); },
                                       {"--set epoch=3", "did you mean 'epochs'"});
}

TEST(Config, WrongTypeNamesTheExpectedType) {
  auto file = write_file("wrong.json", R"({"dataset": "a", "epochs": "three"})");
  expect_error_containing<ConfigError>([&] { load_config<Training>(file, {}); },
                                       {"wrong.json: key 'epochs': expected int", "got string \"three\""});
}

TEST(Config, FractionalIntegerIsRejected) {
  expect_error_containing<ConfigError>([&] { load_config<Training>({}, {"dataset=x", "epochs=1.5"}); },
                                       {"expected int"});
}

TEST(Config, WholeFloatIsAcceptedAsInteger) {
  auto config = load_config<Training>({}, {"dataset=x", "max_steps=1e3"});
  EXPECT_EQ(config.max_steps, 1000);
}

TEST(Config, IntegerOutOfRangeIsRejected) {
  expect_error_containing<ConfigError>([&] { load_config<Training>({}, {"dataset=x", "epochs=99999999999"}); },
                                       {"expected int in ["});
}

TEST(Config, BadFloatOverride) {
  expect_error_containing<ConfigError>([&] { load_config<Training>({}, {"dataset=x", "optimizer.lr=fast"}); },
                                       {"--set optimizer.lr=fast: key 'optimizer.lr': expected float"});
}

TEST(Config, BadListElementNamesItsIndex) {
  auto file = write_file("list.json", R"({"dataset": "a", "optimizer": {"betas": [0.9, "x"]}})");
  expect_error_containing<ConfigError>([&] { load_config<Training>(file, {}); }, {"'optimizer.betas[1]'"});
}

TEST(Config, MissingRequiredField) {
  expect_error_containing<ConfigError>([&] { load_config<Training>({}, {}); }, {"'dataset'", "missing required field"});
}

TEST(Config, SubKeyOfAPlainField) {
  expect_error_containing<ConfigError>([&] { load_config<Training>({}, {"dataset=x", "epochs.value=3"}); },
                                       {"not a section"});
}

TEST(Config, OverrideWithoutEquals) {
  expect_error_containing<ConfigError>([&] { load_config<Training>({}, {"epochs"}); }, {"expected key=value"});
}

// Found by fuzz/config_fuzz.cpp: bytes that are not UTF-8 in an override once escaped as an
// nlohmann exception instead of a ConfigError, and a string field could take them (config.json then
// could not be written).
TEST(Config, OverrideThatIsNotUtf8IsAConfigError) {
  for (std::string bad : {"name=caf\xe9", "epochs=\xe6\xe6",
                          "dataset=a\xed\xa0\x80"
                          "b",
                          "name=\xc0\xaf"}) {
    expect_error_containing<ConfigError>([&] { load_config<Training>({}, {"dataset=x", bad}); }, {"not valid UTF-8"});
  }
  EXPECT_EQ(load_config<Training>({}, {"dataset=x", "name=caf\xc3\xa9 \xf0\x9f\x99\x82"}).name,
            "caf\xc3\xa9 \xf0\x9f\x99\x82");
}

TEST(Config, InvalidJsonNamesLineAndColumn) {
  auto file = write_file("broken.json", "{\n  \"dataset\": \"a\",\n  \"epochs\": ,\n}\n");
  expect_error_containing<ConfigError>([&] { load_config<Training>(file, {}); }, {"broken.json:3:", "invalid JSON"});
}

// Found by fuzz/config_fuzz.cpp: a number too large for a double is nlohmann's out_of_range, not
// its parse_error, and once escaped the loader uncaught.
TEST(Config, NumberTooLargeForADoubleNamesItsLine) {
  auto file = write_file("huge.json", "{\n  \"dataset\": \"a\",\n  \"epochs\": 1e999\n}\n");
  expect_error_containing<ConfigError>([&] { load_config<Training>(file, {}); },
                                       {"huge.json:3:13: invalid JSON: number overflow parsing '1e999'"});
}

TEST(Config, MissingFile) {
  expect_error_containing<ConfigError>([&] { load_config<Training>("/nonexistent/config.json", {}); },
                                       {"/nonexistent/config.json: cannot open"});
}

TEST(Config, SectionMustBeAnObject) {
  auto file = write_file("section.json", R"({"dataset": "a", "optimizer": 3})");
  expect_error_containing<ConfigError>([&] { load_config<Training>(file, {}); },
                                       {"key 'optimizer': expected a section"});
}

TEST(Config, DescribeListsEveryFieldWithTypeAndDefault) {
  auto table = describe_config<Training>();
  for (const char* expected : {"dataset", "(required)", "epochs", "int", "optimizer.lr", "float", "1e-05",
                               "optimizer.betas", "list of float", "seed", "int or null", "shuffle", "bool"})
    EXPECT_NE(table.find(expected), std::string::npos) << expected << " missing from\n" << table;
}

TEST(Config, RoundTripsThroughJson) {
  auto config = load_config<Training>({}, {"dataset=x", "optimizer.lr=0.25", "seed=3"});
  auto json = config_to_json(config);
  EXPECT_EQ(json["optimizer"]["lr"], 0.25);
  auto file = write_file("roundtrip.json", json.dump());
  auto again = load_config<Training>(file, {});
  EXPECT_EQ(config_to_json(again), json);
}

// -- the JSON Schema of --schema ----------------------------------------------------------------------

// What chorus-config-docs generates for a recipe program: here by hand.
const detail::ConfigDocs kTrainingDocs{"Training", {{"epochs", "Passes over the data."}}};

TEST(ConfigSchema, EveryFieldHasItsTypeAndDefaultAndExtraKeysAreRefused) {
  auto schema = config_schema<Training>("train");
  EXPECT_EQ(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
  EXPECT_EQ(schema["title"], "train config");
  EXPECT_EQ(schema["type"], "object");
  EXPECT_EQ(schema["additionalProperties"], false);
  const auto& fields = schema["properties"];
  EXPECT_EQ(fields.size(), 7u);
  EXPECT_EQ(fields["epochs"]["type"], "integer");
  EXPECT_EQ(fields["epochs"]["default"], 1);
  EXPECT_EQ(fields["epochs"]["minimum"], std::numeric_limits<int>::min());
  EXPECT_EQ(fields["max_steps"]["maximum"], std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(fields["shuffle"]["type"], "boolean");
  EXPECT_EQ(fields["name"], (Json{{"type", "string"}, {"default", "run"}}));
  EXPECT_EQ(fields["seed"]["anyOf"],
            (Json::array({{{"type", "integer"},
                           {"minimum", std::numeric_limits<int>::min()},
                           {"maximum", std::numeric_limits<int>::max()}},
                          {{"type", "null"}}})));
  EXPECT_EQ(fields["seed"]["default"], nullptr);
  // A nested section is an object of its own fields, each with its default.
  const auto& optimizer = fields["optimizer"];
  EXPECT_EQ(optimizer["type"], "object");
  EXPECT_EQ(optimizer["additionalProperties"], false);
  EXPECT_EQ(optimizer["properties"]["lr"]["type"], "number");
  EXPECT_EQ(optimizer["properties"]["betas"]["type"], "array");
  EXPECT_EQ(optimizer["properties"]["betas"]["items"]["type"], "number");
  EXPECT_EQ(optimizer["properties"]["betas"]["default"], Json::array({0.9, 0.999}));
  EXPECT_FALSE(optimizer.contains("default"));
}

TEST(ConfigSchema, RequiredFieldsAreListedAndHaveNoDefault) {
  auto schema = config_schema<Training>("train");
  EXPECT_EQ(schema["required"], Json::array({"dataset"}));
  EXPECT_FALSE(schema["properties"]["dataset"].contains("default"));
  EXPECT_EQ(schema["properties"]["dataset"]["type"], "string");
  EXPECT_FALSE(schema["properties"]["optimizer"].contains("required"));
}

TEST(ConfigSchema, TheRegisteredCommentOfAFieldIsItsDescription) {
  auto schema = config_schema<Training>("train");
  EXPECT_EQ(schema["properties"]["epochs"]["description"], "Passes over the data.");
  EXPECT_FALSE(schema["properties"]["name"].contains("description"));
  EXPECT_EQ(detail::config_field_doc("Training", "epochs"), "Passes over the data.");
  EXPECT_EQ(detail::config_field_doc("Training", "nothing"), "");
  EXPECT_EQ(detail::config_field_doc("Nothing", "epochs"), "");
}

} // namespace
