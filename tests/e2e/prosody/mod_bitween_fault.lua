-- SPDX-License-Identifier: MIT
--
-- Fault injection for the end-to-end tests of bitween-component, loaded
-- only by `scripts/stack up --fault-injection` (never in a deployment).
-- It sits in front of mod_privilege on the users' host and fails the
-- privileged IQs whose payload names a fault: a share named
-- "fault-KIND-N" makes the first N privileged IQs of that user carrying it
-- fail, after which they go through to mod_privilege as usual. KIND:
--
--   wait    the server answers wait/resource-constraint (a temporary error)
--   cancel  the server answers cancel/not-allowed (a permanent error)
--   drop    the server never answers (the component's IQ timeout)

local st = require "util.stanza";

local used = {};

module:hook("iq/bare/urn:xmpp:privilege:2:privileged_iq", function(event)
	local stanza = event.stanza;
	local kind, n = tostring(stanza):match("fault%-(%a+)%-(%d+)");
	if not kind then
		return nil;
	end
	local key = (stanza.attr.to or "") .. " " .. kind .. "-" .. n;
	local count = used[key] or 0;
	if count >= tonumber(n) then
		return nil;
	end
	used[key] = count + 1;
	module:log("info", "injecting %s fault %d of %s into %s", kind, count + 1, n,
		stanza.attr.to or "?");
	if kind == "wait" then
		event.origin.send(st.error_reply(stanza, "wait", "resource-constraint", "injected fault"));
	elseif kind == "cancel" then
		event.origin.send(st.error_reply(stanza, "cancel", "not-allowed", "injected fault"));
	elseif kind ~= "drop" then
		return nil;
	end
	return true;
end, 10);
