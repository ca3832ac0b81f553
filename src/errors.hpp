// Errors raised by the C++ core. The core never includes postgres.h; the glue layer
// (pg_boundary.hpp) turns each kind into its documented SQLSTATE at the boundary.
#pragma once

#include <stdexcept>
#include <string>

namespace clerk_sync {

enum class ErrorKind {
    invalid_signature,  // 28000: missing, malformed, expired or non-matching signature
    invalid_json,       // 22P02: the body is not JSON
    invalid_event,      // 22023: JSON, but not a Clerk event / user we can store
    invalid_argument,   // 22023: a bad argument to a SQL function
    null_argument,      // 22004: a required argument is NULL
    not_configured,     // 55000: a needed setting is missing or unusable
    api_unavailable,    // 08006: Clerk could not be reached, or kept failing, after every retry
    api_auth_failed,    // 28000: Clerk refused the secret key (401, 403)
    api_rejected,       // 22023: Clerk refused the request (400, 422, other 4xx)
    interrupted,        // the query was cancelled (or the backend told to die) mid-request
};

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, std::string message, std::string detail = {}, std::string hint = {})
        : std::runtime_error(std::move(message)), kind_(kind), detail_(std::move(detail)),
          hint_(std::move(hint)) {}

    ErrorKind kind() const noexcept { return kind_; }
    const std::string &detail() const noexcept { return detail_; }
    const std::string &hint() const noexcept { return hint_; }

private:
    ErrorKind kind_;
    std::string detail_;
    std::string hint_;
};

}  // namespace clerk_sync
