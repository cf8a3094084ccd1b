#include "report.hpp"

#include <chorus/config.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>

namespace {

using Series = std::vector<std::pair<double, double>>; // (step, value)

// metrics.jsonl as series, by "stage/key".
std::map<std::string, Series> read_metrics(const std::filesystem::path& file) {
  std::map<std::string, Series> series;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    auto row = chorus::Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!row.is_object() || !row.contains("stage") || !row.contains("step"))
      continue;
    auto stage = row["stage"].get<std::string>();
    auto step = row["step"].get<double>();
    for (const auto& [key, value] : row.items())
      if (value.is_number() && key != "step" && key != "time_s")
        series[stage + "/" + key].emplace_back(step, value.get<double>());
  }
  return series;
}

std::string format(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.3g", value);
  return buffer;
}

// One line chart as inline SVG: `lines` share the axes.
std::string chart(const std::string& title, const std::vector<std::pair<std::string, const Series*>>& lines) {
  const double width = 560, height = 240, left = 50, right = 12, top = 28, bottom = 30;
  double x_min = 1e300, x_max = -1e300, y_min = 1e300, y_max = -1e300;
  for (const auto& [name, series] : lines)
    for (const auto& [x, y] : *series) {
      x_min = std::min(x_min, x);
      x_max = std::max(x_max, x);
      y_min = std::min(y_min, y);
      y_max = std::max(y_max, y);
    }
  if (x_min > x_max)
    return "<p>" + title + ": no data</p>";
  if (x_max == x_min)
    x_max = x_min + 1;
  if (y_max == y_min)
    y_max = y_min + 1;
  auto px = [&](double x) { return left + (x - x_min) / (x_max - x_min) * (width - left - right); };
  auto py = [&](double y) { return top + (1 - (y - y_min) / (y_max - y_min)) * (height - top - bottom); };
  static const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
  std::string svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + format(width)
    + "\" height=\"" + format(height) + "\" role=\"img\" aria-label=\"" + title + "\">";
  svg += "<text x=\"" + format(left) + "\" y=\"18\" font-weight=\"bold\">" + title + "</text>";
  svg += "<line x1=\"" + format(left) + "\" y1=\"" + format(height - bottom) + "\" x2=\"" + format(width - right)
    + "\" y2=\"" + format(height - bottom) + "\" stroke=\"#888\"/>";
  svg += "<line x1=\"" + format(left) + "\" y1=\"" + format(top) + "\" x2=\"" + format(left) + "\" y2=\""
    + format(height - bottom) + "\" stroke=\"#888\"/>";
  svg += "<text x=\"4\" y=\"" + format(top + 10) + "\" font-size=\"11\">" + format(y_max) + "</text>";
  svg += "<text x=\"4\" y=\"" + format(height - bottom) + "\" font-size=\"11\">" + format(y_min) + "</text>";
  svg += "<text x=\"" + format(width - right - 60) + "\" y=\"" + format(height - 8) + "\" font-size=\"11\">step "
    + format(x_max) + "</text>";
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string points;
    for (const auto& [x, y] : *lines[i].second)
      points += format(px(x)) + "," + format(py(y)) + " ";
    svg += "<polyline class=\"series\" fill=\"none\" stroke-width=\"2\" stroke=\"" + std::string(colours[i % 4])
      + "\" points=\"" + points + "\"/>";
    svg += "<text x=\"" + format(left + 10 + 140 * static_cast<double>(i)) + "\" y=\"" + format(height - 8)
      + "\" font-size=\"11\" fill=\"" + colours[i % 4] + "\">" + lines[i].first + "</text>";
  }
  return svg + "</svg>";
}

} // namespace

std::filesystem::path write_report(const std::filesystem::path& output_dir,
                                   const std::vector<std::pair<std::string, even_number::Evaluation>>& evaluations) {
  auto series = read_metrics(output_dir / "metrics.jsonl");
  static const Series empty;
  auto get = [&](const std::string& key) { return series.count(key) ? &series.at(key) : &empty; };
  std::string html = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>chorus: SFT then GSPO</title>"
                     "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
                     "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px}"
                     ".charts{display:flex;flex-wrap:wrap;gap:16px}</style></head><body>";
  html += "<h1>SFT then GSPO on builtin:tiny</h1><h2>Held-out evaluation</h2><table id=\"evaluation\">"
          "<tr><th>stage</th><th>format</th><th>accuracy</th></tr>";
  for (const auto& [stage, result] : evaluations)
    html +=
      "<tr><td>" + stage + "</td><td>" + format(result.format) + "</td><td>" + format(result.accuracy) + "</td></tr>";
  html += "</table><h2>Training</h2><div class=\"charts\">";
  html += chart("SFT loss", {{"loss", get("sft/loss")}});
  html += chart("GSPO reward",
                {{"reward", get("gspo/reward_mean")},
                 {"correct", get("gspo/reward/correct")},
                 {"format", get("gspo/reward/format")}});
  html += chart("GSPO loss", {{"loss", get("gspo/loss")}});
  html += "</div></body></html>\n";
  auto path = output_dir / "report.html";
  std::ofstream(path) << html;
  return path;
}

void StageTimes::lap(const std::string& name) {
  auto now = std::chrono::steady_clock::now();
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.1f", std::chrono::duration<double>(now - last_).count());
  line_ += (line_.empty() ? "" : " ") + name + "=" + seconds;
  last_ = now;
}
