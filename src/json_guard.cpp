#include "json_guard.hpp"

namespace clerk_sync {

namespace {

// Walks the bytes of JSON text from `from`, skipping the insides of strings, and hands every
// other byte to `visit` (position, byte); stops early when `visit` returns false.
template <typename Visit>
void scan_outside_strings(std::string_view text, size_t from, Visit visit) {
    bool in_string = false;
    bool escaped = false;
    for (size_t i = from; i < text.size(); ++i) {
        char c = text[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"')
            in_string = true;
        if (!visit(i, c))
            return;
    }
}

bool depth_within(std::string_view text, int max_depth) {
    int depth = 0;
    bool ok = true;
    scan_outside_strings(text, 0, [&](size_t, char c) {
        if (c == '[' || c == '{')
            ok = ++depth <= max_depth;
        else if (c == ']' || c == '}')
            --depth;
        return ok;
    });
    return ok;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

ParsedJson parse_json(std::string_view text) {
    if (!depth_within(text, kMaxJsonDepth))
        return {JsonParseStatus::too_deep, nullptr};
    nlohmann::json value = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (value.is_discarded())
        return {JsonParseStatus::not_json, nullptr};
    return {JsonParseStatus::ok, std::move(value)};
}

std::optional<std::vector<std::string_view>> array_elements(std::string_view text) {
    size_t open = text.find_first_not_of(" \t\n\r");
    if (open == std::string_view::npos || text[open] != '[')
        return std::nullopt;
    std::vector<std::string_view> out;
    int depth = 0;
    bool closed = false;
    size_t start = std::string_view::npos;  // where the current element began
    auto close_element = [&](size_t end) {
        while (end > start && is_space(text[end - 1]))
            --end;
        out.push_back(text.substr(start, end - start));
        start = std::string_view::npos;
    };
    scan_outside_strings(text, open + 1, [&](size_t i, char c) {
        if (depth == 0 && start == std::string_view::npos && !is_space(c) && c != ',' && c != ']')
            start = i;
        if (c == '[' || c == '{') {
            ++depth;
        } else if (c == '}' || (c == ']' && depth > 0)) {
            --depth;
        } else if (depth == 0 && (c == ',' || c == ']')) {
            if (start != std::string_view::npos)
                close_element(i);
            closed = c == ']';
            return !closed;
        }
        return true;
    });
    if (!closed)
        return std::nullopt;
    return out;
}

std::optional<std::string> string_member(const nlohmann::json &object, const char *key) {
    auto it = object.find(key);
    if (it == object.end() || !it->is_string())
        return std::nullopt;
    return it->get<std::string>();
}

std::string dump_json(const nlohmann::json &value) {
    return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace clerk_sync
