// clerk_sync.* settings, and the rules for reading secrets safely.
#pragma once

#include <string>
#include <vector>

#include "clerk_api.hpp"
#include "clerk_user.hpp"

namespace clerk_sync {

// Defines every clerk_sync.* setting; called once from _PG_init.
void define_settings(bool preloaded);

// The HMAC keys of clerk_sync.webhook_secret (or of CLERK_WEBHOOK_SECRET in the server's
// environment). Throws Error(not_configured) when none is set, when one does not decode, or when
// the secret comes from the server config while clerk_sync was not preloaded.
std::vector<std::string> webhook_keys();

int64_t webhook_tolerance_s();
MappingOptions mapping_options();

// Everything the Clerk API client needs, the secret key included (clerk_sync.secret_key or
// CLERK_SECRET_KEY, under the same rules as the webhook secret).
ApiConfig api_config();
int page_size();
double max_delete_fraction();

}  // namespace clerk_sync
