#include "robometer/serve/http_json.h"

#include <c10/util/Exception.h>

namespace robometer::serve {
using nlohmann::json;

json parse_json_body(const std::string& body, const RequestLimits& limits, const std::string& what) {
  int64_t values = 0;
  // nlohmann's parser is iterative, but the document it builds is not free: the callback
  // stops a body of millions of tiny values or a deep nesting before it is built.
  const json::parser_callback_t guard = [&](int depth, json::parse_event_t event, json&) {
    if (depth > limits.max_json_depth)
      throw ClientError(
          400, what + ": JSON nested deeper than " + std::to_string(limits.max_json_depth) + " levels");
    if (event == json::parse_event_t::value || event == json::parse_event_t::object_start ||
        event == json::parse_event_t::array_start)
      if (++values > limits.max_json_values)
        throw_over_limit(what + ": JSON values", values, limits.max_json_values, "--max-json-values");
    return true;
  };
  try {
    return json::parse(body, guard);
  } catch (const json::exception& e) {
    throw ClientError(400, what + ": bad JSON: " + std::string(e.what()));
  }
}

void reply_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message) {
  reply_json(res, status, {{"error", message}});
}

std::string one_line_message(const std::exception& e) {
  std::string m;
  if (const auto* c10e = dynamic_cast<const c10::Error*>(&e))
    m = c10e->what_without_backtrace();
  else
    m = e.what();
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  for (char& c : m)
    if (c == '\n' || c == '\r') c = ' ';
  return m;
}

std::pair<int, std::string> error_reply(const std::exception& e) {
  if (const auto* ce = dynamic_cast<const ClientError*>(&e)) return {ce->status, one_line_message(e)};
  if (dynamic_cast<const json::exception*>(&e)) return {400, "wrong JSON type: " + one_line_message(e)};
  return {500, one_line_message(e)};
}

namespace {
const json* field(const json& body, const char* key) {
  if (!body.is_object()) return nullptr;
  const auto it = body.find(key);
  return it == body.end() ? nullptr : &*it;
}
}  // namespace

std::optional<std::string> string_field(const json& body, const char* key, const std::string& where) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_string())
    throw ClientError(400, where + "\"" + key + "\" must be a string, got " + std::string(v->type_name()));
  return v->get<std::string>();
}

std::optional<bool> bool_field(const json& body, const char* key, const std::string& where) {
  const json* v = field(body, key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_boolean())
    throw ClientError(400,
                      where + "\"" + key + "\" must be true or false, got " + std::string(v->type_name()));
  return v->get<bool>();
}

}  // namespace robometer::serve
