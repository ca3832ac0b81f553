// clerk_sync.* settings, and the rules for reading secrets safely.
#pragma once

#include <string>
#include <vector>

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

}  // namespace clerk_sync
