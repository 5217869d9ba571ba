/* SPDX-License-Identifier: MIT */
/*
 * The effect of one agent request on a user's merged state, computed in
 * memory before anything is written: the candidate item the registry will
 * hold afterwards. Quotas are checked on it here (resources per user,
 * shares and addresses per resource, size of the merged item), so that an
 * update that would break one is refused whole, and the candidate is what
 * the publisher sends once the write is committed.
 */
#ifndef BITWEEN_COMPONENT_MERGE_H
#define BITWEEN_COMPONENT_MERGE_H

#include "agent_proto.h"
#include "shares.h"

/**
 * Apply `req` to `current` (the stored merged state of req->jid) into a new
 * item `*out` (caller frees). `lim` holds the quotas: max_resources per
 * user, max_shares and max_addresses for the resource the request touches
 * (other resources are kept as stored even if the limits were lowered
 * since), max_item_bytes for the whole merged item (not enforced for
 * remove and unregister, which never grow it).
 *
 * Returns 0, or -1 with `err` set: AGENT_ERR_POLICY for a quota,
 * AGENT_ERR_NOT_FOUND for add/remove on a resource `current` lacks,
 * AGENT_ERR_INTERNAL when out of memory or `current` is inconsistent.
 * `*out` is NULL on failure. `*changed` (may be NULL) tells whether the
 * request changes anything at all.
 */
int merge_apply(const shares_item_t *current, const agent_request_t *req,
                const shares_limits_t *lim, shares_item_t **out, int *changed, agent_error_t *err);

#endif /* BITWEEN_COMPONENT_MERGE_H */
