#include "robometer/data/trajectory.h"

#include "robometer/core/error.h"

namespace robometer::data {

Quality parse_quality(const std::string& s) {
  if (s == "successful" || s == "success" || s == "optimal") return Quality::Successful;
  if (s == "suboptimal") return Quality::Suboptimal;
  if (s == "failure" || s == "failed") return Quality::Failure;
  throw Error("unknown quality label '" + s + "' (expected successful | suboptimal | failure)");
}

const char* quality_name(Quality q) {
  switch (q) {
    case Quality::Successful:
      return "successful";
    case Quality::Suboptimal:
      return "suboptimal";
    case Quality::Failure:
      return "failure";
  }
  return "?";
}

}  // namespace robometer::data
