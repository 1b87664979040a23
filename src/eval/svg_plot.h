// A small self-contained SVG chart (axes, ticks, scatter and line series, legend): the eval
// report's plots open in any browser with no other tool.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace c3 {

class SvgPlot {
 public:
  using Points = std::vector<std::pair<double, double>>;
  SvgPlot(std::string title, std::string x_label, std::string y_label);
  // Fixed axis ranges; otherwise each axis spans the data (with a margin).
  void set_x_range(double lo, double hi) { x_lo_ = lo, x_hi_ = hi, x_fixed_ = true; }
  void set_y_range(double lo, double hi) { y_lo_ = lo, y_hi_ = hi, y_fixed_ = true; }
  void add_points(std::string legend, std::string color, Points points, bool hollow = false);
  void add_line(std::string legend, std::string color, Points points, bool dashed = false);
  std::string render(int width = 860, int height = 460) const;

 private:
  struct Series {
    std::string legend, color;
    Points points;
    bool line, hollow_or_dashed;
  };
  std::string title_, x_label_, y_label_;
  double x_lo_ = 0, x_hi_ = 1, y_lo_ = 0, y_hi_ = 1;
  bool x_fixed_ = false, y_fixed_ = false;
  std::vector<Series> series_;
};

// Text escaped for XML.
std::string xml_escape(const std::string& text);

}  // namespace c3
