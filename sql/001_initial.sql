-- SPDX-License-Identifier: MIT
--
-- Initial schema of the bitween registry: users (bare JIDs), their
-- registered resources with the sequence number of the last applied update,
-- each resource's addresses and shares, and what was last published per user.
-- Constraints repeat what the wire format enforces, so that bad data cannot
-- get in even through a bug in the C layer. Writes go through the functions
-- below: each is one statement, hence atomic, and one round trip.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE users (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    jid        text NOT NULL UNIQUE
               CHECK (octet_length(jid) BETWEEN 3 AND 2047
                      AND jid ~ '^[^@/[:space:]]+@[^@/[:space:]]+$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE resources (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    resource      text NOT NULL
                  CHECK (octet_length(resource) BETWEEN 1 AND 1023
                         AND resource !~ '[\u0001-\u001f\u007f-\u009f]'),
    seq           bigint NOT NULL CHECK (seq >= 0),
    registered_at timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, resource)
);

CREATE TABLE addresses (
    resource_id bigint NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    address     inet NOT NULL
                CHECK (masklen(address) = CASE family(address) WHEN 4 THEN 32 ELSE 128 END),
    port        integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    PRIMARY KEY (resource_id, address, port)
);

-- hash: the BitTorrent info hash, 20 bytes (v1, SHA-1) or 32 (v2, SHA-256).
CREATE TABLE shares (
    resource_id bigint NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    hash        bytea NOT NULL CHECK (octet_length(hash) IN (20, 32)),
    name        text NOT NULL
                CHECK (octet_length(name) BETWEEN 1 AND 4096
                       AND name !~ '[\u0001-\u001f\u007f-\u009f]'),
    size        bigint NOT NULL CHECK (size >= 0),
    PRIMARY KEY (resource_id, hash)
);
CREATE INDEX shares_hash_idx ON shares (hash);
CREATE INDEX shares_name_trgm_idx ON shares USING gin (name gin_trgm_ops);

CREATE TABLE publishes (
    user_id      bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    digest       text NOT NULL CHECK (digest ~ '^[0-9a-f]{64}$'),
    status       text NOT NULL CHECK (status IN ('ok', 'error')),
    error        text CHECK (octet_length(error) <= 4096),
    published_at timestamptz NOT NULL DEFAULT now()
);

