// Running a parsed chat template: Jinja2's scoping (a loop's iterations and a macro's calls have
// their own variables, namespace() objects carry values out of them), loop variables and controls,
// macros, and the text each value came from.
#include "models/jinja.hpp"
#include "models/jinja_ast.hpp"
#include "models/jinja_builtins.hpp"

#include <algorithm>
#include <climits>
#include <cmath>

namespace chorus::models {

namespace jinja {

namespace {

using Kind = Value::Kind;

struct Scope {
  std::vector<std::pair<std::string, Value>> variables;

  Value* find(const std::string& name) {
    for (auto& [n, v] : variables)
      if (n == name)
        return &v;
    return nullptr;
  }
  void set(const std::string& name, Value value) {
    if (auto* existing = find(name))
      *existing = std::move(value);
    else
      variables.emplace_back(name, std::move(value));
  }
};

enum class Flow { normal, broke, continued };

Value from_json(const nlohmann::ordered_json& json, bool data) {
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::boolean(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
    case nlohmann::ordered_json::value_t::number_unsigned: return Value::integer(json.get<std::int64_t>());
    case nlohmann::ordered_json::value_t::number_float: return Value::number(json.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::string(Text(json.get<std::string>(), data));
    case nlohmann::ordered_json::value_t::array: {
      List items;
      for (const auto& item : json)
        items.push_back(from_json(item, data));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto dict = std::make_shared<Dict>();
      for (const auto& [key, item] : json.items())
        dict->items.emplace_back(Text(key, data), from_json(item, data));
      return Value::dict(std::move(dict));
    }
    default: return {};
  }
}

class Renderer {
public:
  explicit Renderer(std::shared_ptr<Scope> root) {
    frames_.push_back(std::move(root));
  }

  Text render(const Body& body) {
    exec(body);
    return std::move(out_);
  }

private:
  static constexpr int kMaxCallDepth = 64;
  static constexpr std::size_t kMaxOutput = std::size_t{1} << 28;
  static constexpr std::int64_t kMaxIterations = 10'000'000;

  // -- statements -------------------------------------------------------------

  Flow exec(const Body& body) {
    for (const auto& node : body) {
      auto flow = exec(*node);
      if (flow != Flow::normal)
        return flow;
    }
    return Flow::normal;
  }

  Flow exec(const Node& node) {
    switch (node.kind) {
      case Node::Kind::text: write(Text::markup(node.text), node.line); break;
      case Node::Kind::output: write(to_text(eval(*node.expr)), node.line); break;
      case Node::Kind::branch:
        for (std::size_t i = 0; i < node.bodies.size(); ++i)
          if (!node.conditions[i] || truthy(eval(*node.conditions[i])))
            return exec(node.bodies[i]);
        break;
      case Node::Kind::loop: loop(node); break;
      case Node::Kind::assign: assign(node); break;
      case Node::Kind::macro: define_macro(node); break;
      case Node::Kind::loop_break: return Flow::broke;
      case Node::Kind::loop_continue: return Flow::continued;
      case Node::Kind::block: {
        if (node.text.empty())
          return exec(node.bodies[0]);
        Arguments none;
        write(to_text(apply_filter(node.text, Value::string(capture(node.bodies[0])), none, node.line)), node.line);
        break;
      }
    }
    return Flow::normal;
  }

  void write(const Text& text, int line) {
    out_.append(text);
    if (out_.size() > kMaxOutput)
      raise_at(line, "the rendered prompt passes 256 MiB");
  }

  Text capture(const Body& body) {
    Text saved = std::move(out_);
    out_ = Text();
    exec(body);
    Text captured = std::move(out_);
    out_ = std::move(saved);
    return captured;
  }

  void loop(const Node& node) {
    auto all = iterate(eval(*node.expr), node.line);
    List items;
    const auto& filter = node.conditions[0];
    for (auto& item : all) {
      if (filter) {
        frames_.push_back(std::make_shared<Scope>());
        bind(node.targets, item, node.line);
        bool keep = truthy(eval(*filter));
        frames_.pop_back();
        if (!keep)
          continue;
      }
      items.push_back(std::move(item));
    }
    if (items.empty()) {
      if (node.bodies.size() > 1)
        exec(node.bodies[1]);
      return;
    }
    auto n = static_cast<std::int64_t>(items.size());
    for (std::int64_t i = 0; i < n; ++i) {
      if (++iterations_ > kMaxIterations)
        raise_at(node.line, "more than 10 million loop iterations");
      auto frame = std::make_shared<Scope>();
      auto loop_info = std::make_shared<Dict>();
      auto put = [&](const char* key, Value v) { loop_info->items.emplace_back(Text::markup(key), std::move(v)); };
      put("index", Value::integer(i + 1));
      put("index0", Value::integer(i));
      put("revindex", Value::integer(n - i));
      put("revindex0", Value::integer(n - i - 1));
      put("first", Value::boolean(i == 0));
      put("last", Value::boolean(i == n - 1));
      put("length", Value::integer(n));
      put("previtem", i > 0 ? items[static_cast<std::size_t>(i - 1)] : Value());
      put("nextitem", i + 1 < n ? items[static_cast<std::size_t>(i + 1)] : Value());
      put("cycle", Value::function([i](Arguments& args) -> Value {
            if (args.positional.empty())
              throw JinjaError("loop.cycle() needs at least one value");
            return args.positional[static_cast<std::size_t>(i) % args.positional.size()];
          }));
      frame->set("loop", Value::dict(std::move(loop_info)));
      frames_.push_back(frame);
      bind(node.targets, items[static_cast<std::size_t>(i)], node.line);
      auto flow = exec(node.bodies[0]);
      frames_.pop_back();
      if (flow == Flow::broke)
        break;
    }
  }

  // `for a, b in pairs` and `set a, b = pair`: a sequence spread over the names.
  void bind(const std::vector<std::string>& targets, const Value& value, int line) {
    if (targets.size() == 1) {
      frames_.back()->set(targets[0], value);
      return;
    }
    auto items = iterate(value, line);
    if (items.size() != targets.size())
      raise_at(line,
               "cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(targets.size())
                 + " names");
    for (std::size_t i = 0; i < targets.size(); ++i)
      frames_.back()->set(targets[i], items[i]);
  }

  void assign(const Node& node) {
    Value value = node.expr ? eval(*node.expr) : Value::string(capture(node.bodies[0]));
    if (node.attribute.empty()) {
      bind(node.targets, value, node.line);
      return;
    }
    auto target = lookup(node.targets[0]);
    if (!target.is(Kind::dict) || !target.dict().is_namespace)
      raise_at(node.line, "cannot set '" + node.attribute + "' on '" + node.targets[0] + "': not a namespace()");
    if (holds_reference(value, 0))
      raise_at(node.line, "a namespace() attribute cannot hold a namespace() or a function");
    target.mutable_dict().set(Text::markup(node.attribute), std::move(value));
  }

  // The function holds no scope (a scope holding its own macro would never be freed): it runs in
  // the template's top-level variables and its arguments.
  // A namespace holding a namespace (itself, say) or a function (which may hold one) could form a
  // cycle that is never freed; Python's templates store strings, numbers and lists there.
  static bool holds_reference(const Value& value, int depth) {
    if (value.is(Kind::function) || (value.is(Kind::dict) && value.dict().is_namespace))
      return true;
    if (depth > 100)
      return true;
    if (value.is(Kind::list))
      for (const auto& item : value.items())
        if (holds_reference(item, depth + 1))
          return true;
    if (value.is(Kind::dict))
      for (const auto& item : value.dict().items)
        if (holds_reference(item.second, depth + 1))
          return true;
    return false;
  }

  // The function holds no scope (a scope holding its own macro would never be freed): it runs in
  // the template's top-level variables and its arguments.
  void define_macro(const Node& node) {
    const Node* macro = &node;
    frames_.back()->set(node.text, Value::function([this, macro](Arguments& args) -> Value {
                          if (args.positional.size() > macro->targets.size())
                            raise_at(macro->line,
                                     "macro '" + macro->text + "' takes " + std::to_string(macro->targets.size())
                                       + " arguments, given " + std::to_string(args.positional.size()));
                          for (const auto& [keyword, value] : args.named)
                            if (std::find(macro->targets.begin(), macro->targets.end(), keyword)
                                == macro->targets.end())
                              raise_at(macro->line, "macro '" + macro->text + "' has no parameter '" + keyword + "'");
                          auto frame = std::make_shared<Scope>();
                          for (std::size_t i = 0; i < macro->targets.size(); ++i) {
                            auto given = args.get(i, macro->targets[i]);
                            if (given.is(Kind::undefined) && macro->conditions[i])
                              given = eval(*macro->conditions[i]);
                            frame->set(macro->targets[i], given);
                          }
                          if (depth_ >= kMaxCallDepth)
                            raise_at(macro->line, "macro '" + macro->text + "' calls nest deeper than 64");
                          auto saved = frames_;
                          frames_ = {saved.front(), frame};
                          ++depth_;
                          Text result;
                          try {
                            result = capture(macro->bodies[0]);
                          } catch (...) {
                            frames_ = std::move(saved);
                            --depth_;
                            throw;
                          }
                          frames_ = std::move(saved);
                          --depth_;
                          return Value::string(std::move(result));
                        }));
  }

  // -- expressions ---------------------------------------------------------------

  Value lookup(const std::string& name) {
    for (auto frame = frames_.rbegin(); frame != frames_.rend(); ++frame)
      if (auto* value = (*frame)->find(name))
        return *value;
    return global_function(name);
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::literal: return e.value;
      case Expr::Kind::name: return lookup(e.name);
      case Expr::Kind::attribute: return attribute(eval(*e.args[0]), e.name, e.line);
      case Expr::Kind::subscript: return subscript(eval(*e.args[0]), eval(*e.args[1]), e.line);
      case Expr::Kind::slice: return slice(e);
      case Expr::Kind::call: return call(e);
      case Expr::Kind::filter: {
        auto operand = eval(*e.args[0]);
        auto args = arguments(e);
        return apply_filter(e.name, operand, args, e.line);
      }
      case Expr::Kind::test: {
        auto operand = eval(*e.args[0]);
        auto args = arguments(e);
        return Value::boolean(apply_test(e.name, operand, args, e.line) != e.negated);
      }
      case Expr::Kind::negate: {
        auto v = eval(*e.args[0]);
        if (v.is(Kind::number))
          return Value::number(-v.as_double());
        if (v.is_number())
          return Value::integer(-v.as_integer());
        raise_at(e.line, "bad operand type for unary -: '" + type_name(v) + "'");
      }
      case Expr::Kind::logical_not: return Value::boolean(!truthy(eval(*e.args[0])));
      case Expr::Kind::logical_and: {
        auto left = eval(*e.args[0]);
        return truthy(left) ? eval(*e.args[1]) : left;
      }
      case Expr::Kind::logical_or: {
        auto left = eval(*e.args[0]);
        return truthy(left) ? left : eval(*e.args[1]);
      }
      case Expr::Kind::conditional:
        if (truthy(eval(*e.args[1])))
          return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : Value();
      case Expr::Kind::list: {
        List items;
        for (const auto& item : e.args)
          items.push_back(eval(*item));
        return e.name == "tuple" ? Value::tuple(std::move(items)) : Value::list(std::move(items));
      }
      case Expr::Kind::dict: {
        auto dict = std::make_shared<Dict>();
        for (std::size_t i = 0; i + 1 < e.args.size(); i += 2) {
          auto key = eval(*e.args[i]);
          dict->set(to_text(key), eval(*e.args[i + 1]));
        }
        return Value::dict(std::move(dict));
      }
      case Expr::Kind::binary: return binary(e.name, eval(*e.args[0]), eval(*e.args[1]), e.line);
      case Expr::Kind::comparison_chain: {
        auto left = eval(*e.args[0]);
        for (std::size_t i = 0; i < e.keywords.size(); ++i) {
          auto right = eval(*e.args[i + 1]);
          if (!truthy(binary(e.keywords[i], left, right, e.line)))
            return Value::boolean(false);
          left = std::move(right);
        }
        return Value::boolean(true);
      }
    }
    return {};
  }

  Arguments arguments(const Expr& e) {
    Arguments args;
    for (std::size_t i = 1; i < e.args.size(); ++i) {
      const auto& keyword = e.keywords[i - 1];
      if (keyword.empty())
        args.positional.push_back(eval(*e.args[i]));
      else
        args.named.emplace_back(keyword, eval(*e.args[i]));
    }
    return args;
  }

  // Jinja2's getattr: a Python attribute (a str's or dict's method) first, then the item.
  Value attribute(const Value& object, const std::string& name, int line) {
    if (object.is(Kind::undefined))
      raise_at(line, "cannot read '." + name + "' of an undefined value");
    if (has_method(object, name))
      return Value::function(
        [object, name, line](Arguments& args) -> Value { return call_method(object, name, args, line); });
    if (object.is(Kind::dict)) {
      const auto* item = object.dict().find(name);
      return item ? *item : Value();
    }
    return {};
  }

  Value subscript(const Value& object, const Value& key, int line) {
    if (object.is(Kind::undefined))
      raise_at(line, "cannot index an undefined value");
    if (object.is(Kind::dict)) {
      if (key.is(Kind::string)) {
        const auto* item = object.dict().find(key.text().chars);
        if (item)
          return *item;
        return has_method(object, key.text().chars) ? attribute(object, key.text().chars, line) : Value();
      }
      return {};
    }
    if ((object.is(Kind::list) || object.is(Kind::string)) && key.is_number() && !key.is(Kind::number)) {
      // A list's item without copying the list: templates index messages inside loops over them.
      auto items = object.is(Kind::list) ? List() : iterate(object, line);
      const auto& source = object.is(Kind::list) ? object.items() : items;
      auto index = key.as_integer();
      auto size = static_cast<std::int64_t>(source.size());
      if (index < 0)
        index += size;
      return index >= 0 && index < size ? source[static_cast<std::size_t>(index)] : Value();
    }
    if (key.is(Kind::string))
      return attribute(object, key.text().chars, line);
    return {};
  }

  Value slice(const Expr& e) {
    auto object = eval(*e.args[0]);
    auto bound = [&](std::size_t i) { return e.args[i] ? eval(*e.args[i]) : Value::none(); };
    auto start_value = bound(1), stop_value = bound(2), step_value = bound(3);
    if (!object.is(Kind::list) && !object.is(Kind::string))
      raise_at(e.line, "cannot slice a value of type " + type_name(object));
    auto items = object.is(Kind::list) ? object.items() : iterate(object, e.line);
    auto size = static_cast<std::int64_t>(items.size());
    std::int64_t step = step_value.is_number() ? step_value.as_integer() : 1;
    if (step == 0)
      raise_at(e.line, "slice step cannot be zero");
    // Python's slice.indices().
    auto clamp = [&](const Value& v, std::int64_t fallback) {
      if (!v.is_number())
        return fallback;
      auto i = v.as_integer();
      if (i < 0)
        i += size;
      if (step > 0)
        return std::clamp<std::int64_t>(i, 0, size);
      return std::clamp<std::int64_t>(i, -1, size - 1);
    };
    auto start = clamp(start_value, step > 0 ? 0 : size - 1);
    auto stop = clamp(stop_value, step > 0 ? size : -1);
    List picked;
    for (auto i = start; step > 0 ? i < stop : i > stop;) {
      picked.push_back(items[static_cast<std::size_t>(i)]);
      if (__builtin_add_overflow(i, step, &i))
        break;
    }
    if (object.is(Kind::list))
      return Value::list(std::move(picked));
    Text out;
    for (const auto& c : picked)
      out.append(c.text());
    return Value::string(std::move(out));
  }

  Value call(const Expr& e) {
    const auto& callee = *e.args[0];
    if (callee.kind == Expr::Kind::attribute) {
      // A method is called at once, not made into a bound function first.
      auto object = eval(*callee.args[0]);
      if (has_method(object, callee.name)) {
        auto args = arguments(e);
        return call_method(object, callee.name, args, e.line);
      }
      auto function = attribute(object, callee.name, e.line);
      if (!function.is(Kind::function))
        raise_at(e.line, "'" + callee.name + "' of a " + type_name(object) + " is not callable");
      auto args = arguments(e);
      return function.call()(args);
    }
    auto function = eval(callee);
    if (!function.is(Kind::function)) {
      auto what = callee.kind == Expr::Kind::name ? "'" + callee.name + "'" : std::string("the value");
      raise_at(e.line, what + (function.is(Kind::undefined) ? " is undefined" : " is not callable"));
    }
    auto args = arguments(e);
    try {
      return function.call()(args);
    } catch (const JinjaError&) {
      throw;
    } catch (const std::exception& error) {
      raise_at(e.line, error.what());
    }
  }

  // Python's float % and //: the remainder takes the divisor's sign (from fmod, exact), and the
  // quotient is what it leaves, rounded.
  static double python_float_mod(double x, double y) {
    double mod = std::fmod(x, y);
    if (mod != 0)
      return (y < 0) != (mod < 0) ? mod + y : mod;
    return std::copysign(0.0, y);
  }
  static double python_float_floordiv(double x, double y) {
    double mod = std::fmod(x, y);
    double div = (x - mod) / y;
    if (mod != 0 && (y < 0) != (mod < 0))
      div -= 1.0;
    if (div == 0)
      return std::copysign(0.0, x / y);
    double floored = std::floor(div);
    return div - floored > 0.5 ? floored + 1.0 : floored;
  }

  static Value arithmetic(const std::string& op, const Value& a, const Value& b, int line) {
    bool real = a.is(Kind::number) || b.is(Kind::number) || op == "/" || (op == "**" && b.as_integer() < 0);
    double x = a.as_double(), y = b.as_double();
    std::int64_t i = a.as_integer(), j = b.as_integer(), r = 0;
    auto exact = [&](bool overflowed) {
      if (overflowed)
        raise_at(line, "integer overflow in " + op);
      return Value::integer(r);
    };
    if ((op == "/" || op == "//" || op == "%") && (real ? y == 0 : j == 0))
      raise_at(line, "division by zero");
    if (op == "+")
      return real ? Value::number(x + y) : exact(__builtin_add_overflow(i, j, &r));
    if (op == "-")
      return real ? Value::number(x - y) : exact(__builtin_sub_overflow(i, j, &r));
    if (op == "*")
      return real ? Value::number(x * y) : exact(__builtin_mul_overflow(i, j, &r));
    if (op == "/")
      return Value::number(x / y);
    if (op == "//" || op == "%") { // Python's: the quotient floored, the remainder with the divisor's sign
      if (real)
        return op == "//" ? Value::number(python_float_floordiv(x, y)) : Value::number(python_float_mod(x, y));
      if (j == -1)
        return op == "%" ? Value::integer(0) : exact(__builtin_sub_overflow(std::int64_t{0}, i, &r));
      auto q = i / j, m = i % j;
      if (m != 0 && ((m < 0) != (j < 0))) {
        --q;
        m += j;
      }
      return Value::integer(op == "//" ? q : m);
    }
    if (real)
      return Value::number(std::pow(x, y));
    r = 1; // integer power by squaring
    bool overflowed = false;
    for (std::int64_t base = i, e = j; e > 0; e >>= 1) {
      if (e & 1)
        overflowed |= __builtin_mul_overflow(r, base, &r);
      if (e > 1)
        overflowed |= __builtin_mul_overflow(base, base, &base);
    }
    return exact(overflowed);
  }

  Value binary(const std::string& op, const Value& a, const Value& b, int line) {
    if (op == "~") {
      auto text = to_text(a);
      text.append(to_text(b));
      return Value::string(std::move(text));
    }
    if (op == "==")
      return Value::boolean(equal(a, b));
    if (op == "!=")
      return Value::boolean(!equal(a, b));
    if (op == "in" || op == "not in") {
      Arguments args;
      args.positional.push_back(b);
      if (b.is(Kind::none) || b.is_number()) // an undefined value iterates as empty
        raise_at(line, "argument of type '" + type_name(b) + "' is not iterable");
      return Value::boolean(apply_test("in", a, args, line) == (op == "in"));
    }
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      Arguments args;
      args.positional.push_back(b);
      return Value::boolean(apply_test(op, a, args, line));
    }
    if (a.is_number() && b.is_number())
      return arithmetic(op, a, b, line);
    if (op == "+" && a.is(Kind::string) && b.is(Kind::string)) {
      auto text = a.text();
      text.append(b.text());
      return Value::string(std::move(text));
    }
    if (op == "+" && a.is(Kind::list) && b.is(Kind::list)) {
      auto items = a.items();
      items.insert(items.end(), b.items().begin(), b.items().end());
      return Value::list(std::move(items));
    }
    if (op == "*" && (b.is(Kind::string) || b.is(Kind::list)) && a.is_number() && !a.is(Kind::number))
      return binary(op, b, a, line); // 3 * 'ab'
    if (op == "*" && (a.is(Kind::string) || a.is(Kind::list)) && b.is_number() && !b.is(Kind::number)) {
      auto times = std::max<std::int64_t>(b.as_integer(), 0);
      auto unit = a.is(Kind::string) ? a.text().size() : a.items().size();
      if (unit > 0 && static_cast<std::uint64_t>(times) > kMaxOutput / unit)
        raise_at(line, "a repetition past 256 MiB");
      if (a.is(Kind::list)) {
        List items;
        for (std::int64_t n = 0; n < times; ++n)
          items.insert(items.end(), a.items().begin(), a.items().end());
        return Value::list(std::move(items));
      }
      Text text;
      for (std::int64_t n = 0; n < times; ++n)
        text.append(a.text());
      return Value::string(std::move(text));
    }
    raise_at(line, "unsupported operand types for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
  }

  std::vector<std::shared_ptr<Scope>> frames_;
  Text out_;
  int depth_ = 0;
  std::int64_t iterations_ = 0;
};

} // namespace

} // namespace jinja

JinjaTemplate::JinjaTemplate(std::string_view source)
  : body_(std::make_shared<const jinja::Body>(jinja::parse_template(source))) {}

JinjaTemplate::~JinjaTemplate() = default;
JinjaTemplate::JinjaTemplate(JinjaTemplate&&) noexcept = default;
JinjaTemplate& JinjaTemplate::operator=(JinjaTemplate&&) noexcept = default;

std::vector<ChatPiece> JinjaTemplate::render(const nlohmann::ordered_json& conversation,
                                             const nlohmann::ordered_json& settings) const {
  auto root = std::make_shared<jinja::Scope>();
  for (const auto& [name, value] : conversation.items())
    root->set(name, jinja::from_json(value, /*data=*/true));
  for (const auto& [name, value] : settings.items())
    root->set(name, jinja::from_json(value, /*data=*/false));
  auto text = jinja::Renderer(root).render(*body_);
  std::vector<ChatPiece> pieces;
  for (std::size_t i = 0; i < text.size();) {
    auto j = i;
    while (j < text.size() && text.from_data[j] == text.from_data[i])
      ++j;
    pieces.push_back(
      {text.from_data[i] ? ChatPiece::Kind::text : ChatPiece::Kind::markup, text.chars.substr(i, j - i)});
    i = j;
  }
  return pieces;
}

} // namespace chorus::models
