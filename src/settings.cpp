#include "settings.hpp"

#include <cstdlib>

#include "svix.hpp"
#include "pg_boundary.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace clerk_sync {

namespace {

char *webhook_secret_setting = nullptr;
int webhook_tolerance_setting = 300;
bool require_email_setting = true;
char *tier_key_setting = nullptr;
char *secret_key_setting = nullptr;
char *api_url_setting = nullptr;
char *ca_file_setting = nullptr;
char *api_version_setting = nullptr;
int page_size_setting = 500;
int connect_timeout_setting = 5000;
int request_timeout_setting = 30000;
int max_retries_setting = 5;
bool allow_insecure_http_setting = false;
double max_delete_fraction_setting = 0.1;
char *rate_limit_timezone_setting = nullptr;
bool fetch_missing_users_setting = true;
int unknown_user_policy_setting = 0;

const struct config_enum_entry unknown_user_policies[] = {
    {"deny", 0, false},
    {"allow_free", 1, false},
    {nullptr, 0, false},
};

// Whether this backend defined the settings while shared_preload_libraries was being processed.
// Only then is every backend's clerk_sync.webhook_secret a superuser-only, hidden variable: a
// backend that has not loaded the library holds the config's value as a plain placeholder, which
// any role can read with SHOW.
bool loaded_at_startup = false;

// Secrets are read from the server config only (PGC_SIGHUP), by superusers only, and are listed
// nowhere.
constexpr int kSecretFlags = GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE;

std::string configured_secret(const char *setting_value, const char *setting_name, const char *env_name) {
    if (setting_value && *setting_value) {
        if (!loaded_at_startup)
            throw Error(ErrorKind::not_configured,
                        std::string(setting_name) + " is set in the server configuration, but clerk_sync "
                        "is not in shared_preload_libraries",
                        "Without preloading, any role can read the value with SHOW in a session that has "
                        "not loaded clerk_sync, so it is not used.",
                        "Add clerk_sync to shared_preload_libraries and restart the server, or remove the "
                        "setting and pass the secret in the server's " + std::string(env_name) +
                        " environment variable.");
        return setting_value;
    }
    const char *env = std::getenv(env_name);
    if (env && *env)
        return env;
    throw Error(ErrorKind::not_configured, std::string("no ") + setting_name + " is configured",
                {},
                "Set " + std::string(setting_name) + " in postgresql.conf (with clerk_sync preloaded) "
                "and reload, or start the server with " + std::string(env_name) + " in its environment.");
}

}  // namespace

