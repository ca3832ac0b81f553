#include "pg_boundary.hpp"

extern "C" {
#include "miscadmin.h"
}

namespace clerk_sync {

int sqlstate_of(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::invalid_signature:
        return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;  // 28000
    case ErrorKind::invalid_json:
        return ERRCODE_INVALID_TEXT_REPRESENTATION;          // 22P02
    case ErrorKind::invalid_event:
    case ErrorKind::invalid_argument:
        return ERRCODE_INVALID_PARAMETER_VALUE;              // 22023
    case ErrorKind::null_argument:
        return ERRCODE_NULL_VALUE_NOT_ALLOWED;               // 22004
    case ErrorKind::not_configured:
        return ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;     // 55000
    case ErrorKind::api_unavailable:
        return ERRCODE_CONNECTION_FAILURE;                   // 08006
    case ErrorKind::api_auth_failed:
        return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;  // 28000
    case ErrorKind::api_rejected:
        return ERRCODE_INVALID_PARAMETER_VALUE;              // 22023
    case ErrorKind::interrupted:
        return ERRCODE_QUERY_CANCELED;                       // 57014
    }
    return ERRCODE_INTERNAL_ERROR;
}

bool backend_interrupted() { return QueryCancelPending || ProcDiePending; }

void require_args(FunctionCallInfo fcinfo, std::initializer_list<const char *> names) {
    int i = 0;
    for (const char *name : names) {
        if (PG_ARGISNULL(i))
            throw Error(ErrorKind::null_argument, std::string(name) + " must not be NULL");
        ++i;
    }
}

namespace detail {

void capture(PendingError &pending, int sqlstate, const char *message, const char *detail,
             const char *hint) noexcept {
    pending.sqlstate = sqlstate;
    snprintf(pending.message, sizeof pending.message, "%s", message);
    snprintf(pending.detail, sizeof pending.detail, "%s", detail);
    snprintf(pending.hint, sizeof pending.hint, "%s", hint);
}

void raise(const PendingError &pending) {
    // A request abandoned for a cancel or a terminate: raise PostgreSQL's own error for it
    // (statement timeout, user request, shutdown), as any other interrupted query would.
    if (pending.sqlstate == ERRCODE_QUERY_CANCELED)
        CHECK_FOR_INTERRUPTS();
    ereport(ERROR,
            (errcode(pending.sqlstate), errmsg_internal("%s", pending.message),
             pending.detail[0] ? errdetail_internal("%s", pending.detail) : 0,
             pending.hint[0] ? errhint("%s", pending.hint) : 0));
    pg_unreachable();
}

}  // namespace detail
}  // namespace clerk_sync
