"""The PostgreSQL side of `releases.stream.append`: one function that claims and inserts.

Appends are serialised by an advisory lock, so the time the lock is held bounds the stream's
throughput. Done from Python, the lock spans three client round trips (claim, insert, commit)
and the hashing in between. Done in this function, called as one autocommit statement, it
spans only the function's own work and the commit: the client computes everything that does
not depend on the chain head (the event id, the canonical JSON and the content hash) before
it asks, and the function adds the link to the row before.
"""

from __future__ import annotations

from releases.immutability import TABLE

# An arbitrary constant: the advisory lock key that serialises appends on PostgreSQL.
APPEND_LOCK_KEY = 0x5348_4950_4C4F_47  # "SHIPLOG"
GENESIS_HASH = "0" * 64
FUNCTION = f"{TABLE}_append"

# VOLATILE (the default) gives each statement inside a fresh snapshot, so the duplicate check
# and the chain head are read after the lock is granted: a concurrent append of the same key
# has either committed by then, and is seen, or waits behind this one.
INSTALL = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}(
    p_event_id uuid, p_source text, p_event_type text, p_repository text, p_sha text,
    p_branch text, p_tag text, p_occurred_at timestamptz, p_recorded_at timestamptz,
    p_delivery_key text, p_headers jsonb, p_body bytea, p_data jsonb, p_recognition text,
    p_content_hash text, OUT out_position bigint, OUT out_created boolean
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    head text;
BEGIN
    PERFORM pg_advisory_xact_lock({APPEND_LOCK_KEY});
    SELECT position INTO out_position FROM {TABLE} WHERE event_id = p_event_id;
    IF FOUND THEN
        out_created := false;
        RETURN;
    END IF;
    SELECT hash INTO head FROM {TABLE} ORDER BY position DESC LIMIT 1;
    head := coalesce(head, '{GENESIS_HASH}');
    out_position := nextval(pg_get_serial_sequence('{TABLE}', 'position'));
    INSERT INTO {TABLE} (
        position, event_id, source, event_type, repository, sha, branch, tag, occurred_at,
        recorded_at, delivery_key, headers, body, data, recognition, prev_hash, hash
    ) VALUES (
        out_position, p_event_id, p_source, p_event_type, p_repository, p_sha, p_branch, p_tag,
        p_occurred_at, p_recorded_at, p_delivery_key, p_headers, p_body, p_data, p_recognition,
        head,
        encode(sha256(convert_to(head || ':' || out_position || ':' || p_content_hash, 'UTF8')),
               'hex')
    );
    out_created := true;
END;
$$
"""
UNINSTALL = f"DROP FUNCTION IF EXISTS {FUNCTION}"
CALL = (
    f"SELECT out_position, out_created FROM {FUNCTION}("
    "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s::jsonb, %s, %s)"
)
