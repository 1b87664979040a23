#include "svg_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace c3 {
namespace {

// A "nice" tick step (1, 2 or 5 x 10^k) giving about `count` ticks over `span`.
double tick_step(double span, int count) {
  const double raw = span / count;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (raw <= m * magnitude) return m * magnitude;
  return 10.0 * magnitude;
}

std::string number(double v) {
  std::string s = fmt::format("{:.6g}", std::fabs(v) < 1e-12 ? 0.0 : v);
  return s;
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

SvgPlot::SvgPlot(std::string title, std::string x_label, std::string y_label)
    : title_(std::move(title)), x_label_(std::move(x_label)), y_label_(std::move(y_label)) {}

void SvgPlot::add_points(std::string legend, std::string color, Points points, bool hollow) {
  series_.push_back({std::move(legend), std::move(color), std::move(points), false, hollow});
}

void SvgPlot::add_line(std::string legend, std::string color, Points points, bool dashed) {
  series_.push_back({std::move(legend), std::move(color), std::move(points), true, dashed});
}

std::string SvgPlot::render(int width, int height) const {
  double x_lo = x_lo_, x_hi = x_hi_, y_lo = y_lo_, y_hi = y_hi_;
  auto fit = [&](bool fixed, double& lo, double& hi, bool is_x) {
    if (fixed) return;
    lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const auto& s : series_)
      for (const auto& [x, y] : s.points)
        if (std::isfinite(is_x ? x : y)) lo = std::min(lo, is_x ? x : y), hi = std::max(hi, is_x ? x : y);
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    const double pad = hi > lo ? (hi - lo) * 0.08 : 1.0;
    lo -= pad, hi += pad;
  };
  fit(x_fixed_, x_lo, x_hi, true);
  fit(y_fixed_, y_lo, y_hi, false);
  const double left = 70, right = 250, top = 40, bottom = 55;
  const double pw = width - left - right, ph = height - top - bottom;
  auto px = [&](double x) { return left + (x - x_lo) / (x_hi - x_lo) * pw; };
  auto py = [&](double y) { return top + ph - (y - y_lo) / (y_hi - y_lo) * ph; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      width, height, width, height);
  svg += fmt::format("<text x=\"{}\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">{}</text>\n", left + pw / 2,
                     xml_escape(title_));
  // Grid and ticks.
  const double xs = tick_step(x_hi - x_lo, 8), ys = tick_step(y_hi - y_lo, 6);
  for (double x = std::ceil(x_lo / xs) * xs; x <= x_hi + 1e-9 * xs; x += xs)
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#e4e4e4\"/>"
        "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
        px(x), top, top + ph, top + ph + 16, number(x));
  for (double y = std::ceil(y_lo / ys) * ys; y <= y_hi + 1e-9 * ys; y += ys)
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#e4e4e4\"/>"
        "<text x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
        left, py(y), left + pw, left - 6, py(y) + 4, number(y));
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#555\"/>\n", left, top,
                     pw, ph);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", left + pw / 2, height - 14,
                     xml_escape(x_label_));
  svg += fmt::format("<text transform=\"translate(18 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     top + ph / 2, xml_escape(y_label_));
  // Series, clipped to the plot area.
  svg += fmt::format(
      "<clipPath id=\"area\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath>\n<g "
      "clip-path=\"url(#area)\">\n",
      left, top, pw, ph);
  for (const auto& s : series_) {
    if (s.line) {
      std::string path;
      for (const auto& [x, y] : s.points) {
        if (!std::isfinite(x) || !std::isfinite(y)) continue;
        path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", px(x), py(y));
      }
      if (!path.empty())
        svg += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", path, s.color,
                           s.hollow_or_dashed ? " stroke-dasharray=\"6 4\"" : "");
    }
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\" stroke=\"{}\"/>\n", px(x), py(y),
                         s.line ? 2.5 : 3.5, !s.line && s.hollow_or_dashed ? "none" : s.color, s.color);
    }
  }
  svg += "</g>\n";
  // Legend.
  double ly = top + 8;
  for (const auto& s : series_) {
    const double lx = left + pw + 14;
    if (s.line)
      svg += fmt::format(
          "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\"{}/>", lx, ly,
          lx + 18, ly, s.color, s.hollow_or_dashed ? " stroke-dasharray=\"6 4\"" : "");
    else
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\" stroke=\"{}\"/>", lx + 9, ly,
                         s.hollow_or_dashed ? "none" : s.color, s.color);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", lx + 24, ly + 4, xml_escape(s.legend));
    ly += 18;
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace c3
