// chorus-config-docs OUTPUT SOURCE...: writes OUTPUT, a C++ source file registering the comments above
// the config fields of SOURCE... (runtime/config_docs.hpp). Run by the build for each recipe program
// (chorus_add_recipe in cmake/ChorusRecipe.cmake); OUTPUT is rewritten only when its text changes,
// so that an edit elsewhere in a recipe recompiles nothing more.
#include "runtime/config_docs.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: chorus-config-docs OUTPUT.cpp SOURCE...\n";
    return 2;
  }
  std::vector<chorus::config_docs::ConfigDoc> docs;
  std::string origin;
  for (int i = 2; i < argc; ++i) {
    std::ifstream file(argv[i], std::ios::binary);
    if (!file) {
      std::cerr << "chorus-config-docs: cannot read " << argv[i] << "\n";
      return 1;
    }
    std::stringstream text;
    text << file.rdbuf();
    for (auto& doc : chorus::config_docs::extract(text.str()))
      docs.push_back(std::move(doc));
    origin += (origin.empty() ? "" : ", ") + std::filesystem::path(argv[i]).filename().string();
  }
  auto generated = chorus::config_docs::generate_source(docs, origin);
  std::ifstream existing(argv[1], std::ios::binary);
  std::stringstream before;
  before << existing.rdbuf();
  if (existing && before.str() == generated)
    return 0;
  std::ofstream output(argv[1], std::ios::binary | std::ios::trunc);
  output << generated;
  if (!output.flush()) {
    std::cerr << "chorus-config-docs: cannot write " << argv[1] << "\n";
    return 1;
  }
  return 0;
}
