-- SPDX-License-Identifier: MIT
--
-- What an existing Prosody (0.12 or 13.0, with the mod_privilege of the
-- prosody-modules of the same release) needs for bitween-component: the component host with its secret, and
-- XEP-0356 privileges for it. mod_privilege must be enabled on every
-- VirtualHost whose users register AND on the Component host; without it
-- the component authenticates but never receives the <privilege/>
-- advertisement, and its publishes are refused.
--
-- Replace example.org, shares.example.org and the secret. The component
-- port is plaintext (XEP-0114 has no TLS): keep it on loopback or an
-- internal network.

component_ports = { 5347 }
component_interfaces = { "127.0.0.1" }

privileged_entities = {
    ["shares.example.org"] = {
        -- required: publish the merged item into the user's PEP node
        iq = { ["http://jabber.org/protocol/pubsub"] = "both" };
        -- optional, for servers without the iq permission (see docs)
        roster = "get";
        message = "outgoing";
        presence = "roster";
    };
}

VirtualHost "example.org"
    modules_enabled = { "pep", "privilege" }

Component "shares.example.org"
    component_secret = "change-me"
    modules_enabled = { "privilege" }
