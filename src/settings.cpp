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

    MarkGUCPrefixReserved("clerk_sync");
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

MappingOptions mapping_options() {
    return MappingOptions{tier_key_setting ? tier_key_setting : "", require_email_setting};
}

}  // namespace clerk_sync
