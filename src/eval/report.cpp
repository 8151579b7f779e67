#include "robometer/eval/report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "robometer/core/error.h"
#include "robometer/eval/metrics.h"
#include "robometer/io/atomic_file.h"
#include "robometer/plot/charts.h"

namespace robometer::eval {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

// A data-source name as a file-name part: [A-Za-z0-9_-], the rest as '_'.
std::string file_part(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return o.empty() ? "source" : o;
}

std::vector<double> doubles(const json& j) {
  std::vector<double> v;
  for (const auto& x : j) v.push_back(x.is_number() ? x.get<double>() : std::nan(""));
  return v;
}

std::string number_text(const json& v) {
  if (!v.is_number()) return "n/a";
  std::ostringstream o;
  o.precision(3);
  o << std::fixed << v.get<double>();
  return o.str();
}

// The markdown table of render_markdown as an HTML table (other lines as paragraphs).
std::string markdown_to_html(const std::string& md) {
  std::istringstream in(md);
  std::string line, out;
  bool in_table = false, header = true;
  for (; std::getline(in, line);) {
    if (line.rfind("|", 0) == 0) {
      if (line.find("---") != std::string::npos) continue;  // the alignment row
      if (!in_table) out += "<table>\n", in_table = true, header = true;
      out += "<tr>";
      std::string cell;
      std::istringstream cells(line.substr(1));
      while (std::getline(cells, cell, '|')) {
        const auto b = cell.find_first_not_of(' '), e = cell.find_last_not_of(' ');
        std::string t = b == std::string::npos ? "" : cell.substr(b, e - b + 1);
        const bool bold = t.size() > 4 && t.rfind("**", 0) == 0;
        if (bold) t = t.substr(2, t.size() - 4);
        const std::string tag = header ? "th" : "td";
        out += "<" + tag + ">" + (bold ? "<b>" + html_escape(t) + "</b>" : html_escape(t)) + "</" + tag + ">";
      }
      out += "</tr>\n";
      header = false;
    } else {
      if (in_table) out += "</table>\n", in_table = false;
      if (!line.empty()) out += "<p>" + html_escape(line) + "</p>\n";
    }
  }
  if (in_table) out += "</table>\n";
  return out;
}

struct Figure {
  std::string file, caption;
};

}  // namespace