-- Id of a user, created on first use.
CREATE FUNCTION bitween_user_id(p_jid text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    SELECT id INTO v_id FROM users WHERE jid = p_jid;
    IF v_id IS NULL THEN
        INSERT INTO users (jid) VALUES (p_jid) ON CONFLICT (jid) DO NOTHING
            RETURNING id INTO v_id;
        IF v_id IS NULL THEN  -- inserted concurrently
            SELECT id INTO v_id FROM users WHERE jid = p_jid;
        END IF;
    END IF;
    RETURN v_id;
END $$;

-- Hex strings to bytea. Non-hex input fails in decode() (SQLSTATE 22023),
-- a wrong length in the shares.hash constraint.
CREATE FUNCTION bitween_hashes(p_hex text[]) RETURNS bytea[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY(SELECT decode(h, 'hex') FROM unnest(p_hex) AS h)
$$;

-- Lock (creating if needed) a resource row for an update with sequence
-- number p_seq. Returns its id, or NULL when the stored sequence number is
-- newer (the update is stale and must change nothing). p_create: whether a
-- missing resource is created (full-state replace) or NULL returned with
-- SQLSTATE BW002 raised (incremental updates need a registration).
-- p_max_resources > 0 caps the user's resources (SQLSTATE BW001).
CREATE FUNCTION bitween_resource_lock(p_jid text, p_resource text, p_seq bigint,
                                      p_create boolean, p_max_resources integer)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_uid bigint;
    v_rid bigint;
    v_seq bigint;
    v_count integer;
    v_inserted boolean;
BEGIN
    IF p_seq IS NULL OR p_seq < 0 THEN
        RAISE EXCEPTION 'sequence number must be a non-negative integer'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT p_create THEN
        SELECT r.id, r.seq INTO v_rid, v_seq FROM resources r JOIN users u ON u.id = r.user_id
            WHERE u.jid = p_jid AND r.resource = p_resource FOR UPDATE OF r;
        IF v_rid IS NULL THEN
            RAISE EXCEPTION 'resource % of % is not registered', p_resource, p_jid
                USING ERRCODE = 'BW002';
        END IF;
        IF v_seq > p_seq THEN
            RETURN NULL;
        END IF;
        UPDATE resources SET seq = p_seq, updated_at = now(), last_seen = now() WHERE id = v_rid;
        RETURN v_rid;
    END IF;

    v_uid := bitween_user_id(p_jid);
    INSERT INTO resources AS r (user_id, resource, seq) VALUES (v_uid, p_resource, p_seq)
        ON CONFLICT (user_id, resource) DO UPDATE
            SET seq = EXCLUDED.seq, updated_at = now(), last_seen = now()
            WHERE r.seq <= EXCLUDED.seq
        RETURNING id, (xmax = 0) INTO v_rid, v_inserted;
    IF v_rid IS NULL THEN
        RETURN NULL;
    END IF;
    -- Only a new resource can take the user over the cap (which may have
    -- been lowered since the others registered).
    IF v_inserted AND p_max_resources > 0 THEN
        -- Serialize the count per user so two new resources cannot both pass.
        -- NO KEY UPDATE, not UPDATE: the resource just inserted holds a KEY
        -- SHARE lock on this row (foreign key), which FOR UPDATE conflicts
        -- with, so two concurrent registrations would deadlock.
        PERFORM 1 FROM users WHERE id = v_uid FOR NO KEY UPDATE;
        SELECT count(*) INTO v_count FROM resources WHERE user_id = v_uid;
        IF v_count > p_max_resources THEN
            RAISE EXCEPTION 'too many resources for %: % (at most %)', p_jid, v_count, p_max_resources
                USING ERRCODE = 'BW001';
        END IF;
    END IF;
    RETURN v_rid;
END $$;

-- Upsert shares into a resource whose row the caller has locked (so no
-- other writer touches its shares): changed rows are updated, new ones
-- inserted, unchanged ones not rewritten. Plain INSERT rather than
-- INSERT ... ON CONFLICT: with the trigram index the latter is several
-- times slower. A hash given twice is refused (SQLSTATE 23505).
CREATE FUNCTION bitween_shares_upsert(p_rid bigint, p_hashes bytea[], p_names text[],
                                      p_sizes bigint[], p_max_shares integer)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer;
BEGIN
    IF cardinality(p_hashes) <> cardinality(p_names) OR cardinality(p_hashes) <> cardinality(p_sizes) THEN
        RAISE EXCEPTION 'share arrays differ in length' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Checked up front: the UPDATE below would apply one of two entries of
    -- an already stored hash silently, and only a new hash given twice would
    -- hit the primary key.
    IF (SELECT count(*) FROM (SELECT DISTINCT h FROM unnest(p_hashes) AS h) d)
       <> cardinality(p_hashes) THEN
        RAISE EXCEPTION 'an info hash appears twice in one update'
            USING ERRCODE = 'unique_violation';
    END IF;
    UPDATE shares s SET name = t.n, size = t.z
        FROM unnest(p_hashes, p_names, p_sizes) AS t(h, n, z)
        WHERE s.resource_id = p_rid AND s.hash = t.h
          AND (s.name, s.size) IS DISTINCT FROM (t.n, t.z);
    INSERT INTO shares (resource_id, hash, name, size)
        SELECT p_rid, t.h, t.n, t.z FROM unnest(p_hashes, p_names, p_sizes) AS t(h, n, z)
        WHERE NOT EXISTS (SELECT 1 FROM shares s WHERE s.resource_id = p_rid AND s.hash = t.h);
    IF p_max_shares > 0 THEN
        SELECT count(*) INTO v_count FROM shares WHERE resource_id = p_rid;
        IF v_count > p_max_shares THEN
            RAISE EXCEPTION 'too many shares: % (at most %)', v_count, p_max_shares
                USING ERRCODE = 'BW001';
        END IF;
    END IF;
END $$;

-- Full-state replace of one resource. Returns true when applied, false when
-- stale (a newer sequence number is stored; nothing changed).
CREATE FUNCTION bitween_resource_replace(p_jid text, p_resource text, p_seq bigint,
                                         p_hashes text[], p_names text[], p_sizes bigint[],
                                         p_addresses inet[], p_ports integer[],
                                         p_max_resources integer, p_max_shares integer,
                                         p_max_addresses integer)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_rid bigint;
    v_hashes bytea[] := bitween_hashes(p_hashes);
BEGIN
    IF cardinality(p_addresses) <> cardinality(p_ports) THEN
        RAISE EXCEPTION 'address arrays differ in length' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_max_shares > 0 AND cardinality(v_hashes) > p_max_shares THEN
        RAISE EXCEPTION 'too many shares: % (at most %)', cardinality(v_hashes), p_max_shares
            USING ERRCODE = 'BW001';
    END IF;
    IF p_max_addresses > 0 AND cardinality(p_addresses) > p_max_addresses THEN
        RAISE EXCEPTION 'too many addresses: % (at most %)', cardinality(p_addresses), p_max_addresses
            USING ERRCODE = 'BW001';
    END IF;
    v_rid := bitween_resource_lock(p_jid, p_resource, p_seq, true, p_max_resources);
    IF v_rid IS NULL THEN
        RETURN false;
    END IF;
    DELETE FROM shares s WHERE s.resource_id = v_rid
        AND NOT EXISTS (SELECT 1 FROM unnest(v_hashes) AS h(hash) WHERE h.hash = s.hash);
    PERFORM bitween_shares_upsert(v_rid, v_hashes, p_names, p_sizes, 0);
    DELETE FROM addresses a WHERE a.resource_id = v_rid
        AND NOT EXISTS (SELECT 1 FROM unnest(p_addresses, p_ports) AS t(address, port)
                        WHERE t.address = a.address AND t.port = a.port);
    INSERT INTO addresses (resource_id, address, port)
        SELECT v_rid, t.address, t.port FROM unnest(p_addresses, p_ports) AS t(address, port)
        WHERE NOT EXISTS (SELECT 1 FROM addresses a WHERE a.resource_id = v_rid
                          AND a.address = t.address AND a.port = t.port);
    RETURN true;
END $$;

-- Incremental add (upsert) of shares to a registered resource.
CREATE FUNCTION bitween_shares_add(p_jid text, p_resource text, p_seq bigint,
                                   p_hashes text[], p_names text[], p_sizes bigint[],
                                   p_max_shares integer)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_rid bigint;
    v_hashes bytea[] := bitween_hashes(p_hashes);
BEGIN
    v_rid := bitween_resource_lock(p_jid, p_resource, p_seq, false, 0);
    IF v_rid IS NULL THEN
        RETURN false;
    END IF;
    PERFORM bitween_shares_upsert(v_rid, v_hashes, p_names, p_sizes, p_max_shares);
    RETURN true;
END $$;

-- Incremental removal of shares (by hash) from a registered resource.
CREATE FUNCTION bitween_shares_remove(p_jid text, p_resource text, p_seq bigint,
                                      p_hashes text[])
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_rid bigint;
    v_hashes bytea[] := bitween_hashes(p_hashes);
BEGIN
    v_rid := bitween_resource_lock(p_jid, p_resource, p_seq, false, 0);
    IF v_rid IS NULL THEN
        RETURN false;
    END IF;
    DELETE FROM shares WHERE resource_id = v_rid AND hash = ANY (v_hashes);
    RETURN true;
END $$;

-- Record the outcome of a publish. Commits asynchronously: a record lost in
-- a crash only makes the component publish an unchanged item once more, so
-- it need not wait for the disk (agents' updates always do).
CREATE FUNCTION bitween_publish_record(p_jid text, p_digest text, p_status text, p_error text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO publishes (user_id, digest, status, error)
        VALUES (bitween_user_id(p_jid), p_digest, p_status, p_error)
        ON CONFLICT (user_id) DO UPDATE SET digest = EXCLUDED.digest, status = EXCLUDED.status,
            error = EXCLUDED.error, published_at = now();
END $$;
