// SQL-callable webhook functions: clerk_apply_event (signed and trusted) and clerk_webhook_verify.
#include <ctime>
#include <string>
#include <string_view>

#include "clerk_user.hpp"
#include "json_guard.hpp"
#include "settings.hpp"
#include "svix.hpp"
#include "user_store.hpp"
#include "pg_boundary.hpp"

extern "C" {
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(clerk_apply_event_signed);
PG_FUNCTION_INFO_V1(clerk_apply_event_trusted);
PG_FUNCTION_INFO_V1(clerk_webhook_verify);
}

namespace clerk_sync {

namespace {

// A text argument as bytes, exactly as received (detoasted, never re-encoded).
std::string_view text_arg(FunctionCallInfo fcinfo, int n) {
    text *t = pg_call([&] { return PG_GETARG_TEXT_PP(n); });
    return {VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)};
}

// A jsonb argument, parsed into nlohmann::json (depth-limited like every untrusted input).
nlohmann::json jsonb_arg(FunctionCallInfo fcinfo, int n, const char *name) {
    char *text = pg_call([&] {
        Jsonb *jb = PG_GETARG_JSONB_P(n);
        return JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
    });
    ParsedJson parsed = parse_json(text);
    if (parsed.status != JsonParseStatus::ok)
        throw Error(ErrorKind::invalid_argument, std::string(name) + " is nested too deeply");
    return std::move(parsed.value);
}

int64_t unix_seconds(TimestampTz ts) { return static_cast<int64_t>(timestamptz_to_time_t(ts)); }

Datum text_datum(const std::string &s) {
    return pg_call([&] { return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size()))); });
}

}  // namespace

}  // namespace clerk_sync

using namespace clerk_sync;

// clerk_apply_event(payload text, headers jsonb) returns text
// The endpoint's entry point: verify the Svix signature over the raw body, then apply the event.
extern "C" Datum clerk_apply_event_signed(PG_FUNCTION_ARGS) {
    return cpp_entry([&] {
        require_args(fcinfo, {"payload", "headers"});
        std::vector<std::string> keys = webhook_keys();
        std::string_view payload = text_arg(fcinfo, 0);
        svix::Headers headers = svix::headers_from_json(jsonb_arg(fcinfo, 1, "headers"));
        svix::verify(payload, headers, keys, unix_seconds(GetCurrentTimestamp()), webhook_tolerance_s());
        ClerkEvent event = parse_event(payload, mapping_options());
        return text_datum(store_event(event, headers.id, payload));
    });
}

// clerk_apply_event(event jsonb) returns text
// The trusted path, for replays and administration: no signature, no duplicate check.
extern "C" Datum clerk_apply_event_trusted(PG_FUNCTION_ARGS) {
    return cpp_entry([&] {
        require_args(fcinfo, {"event"});
        std::string payload = dump_json(jsonb_arg(fcinfo, 0, "event"));
        ClerkEvent event = parse_event(payload, mapping_options());
        return text_datum(store_event(event, {}, payload));
    });
}

// clerk_webhook_verify(payload text, headers jsonb, secret text, at timestamptz) returns boolean
// The signature and timestamp check alone, with the clock given, so known answers are testable.
extern "C" Datum clerk_webhook_verify(PG_FUNCTION_ARGS) {
    return cpp_entry([&] {
        require_args(fcinfo, {"payload", "headers", "secret", "at"});
        std::string_view payload = text_arg(fcinfo, 0);
        nlohmann::json header_json = jsonb_arg(fcinfo, 1, "headers");
        std::vector<std::string> keys;
        std::string problem;
        if (!svix::decode_secrets(text_arg(fcinfo, 2), keys, problem))
            throw Error(ErrorKind::invalid_argument, "secret is not a usable webhook secret", problem);
        try {
            svix::Headers headers = svix::headers_from_json(header_json);
            svix::verify(payload, headers, keys, unix_seconds(PG_GETARG_TIMESTAMPTZ(3)), webhook_tolerance_s());
        } catch (const Error &e) {
            if (e.kind() != ErrorKind::invalid_signature)
                throw;
            return BoolGetDatum(false);
        }
        return BoolGetDatum(true);
    });
}
