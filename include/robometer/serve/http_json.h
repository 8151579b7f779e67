// JSON in and out of the HTTP handlers, hardened against hostile bodies: depth and value
// counts bounded while parsing, invalid UTF-8 never turns a reply into a 500, and LibTorch
// errors reach clients without their C++ backtrace.
#pragma once
#include <httplib.h>

#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "robometer/serve/request_limits.h"

namespace robometer::serve {

// Parses `body`; malformed JSON -> ClientError 400, deeper than max_json_depth -> 400, more
// than max_json_values values -> 413 (checked while parsing, before the document is built).
nlohmann::json parse_json_body(const std::string& body, const RequestLimits& limits,
                               const std::string& what = "body");

// Sets status and a JSON body; strings that are not UTF-8 are written with U+FFFD.
void reply_json(httplib::Response& res, int status, const nlohmann::json& body);
// {"error": message} with status.
void reply_error(httplib::Response& res, int status, const std::string& message);
// The status and one-line message an exception maps to: ClientError -> its status; JSON type
// errors -> 400; anything else -> 500 (c10::Error without its backtrace).
std::pair<int, std::string> error_reply(const std::exception& e);
// The message of `e` on one line (c10::Error without its backtrace).
std::string one_line_message(const std::exception& e);

// body[key] as a string / bool; absent -> nullopt; another JSON type -> 400 naming the key.
std::optional<std::string> string_field(const nlohmann::json& body, const char* key,
                                        const std::string& where = "");
std::optional<bool> bool_field(const nlohmann::json& body, const char* key, const std::string& where = "");

}  // namespace robometer::serve
