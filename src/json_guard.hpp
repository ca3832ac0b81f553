// Parsing untrusted JSON without letting it take the backend down.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace clerk_sync {

// nlohmann::json's dump() and destructor-adjacent helpers recurse once per nesting level, so a
// hostile body of a million '[' would exhaust the backend's stack (a crash restarts the whole
// cluster). Anything nested deeper than this is refused before it is parsed.
constexpr int kMaxJsonDepth = 128;

enum class JsonParseStatus { ok, not_json, too_deep };

struct ParsedJson {
    JsonParseStatus status;
    nlohmann::json value;
};

// Parses without exceptions; `value` is meaningful only when status == ok.
ParsedJson parse_json(std::string_view text);

// The text of each element of a top-level JSON array, as received (whitespace trimmed), or
// nothing when `text` is not an array. For text that parse_json() accepted.
std::optional<std::vector<std::string_view>> array_elements(std::string_view text);

// Reads an optional string member: the value when it is a JSON string, nothing otherwise.
std::optional<std::string> string_member(const nlohmann::json &object, const char *key);

// Serialises compactly; never throws on strings that a successful parse produced.
std::string dump_json(const nlohmann::json &value);

}  // namespace clerk_sync