ReportFiles write_eval_report(const json& result, const std::string& metrics_markdown,
                              const std::string& dir) {
  ReportFiles files;
  std::vector<Figure> figures;
  const json trajs = result.value("trajectories", json::array());
  auto add = [&](const std::string& file, const std::string& caption, auto&& draw) {
    if (!plot::cairo_available()) return;
    draw((fs::path(dir) / file).string());
    files.figures.push_back(file);
    figures.push_back({file, caption});
  };
  if (!plot::cairo_available()) files.notes.push_back("built without Cairo: no figures");
  if (trajs.empty()) files.notes.push_back("no per-trajectory scores in the result: no VOC or curve figures");

  // Per source: predicted vs true progress at each prefix end, one colour per quality label.
  std::map<std::string, std::vector<const json*>> by_source;
  for (const auto& t : trajs) by_source[t.value("data_source", std::string())].push_back(&t);
  for (const auto& [source, list] : by_source) {
    plot::XYChart c;
    const json& voc =
        result["by_data_source"].contains(source) ? result["by_data_source"][source]["voc"] : json();
    c.title = "VOC, " + source + ": predicted vs true progress at each prefix end (mean Pearson r " +
              number_text(voc.is_object() ? voc.value("pearson", json()) : json()) + ")";
    c.x_label = "true progress (Robometer label)";
    c.y_label = "predicted progress";
    c.x_range = {0.0, 1.0};
    c.y_range = {0.0, 1.0};
    c.identity_line = true;
    const char* qualities[] = {"successful", "suboptimal", "failure"};
    for (size_t q = 0; q < 3; ++q) {
      plot::Series s;
      s.label = std::string(qualities[q]) + " trajectories";
      s.color = plot::palette(q == 0 ? 2 : q == 1 ? 1 : 3);
      s.lines = false;
      for (const json* t : list) {
        if (t->value("quality", std::string()) != qualities[q]) continue;
        const auto gt = doubles((*t)["gt_progress"]), pr = doubles((*t)["pred_progress"]);
        for (size_t i = 0; i < std::min(gt.size(), pr.size()); ++i)
          s.x.push_back(gt[i]), s.y.push_back(pr[i]);
      }
      if (!s.x.empty()) c.series.push_back(std::move(s));
    }
    add("voc_" + file_part(source) + ".png", "VOC scatter, data source " + source,
        [&](const std::string& p) { plot::write_xy_chart(c, p); });
  }

  // Best / median / worst successful trajectory by its own VOC Pearson r.
  std::vector<std::pair<double, const json*>> ranked;
  for (const auto& t : trajs) {
    if (t.value("quality", std::string()) != "successful") continue;
    if (auto r = pearson(doubles(t["gt_progress"]), doubles(t["pred_progress"]))) ranked.emplace_back(*r, &t);
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  if (ranked.empty()) {
    if (!trajs.empty())
      files.notes.push_back("no successful trajectory with a defined VOC: no reward curves");
  } else {
    const std::pair<const char*, size_t> picks[] = {
        {"best", 0}, {"median", ranked.size() / 2}, {"worst", ranked.size() - 1}};
    for (const auto& [name, at] : picks) {
      const json& t = *ranked[at].second;
      plot::XYChart c;
      c.title = std::string(name) + " VOC (r " + number_text(ranked[at].first) +
                "): " + t.value("id", std::string()) + ", \"" + t.value("task", std::string()) + "\"";
      c.x_label = "stored frame (end of each scored prefix)";
      c.y_label = "value";
      c.y_range = {0.0, 1.0};
      std::vector<double> xs;
      for (const auto& e : t.value("prefix_ends", json::array())) xs.push_back(e.get<double>());
      const auto gt = doubles(t["gt_progress"]);
      if (xs.size() != gt.size()) {  // older results without prefix ends: prefix number
        xs.clear();
        for (size_t i = 0; i < gt.size(); ++i) xs.push_back(static_cast<double>(i));
        c.x_label = "prefix";
      }
      c.x_range = {0.0, std::max(1.0, xs.empty() ? 1.0 : xs.back())};
      plot::Series g{"ground truth", xs, gt, plot::palette(2), true, true, true};
      plot::Series p{"predicted progress", xs, doubles(t["pred_progress"]), plot::palette(0)};
      c.series = {g, p};
      const auto succ = doubles(t.value("pred_success", json::array()));
      if (succ.size() == xs.size())
        c.series.push_back({"P(success)", xs, succ, plot::palette(3), true, true, true});
      add(std::string("reward_") + name + ".png",
          std::string(name) + " trajectory by VOC: " + t.value("id", std::string()),
          [&](const std::string& path) { plot::write_xy_chart(c, path); });
    }
  }

  // Confusion matrix (pooled over sources with >= 2 tasks).
  const json conf = result.contains("overall") ? result["overall"].value("confusion", json()) : json();
  if (conf.is_object() && conf.contains("matrix") && !conf["matrix"].empty()) {
    plot::Heatmap h;
    h.title = "Confusion matrix: last-frame progress of each video under each instruction (diagonal score " +
              number_text(conf.value("diagonal_score", json())) + ")";
    h.row_axis = "rows: the video's own task";
    h.col_axis = "columns: the instruction it was scored with";
    for (const auto& t : conf["tasks"]) h.rows.push_back(t.get<std::string>());
    h.cols = h.rows;
    for (const auto& row : conf["matrix"]) h.values.push_back(doubles(row));
    add("confusion.png", "Confusion matrix (raw mean rewards)",
        [&](const std::string& p) { plot::write_heatmap(h, p); });
  } else {
    files.notes.push_back("no confusion matrix (needs a data source with >= 2 tasks)");
  }

  // Policy ranking: final progress by quality label, per task (offset slightly to tell tasks apart).
  if (!trajs.empty()) {
    plot::XYChart c;
    c.title = "Policy ranking: final progress by quality (Kendall tau-a " +
              number_text(result.contains("overall")
                              ? result["overall"]["policy_ranking"].value("kendall_tau_a", json())
                              : json()) +
              ")";
    c.x_label = "quality label";
    c.y_label = "final progress (whole trajectory)";
    c.x_tick_labels = {"failure", "suboptimal", "successful"};
    c.x_range = {-0.5, 2.5};
    c.y_range = {0.0, 1.0};
    std::map<std::string, size_t> task_no;
    for (const auto& t : trajs) task_no.emplace(t.value("task", std::string()), task_no.size());
    std::vector<plot::Series> series(task_no.size());
    for (const auto& [task, k] : task_no) {
      series[k].label = task;
      series[k].color = plot::palette(k);
      series[k].lines = false;
    }
    const double spread = 0.5 / std::max<size_t>(1, task_no.size());
    for (const auto& t : trajs) {
      const std::string q = t.value("quality", std::string());
      const double x = q == "failure" ? 0 : q == "suboptimal" ? 1 : 2;
      const size_t k = task_no.at(t.value("task", std::string()));
      series[k].x.push_back(x - 0.25 + spread * (k + 0.5));
      series[k].y.push_back(t.value("final_progress", std::nan("")));
    }
    c.series = std::move(series);
    add("policy_ranking.png", "Policy ranking", [&](const std::string& p) { plot::write_xy_chart(c, p); });
  }

  std::string html =
      "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>robometer eval</title>\n<style>"
      "body{font-family:sans-serif;margin:24px;max-width:1100px}table{border-collapse:collapse;font-size:"
      "13px}"
      "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
      "figure{display:inline-block;margin:8px}img{max-width:100%;border:1px solid #ddd}"
      "pre{background:#f6f6f6;padding:8px;font-size:12px}</style></head><body>\n";
  html +=
      "<h1>robometer eval</h1>\n<p>model: " + html_escape(result.value("model", std::string("?"))) + "</p>\n";
  html += "<h2>Metrics</h2>\n" + markdown_to_html(metrics_markdown);
  html += "<h2>Figures</h2>\n";
  for (const auto& f : figures)
    html += "<figure><img src=\"" + html_escape(f.file) + "\" alt=\"" + html_escape(f.caption) +
            "\"><figcaption>" + html_escape(f.caption) + "</figcaption></figure>\n";
  for (const auto& n : files.notes) html += "<p><i>" + html_escape(n) + "</i></p>\n";
  if (result.contains("protocol"))
    html += "<h2>Protocol</h2>\n<pre>" + html_escape(result["protocol"].dump(2)) + "</pre>\n";
  html += "</body></html>\n";
  files.html = (fs::path(dir) / "report.html").string();
  io::write_file_atomic(files.html, html);
  return files;
}

}  // namespace robometer::eval