void define_settings(bool preloaded) {
    loaded_at_startup = preloaded;

    DefineCustomStringVariable(
        "clerk_sync.webhook_secret",
        "Svix signing secrets of the Clerk webhook endpoint (whsec_...), space-separated for rotation.",
        "Empty: the server's CLERK_WEBHOOK_SECRET environment variable is used.",
        &webhook_secret_setting, "", PGC_SIGHUP, kSecretFlags, nullptr, nullptr, nullptr);

    DefineCustomIntVariable(
        "clerk_sync.webhook_tolerance",
        "How far a webhook's timestamp may lie from the server's clock.",
        nullptr, &webhook_tolerance_setting, 300, 1, 86400, PGC_SUSET, GUC_UNIT_S,
        nullptr, nullptr, nullptr);

    DefineCustomBoolVariable(
        "clerk_sync.require_email",
        "Skip Clerk users that have no primary email address.",
        "Off: such users are stored with a NULL email.",
        &require_email_setting, true, PGC_SUSET, 0, nullptr, nullptr, nullptr);

    DefineCustomStringVariable(
        "clerk_sync.tier_key",
        "The public_metadata member that names a user's tier.",
        nullptr, &tier_key_setting, "tier", PGC_SUSET, 0, nullptr, nullptr, nullptr);

    DefineCustomStringVariable(
        "clerk_sync.secret_key",
        "Secret key of the Clerk instance (sk_live_... or sk_test_...), for the Backend API.",
        "Empty: the server's CLERK_SECRET_KEY environment variable is used.",
        &secret_key_setting, "", PGC_SIGHUP, kSecretFlags, nullptr, nullptr, nullptr);

    // Superuser-only: whoever sets the URL receives the secret key.
    DefineCustomStringVariable(
        "clerk_sync.api_url", "Base URL of the Clerk Backend API.", nullptr,
        &api_url_setting, "https://api.clerk.com/v1", PGC_SUSET, 0, nullptr, nullptr, nullptr);

    // Superuser-only too: whoever picks the trusted certificates can read the traffic.
    DefineCustomStringVariable(
        "clerk_sync.ca_file",
        "PEM file of the certificates that the Clerk API's TLS certificate is verified with.",
        "Empty: the system's certificate store. For a private CA or a TLS-inspecting proxy.",
        &ca_file_setting, "", PGC_SUSET, 0, nullptr, nullptr, nullptr);

    DefineCustomStringVariable(
        "clerk_sync.api_version", "Clerk API version, sent as the Clerk-API-Version header.", nullptr,
        &api_version_setting, "2025-11-10", PGC_SUSET, 0, nullptr, nullptr, nullptr);

    DefineCustomIntVariable(
        "clerk_sync.page_size", "Users asked for per page of GET /users.", nullptr,
        &page_size_setting, 500, 1, 500, PGC_SUSET, 0, nullptr, nullptr, nullptr);

    DefineCustomIntVariable(
        "clerk_sync.connect_timeout", "Time allowed to connect to the Clerk API.", nullptr,
        &connect_timeout_setting, 5000, 100, 600000, PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);

    DefineCustomIntVariable(
        "clerk_sync.request_timeout", "Time allowed for one Clerk API request, connection included.", nullptr,
        &request_timeout_setting, 30000, 100, 3600000, PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);

    DefineCustomIntVariable(
        "clerk_sync.max_retries",
        "Retries of a Clerk API request after a 5xx, a network error or a bad body.",
        "429 answers are waited out as Retry-After says and do not count.",
        &max_retries_setting, 5, 0, 100, PGC_SUSET, 0, nullptr, nullptr, nullptr);

    DefineCustomBoolVariable(
        "clerk_sync.allow_insecure_http",
        "Allow plain http to a Clerk API URL that is not on this machine.",
        "Off: plain http only to loopback addresses, so the secret key never crosses a network in clear.",
        &allow_insecure_http_setting, false, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);

    DefineCustomRealVariable(
        "clerk_sync.max_delete_fraction",
        "Largest share of clerk.users a full sync may delete as missing from Clerk.",
        "Above it nothing is deleted and a WARNING says why (an outage returning empty pages must not "
        "wipe the table).",
        &max_delete_fraction_setting, 0.1, 0.0, 1.0, PGC_SUSET, 0, nullptr, nullptr, nullptr);

    // Read by the SQL functions of the rate limiter (current_setting), defined here so that they
    // are validated, documented and superuser-only: an application must not widen its own quota.
    DefineCustomStringVariable(
        "clerk_sync.rate_limit_timezone",
        "Time zone whose midnight resets the daily rate-limit windows.", nullptr,
        &rate_limit_timezone_setting, "UTC", PGC_SUSET, 0, nullptr, nullptr, nullptr);

    DefineCustomBoolVariable(
        "clerk_sync.fetch_missing_users",
        "Fetch a user unknown to clerk.users from Clerk when its rate limit is asked for.", nullptr,
        &fetch_missing_users_setting, true, PGC_SUSET, 0, nullptr, nullptr, nullptr);

    DefineCustomEnumVariable(
        "clerk_sync.unknown_user_policy",
        "What the rate limiter does for a user Clerk does not know or cannot be asked about.",
        "deny: refuse (reason unknown_user or clerk_unreachable); allow_free: admit under the FREE "
        "limit, counting the usage, which the user's rate-limit row takes over once it is synced.",
        &unknown_user_policy_setting, 0, unknown_user_policies, PGC_SUSET, 0, nullptr, nullptr, nullptr);
}

std::vector<std::string> webhook_keys() {
    std::string secret = configured_secret(webhook_secret_setting, "clerk_sync.webhook_secret",
                                           "CLERK_WEBHOOK_SECRET");
    std::vector<std::string> keys;
    std::string problem;
    if (!svix::decode_secrets(secret, keys, problem))
        throw Error(ErrorKind::not_configured, "the configured webhook secret is not usable", problem,
                    "Copy the signing secret from the Clerk dashboard (Webhooks, your endpoint, "
                    "Signing Secret); it starts with whsec_.");
    return keys;
}

int64_t webhook_tolerance_s() { return webhook_tolerance_setting; }

ApiConfig api_config() {
    ApiConfig c;
    c.secret_key = configured_secret(secret_key_setting, "clerk_sync.secret_key", "CLERK_SECRET_KEY");
    c.base_url = api_url_setting ? api_url_setting : "";
    while (!c.base_url.empty() && c.base_url.back() == '/')
        c.base_url.pop_back();
    c.api_version = api_version_setting ? api_version_setting : "";
    c.connect_timeout_ms = connect_timeout_setting;
    c.request_timeout_ms = request_timeout_setting;
    c.max_retries = max_retries_setting;
    c.allow_insecure_http = allow_insecure_http_setting;
    c.ca_file = ca_file_setting ? ca_file_setting : "";
    return c;
}

int page_size() { return page_size_setting; }

double max_delete_fraction() { return max_delete_fraction_setting; }

MappingOptions mapping_options() {
    return MappingOptions{tier_key_setting ? tier_key_setting : "", require_email_setting};
}

}  // namespace clerk_sync
