/**
 * Schema migrations, applied in order on open. PRAGMA user_version carries the version, so an
 * older database is brought forward and a newer one is refused rather than misread.
 *
 * Times are integer milliseconds since the epoch (UTC): compact, index-friendly, and the
 * range filters of `log` compare them directly.
 */
export const migrations: string[] = [
  /* 1: the spine — members, address history, mailings, queued sends, attempts, raw messages */ `
  CREATE TABLE members (
    id            INTEGER PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,
    email         TEXT,
    name          TEXT,
    fields        TEXT NOT NULL DEFAULT '{}',
    -- why sends skip this member: 'no-address' | 'invalid-address' (set by import)
    email_problem TEXT,
    -- since when the current address is the member's (history keeps the ones before)
    email_since   INTEGER,
    import_id     INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
  );
  CREATE INDEX members_email ON members(email);

  -- The addresses a member had before the current one (members.email), and which were revoked.
  CREATE TABLE addresses (
    id            INTEGER PRIMARY KEY,
    member_id     INTEGER NOT NULL REFERENCES members(id),
    email         TEXT NOT NULL,
    added_at      INTEGER NOT NULL,
    replaced_at   INTEGER,
    revoked_at    INTEGER,
    revoke_reason TEXT
  );
  CREATE INDEX addresses_member ON addresses(member_id);
  CREATE INDEX addresses_email ON addresses(email);

  -- History is kept by a trigger so that the import's single upsert per row stays one
  -- statement, and only on a change: a first import writes no history at all.
  CREATE TRIGGER members_address_changed AFTER UPDATE OF email ON members
  WHEN old.email IS NOT NULL AND new.email IS NOT old.email
  BEGIN
    INSERT INTO addresses (member_id, email, added_at, replaced_at)
      VALUES (old.id, old.email, coalesce(old.email_since, old.created_at), new.updated_at);
  END;

  -- Field names seen in imports: a template placeholder must be one of these (or a built-in).
  CREATE TABLE member_fields (name TEXT PRIMARY KEY) WITHOUT ROWID;

  CREATE TABLE segments (
    name       TEXT PRIMARY KEY,
    conditions TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );

  CREATE TABLE suppressions (
    email      TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE mailings (
    id            INTEGER PRIMARY KEY,
    type          TEXT NOT NULL,
    template_path TEXT NOT NULL,
    -- the template as it was when the mailing was made: a resume renders the same mail
    template      TEXT NOT NULL,
    html_template TEXT,
    footer        TEXT,
    settings      TEXT NOT NULL DEFAULT '{}',
    test          INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL
      CHECK (status IN ('scheduled', 'running', 'paused', 'done', 'cancelled')),
    status_reason TEXT,
    selected      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    finished_at   INTEGER
  );

  CREATE TABLE sends (
    id            INTEGER PRIMARY KEY,
    mailing_id    INTEGER NOT NULL REFERENCES mailings(id),
    member_id     INTEGER NOT NULL REFERENCES members(id),
    email         TEXT,
    type          TEXT NOT NULL,
    test          INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL
      CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'deferred', 'skipped', 'retargeted', 'bounced', 'cancelled')),
    -- machine-readable: a category of the error catalog, or a skip reason ('no-address', ...)
    category      TEXT,
    -- human-readable: the server's reply, or why it was skipped
    reason        TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    token         TEXT UNIQUE,
    message_id    TEXT,
    created_at    INTEGER NOT NULL,
    sent_at       INTEGER,
    updated_at    INTEGER NOT NULL,
    retry_at      INTEGER,
    retarget_of   INTEGER REFERENCES sends(id),
    retargeted_to INTEGER REFERENCES sends(id)
  );
  -- One index per log filter; each ends in created_at (plus the implicit rowid) so that
  -- "newest first, LIMIT n" walks the index backwards and stops early.
  CREATE INDEX sends_member  ON sends(member_id, created_at);
  CREATE INDEX sends_email   ON sends(email, created_at);
  CREATE INDEX sends_type    ON sends(type, created_at);
  CREATE INDEX sends_status  ON sends(status, created_at);
  CREATE INDEX sends_created ON sends(created_at);
  CREATE INDEX sends_mailing ON sends(mailing_id, created_at);
  -- The queue worker's scan (status, then id order via the implicit rowid) and per-status counts.
  CREATE INDEX sends_queue   ON sends(mailing_id, status);

  CREATE TABLE attempts (
    id            INTEGER PRIMARY KEY,
    send_id       INTEGER NOT NULL REFERENCES sends(id),
    at            INTEGER NOT NULL,
    email         TEXT NOT NULL,
    server        TEXT,
    outcome       TEXT NOT NULL CHECK (outcome IN ('sent', 'failed', 'deferred', 'interrupted')),
    response_code INTEGER,
    enhanced_code TEXT,
    response      TEXT,
    category      TEXT,
    permanent     INTEGER
  );
  CREATE INDEX attempts_send ON attempts(send_id);

  -- The exact bytes handed to the server, apart from sends so log scans stay narrow.
  CREATE TABLE messages (
    send_id INTEGER PRIMARY KEY REFERENCES sends(id),
    raw     BLOB NOT NULL
  );
  `,
  /* 2: triage — user error rules, token revocation */ `
  -- Rules the operator added with \`mailer errors add\`; they are tried before the built-in ones.
  CREATE TABLE error_rules (
    id         INTEGER PRIMARY KEY,
    match      TEXT NOT NULL,
    category   TEXT NOT NULL,
    permanent  INTEGER,
    text       TEXT,
    created_at INTEGER NOT NULL
  );
  -- A token is revoked when the address it was sent to is revoked (re-target).
  ALTER TABLE sends ADD COLUMN token_revoked_at INTEGER;
  CREATE INDEX addresses_member_email ON addresses(member_id, email);
  `,
  /* 3: unattended — schedule, one sender at a time, quotas, in-flight marks */ `
  ALTER TABLE mailings ADD COLUMN scheduled_at INTEGER;
  CREATE INDEX mailings_status ON mailings(status, scheduled_at);
  -- Set when a send that was in flight at a crash is sent again: it may have arrived twice.
  ALTER TABLE sends ADD COLUMN maybe_duplicate INTEGER NOT NULL DEFAULT 0;
  -- The back-off scan of \`mailer run\`.
  CREATE INDEX sends_retry ON sends(status, retry_at);
  -- Quota counts: hand-overs in the last hour or day.
  CREATE INDEX attempts_at ON attempts(at);
  -- One sending process per database; a holder whose process is gone is taken over.
  CREATE TABLE locks (
    name  TEXT PRIMARY KEY,
    pid   INTEGER NOT NULL,
    host  TEXT NOT NULL,
    since INTEGER NOT NULL,
    what  TEXT NOT NULL
  );
  `,
  /* 4: what happens after the hand-over — bounces, opens, unsubscribes */ `
  CREATE TABLE bounces (
    id          INTEGER PRIMARY KEY,
    -- the same bounce imported twice is recognised by its bytes
    fingerprint TEXT NOT NULL UNIQUE,
    send_id     INTEGER REFERENCES sends(id),
    matched_by  TEXT,
    recipient   TEXT,
    action      TEXT,
    status_code TEXT,
    diagnostic  TEXT,
    category    TEXT,
    permanent   INTEGER NOT NULL,
    source      TEXT NOT NULL,
    at          INTEGER NOT NULL
  );
  CREATE INDEX bounces_send ON bounces(send_id);

  -- Opens (tracking pixel) and unsubscribes (RFC 8058 one-click), per send.
  CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    send_id INTEGER NOT NULL REFERENCES sends(id),
    kind    TEXT NOT NULL CHECK (kind IN ('open', 'unsubscribe')),
    at      INTEGER NOT NULL
  );
  CREATE INDEX events_send ON events(send_id, kind);
  CREATE INDEX sends_message_id ON sends(message_id);
  `,
  /* 5: a claim leaves the status alone */ `
  -- Set while a run has the send in hand (claimed, not yet recorded); no index, so claiming
  -- touches only the row. Still set at the next claim means a run died with it in flight.
  -- ('sending', the status claims used to set, is no longer written.)
  ALTER TABLE sends ADD COLUMN claimed_at INTEGER;
  UPDATE sends SET status = 'queued', category = NULL, claimed_at = updated_at WHERE status = 'sending';
  `,
  /* 6: per-mailing counts from the index alone */ `
  -- (mailing, status, category) answers stats and summaries without reading a row. The queue
  -- scan uses it too: a queued send never has a category (every write that queues one clears
  -- it), so mailing = ? AND status = 'queued' AND category IS NULL walks it in id order.
  DROP INDEX sends_queue;
  CREATE INDEX sends_queue ON sends(mailing_id, status, category);
  `,
  /* 7: the back-off scan indexes deferred sends only */ `
  -- Only a deferred send waits for its retry_at, and \`run\` asks for status = 'deferred': a
  -- partial index answers that, and a send going from queued to sent no longer moves an entry
  -- of it (about 3 % of the send pipeline).
  DROP INDEX sends_retry;
  CREATE INDEX sends_retry ON sends(retry_at) WHERE status = 'deferred';
  `,
  /* 8: unsubscribe and pixel links of their own, apart from the registration token */ `
  -- The database's secret for the HMAC of unsubscribe, pixel and confirmation values
  -- (randomblob draws from SQLite's CSPRNG, seeded by the system). Mails sent before this
  -- migration carried the registration token in those links: it still works there, for the
  -- sends handed over by then (up to legacy_send, sent by legacy_sent_at), and nowhere else.
  CREATE TABLE link_secret (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    key            BLOB NOT NULL,
    legacy_send    INTEGER,
    legacy_sent_at INTEGER
  );
  INSERT INTO link_secret (id, key, legacy_send, legacy_sent_at)
    SELECT 1, randomblob(32), max(id), max(sent_at) FROM sends WHERE token IS NOT NULL AND sent_at IS NOT NULL;
  `,
  /* 9: one event row per send and kind, with a count: a client cannot grow the database */ `
  -- The first time (at), the latest (last_at) and how many times: the same pixel fetched
  -- 2,000 times is one row. The rows of one send and kind so far are folded into its first.
  -- (Changed in place: a table rebuilt by RENAME would open the temporary schema, and the
  -- import that may follow in the same connection could no longer set temp_store.)
  ALTER TABLE events ADD COLUMN last_at INTEGER;
  ALTER TABLE events ADD COLUMN times INTEGER NOT NULL DEFAULT 1;
  UPDATE events SET
    at      = (SELECT min(e.at) FROM events e WHERE e.send_id = events.send_id AND e.kind = events.kind),
    last_at = (SELECT max(e.at) FROM events e WHERE e.send_id = events.send_id AND e.kind = events.kind),
    times   = (SELECT count(*) FROM events e WHERE e.send_id = events.send_id AND e.kind = events.kind)
  WHERE id IN (SELECT min(id) FROM events GROUP BY send_id, kind);
  DELETE FROM events WHERE last_at IS NULL;
  DROP INDEX events_send;
  CREATE UNIQUE INDEX events_send ON events(send_id, kind);
  `,
  /* 10: recurring plans — the plan, and one row per period it made or missed */ `
  -- A plan as added; its template files are read when a mailing is made, its --where values
  -- as typed ({{month}} filled in per period). Removed plans stay, so that their mailings
  -- keep their name; the name is free again for a new plan.
  CREATE TABLE plans (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL,
    template_path      TEXT NOT NULL,
    follow_up_template TEXT,
    conditions         TEXT NOT NULL DEFAULT '[]',
    segment            TEXT,
    every              TEXT NOT NULL CHECK (every IN ('month', 'week', 'day')),
    on_day             INTEGER,
    at_minute          INTEGER NOT NULL,
    follow_up_days     INTEGER,
    paused             INTEGER NOT NULL DEFAULT 0,
    -- no period due before this is made or missed: the next occurrence after add (or resume)
    first_due          INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    removed_at         INTEGER
  );
  CREATE UNIQUE INDEX plans_name ON plans(name) WHERE removed_at IS NULL;

  -- One row per plan, period (its due time) and kind, inserted in the transaction that makes
  -- the mailing: the UNIQUE index, not a read before the write, is what makes a period's
  -- mailing once however many runs meet in it. A period that passed unmade gets a row too,
  -- with no mailing, so that it is reported once.
  CREATE TABLE plan_periods (
    plan_id    INTEGER NOT NULL REFERENCES plans(id),
    period     INTEGER NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('main', 'follow-up')),
    mailing_id INTEGER REFERENCES mailings(id),
    at         INTEGER NOT NULL,
    PRIMARY KEY (plan_id, period, kind)
  ) WITHOUT ROWID;
  CREATE INDEX plan_periods_mailing ON plan_periods(mailing_id) WHERE mailing_id IS NOT NULL;
  `,
  /* 11: attachments: per send, the files attached, not their bytes */ `
  -- The stored message of a send with attachments is the message as sent with each file's
  -- base64 body cut out at \`offset\`: show --raw puts the files back, and only when each
  -- still has the SHA-256 it was sent with. The path is where the file was read from.
  CREATE TABLE attachments (
    send_id  INTEGER NOT NULL REFERENCES sends(id),
    position INTEGER NOT NULL,
    name     TEXT NOT NULL,
    path     TEXT NOT NULL,
    size     INTEGER NOT NULL,
    sha256   TEXT NOT NULL,
    offset   INTEGER NOT NULL,
    PRIMARY KEY (send_id, position)
  ) WITHOUT ROWID;
  `,
  /* 12: topics — an unsubscribe stops one topic; required mails cannot be opted out of */ `
  -- What an unsubscribe from a mailing stops (its template's Topic:, else its Type), whether
  -- members cannot opt out of it (Required: yes), and its From as written, for the pages.
  -- A mailing made before takes its type as its topic. Every suppression recorded before
  -- stays where it is: address-wide, the unsubscribes among them too.
  ALTER TABLE mailings ADD COLUMN topic TEXT;
  ALTER TABLE mailings ADD COLUMN required INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE mailings ADD COLUMN sender TEXT;
  UPDATE mailings SET topic = type;
  -- One address's opt-out of one topic ('*': every topic members may opt out of).
  CREATE TABLE optouts (
    email      TEXT NOT NULL,
    topic      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (email, topic)
  ) WITHOUT ROWID;
  `,
  /* 13: system mails — one mail to one address, with its own data, and the API keys that ask for them */ `
  -- An address a system mail went to that no imported member has gets a member row of its own,
  -- flagged: sends, log and why treat it as any member, and no selection ever picks it.
  ALTER TABLE members ADD COLUMN listed INTEGER NOT NULL DEFAULT 1;
  -- One mailing per template (as it was) for its system mails: log, show, retry and retarget
  -- find the template there as for any send.
  ALTER TABLE mailings ADD COLUMN system INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX mailings_system ON mailings(template_path) WHERE system = 1;
  -- The caller's JSON object, rendered again by retry and retarget; set on every system send
  -- (an empty object at least), so it also marks one.
  ALTER TABLE sends ADD COLUMN data TEXT;
  -- The caller's idempotency key: a second send with it sends nothing.
  ALTER TABLE sends ADD COLUMN idem_key TEXT;
  CREATE UNIQUE INDEX sends_idem_key ON sends(idem_key) WHERE idem_key IS NOT NULL;
  -- What a running bulk send looks at between its claims: queued system sends only, so the
  -- look costs one probe of an index that is empty nearly always, and a bulk send going from
  -- queued to sent moves no entry of it.
  CREATE INDEX sends_system_queue ON sends(id) WHERE data IS NOT NULL AND status = 'queued';
  -- Keys of \`serve --api\`: only a SHA-256 of each (a key is 256 random bits, so no slow hash
  -- is needed to make guessing it from the hash hopeless).
  CREATE TABLE api_keys (
    name       TEXT PRIMARY KEY,
    hash       BLOB NOT NULL,
    created_at INTEGER NOT NULL
  );
  `,
  /* 14: data protection — erased members, keyed hashes of their addresses, retention */ `
  -- The secret of the keyed hashes (HMAC-SHA256) that stand for an erased member's key and
  -- addresses: without it, a hash cannot be checked against a list of guessed addresses. Its
  -- own secret, not link_secret's: the two are for different things. scrub_needed: a database
  -- made before this version had no secure_delete, so its free pages may still hold deleted
  -- values; the first forget or prune runs one VACUUM, then never again.
  CREATE TABLE erasure_secret (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    key          BLOB NOT NULL,
    scrub_needed INTEGER NOT NULL
  );
  INSERT INTO erasure_secret (id, key, scrub_needed)
    SELECT 1, randomblob(32), EXISTS (SELECT 1 FROM members) OR EXISTS (SELECT 1 FROM mailings);
  -- A forgotten member: the row in members stays, emptied, so each send keeps its member; this
  -- says when, why, and the keyed hash of the key the member had (why <id>, import).
  CREATE TABLE forgotten (
    member_id INTEGER PRIMARY KEY REFERENCES members(id),
    key_hash  TEXT NOT NULL,
    reason    TEXT NOT NULL,
    at        INTEGER NOT NULL
  );
  CREATE INDEX forgotten_key ON forgotten(key_hash);
  -- The keyed hash of every address an erased member had: a later import of one is flagged,
  -- and the suppressions kept under it hold again when the address comes back.
  CREATE TABLE forgotten_addresses (
    hash      TEXT PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members(id),
    at        INTEGER NOT NULL
  ) WITHOUT ROWID;
  -- Counts of send rows and events that prune (log retention) or forget (opens) removed, per
  -- mailing: stats and mailings add them to what is left, so a mailing's figures stay true.
  CREATE TABLE mailing_tallies (
    mailing_id INTEGER NOT NULL REFERENCES mailings(id),
    status     TEXT NOT NULL,
    category   TEXT NOT NULL DEFAULT '',
    n          INTEGER NOT NULL,
    PRIMARY KEY (mailing_id, status, category)
  ) WITHOUT ROWID;
  CREATE TABLE event_tallies (
    mailing_id INTEGER NOT NULL REFERENCES mailings(id),
    kind       TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (mailing_id, kind)
  ) WITHOUT ROWID;
  -- What prune removed: per mailing, the content (messages, system-mail data) of sends made
  -- before \`before\`, at \`at\`; show finds the first row that covers a send once it was sent.
  CREATE TABLE prunes (
    mailing_id INTEGER NOT NULL REFERENCES mailings(id),
    what       TEXT NOT NULL CHECK (what IN ('messages', 'log')),
    before     INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    removed    INTEGER NOT NULL
  );
  CREATE INDEX prunes_mailing ON prunes(mailing_id, what, before);
  -- A send row removed by prune is looked up by the foreign keys that point at it: without
  -- these, each removal scanned every send twice (852 rows of 50,000: 32 s). Partial: nearly
  -- every send has neither, so the send path writes no entry.
  CREATE INDEX sends_retarget_of ON sends(retarget_of) WHERE retarget_of IS NOT NULL;
  CREATE INDEX sends_retargeted_to ON sends(retargeted_to) WHERE retargeted_to IS NOT NULL;
  `,
  /* 15: the bounce mailbox — where the last fetch stopped */ `
  -- One row per IMAP folder (its URL without password): the UIDVALIDITY it had and the highest
  -- UID read. Only messages above it are read next time, so ordinary mails are never marked or
  -- read twice; a new UIDVALIDITY (the folder was rebuilt) starts again from the bottom, and the
  -- bounces table's fingerprints keep a bounce from being imported twice.
  CREATE TABLE mailbox_state (
    mailbox      TEXT PRIMARY KEY,
    uid_validity TEXT NOT NULL,
    last_uid     INTEGER NOT NULL,
    fetched_at   INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  /* 16: stored messages compressed, each against its mailing's dictionary */ `
  -- One preset dictionary per mailing (a system mail's mailing is one per template): the
  -- mailing's template composed for a stand-in member, so it holds no member's data. Written
  -- once, at the mailing's first send, and never changed: every message of the mailing that
  -- was compressed with it needs it to be read. (messages.raw's first byte says how a row is
  -- kept: store/message-codec.ts. Rows written before stay as they were until \`mailer migrate\`.)
  CREATE TABLE message_dictionaries (
    mailing_id INTEGER PRIMARY KEY REFERENCES mailings(id),
    dictionary BLOB NOT NULL
  );
  `,
  /* 17: indexes for ten million sends: the ones a query needs, not the one none uses */ `
  -- \`log --reason\` (a category) read the log backwards row by row until 50 matched: a rare
  -- reason meant the whole log. Only failed, deferred, bounced and skipped sends have a
  -- category, so a send going from queued to sent writes no entry of it.
  CREATE INDEX sends_category ON sends(category, created_at) WHERE category IS NOT NULL;
  -- addresses_member_email (member_id, email) answers every lookup by member_id too.
  DROP INDEX addresses_member;

  -- Each mailing's sends counted by status and category (category '' for none), and its sends
  -- opened and unsubscribed, kept by triggers as the rows change: \`stats\`, \`mailings\` and a
  -- run's summary read a few rows here instead of counting index entries (stats --since 30d
  -- counted every send of the month, 400,000 at ten million over two years, and probed the
  -- events of each). A count that drops to 0 stays as a row of 0.
  CREATE TABLE mailing_counts (
    mailing_id INTEGER NOT NULL,
    status     TEXT NOT NULL,
    category   TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (mailing_id, status, category)
  ) WITHOUT ROWID;
  INSERT INTO mailing_counts (mailing_id, status, category, n)
    SELECT mailing_id, status, coalesce(category, ''), count(*) FROM sends GROUP BY 1, 2, 3;
  CREATE TRIGGER sends_counted AFTER INSERT ON sends BEGIN
    INSERT INTO mailing_counts (mailing_id, status, category, n) VALUES (new.mailing_id, new.status, coalesce(new.category, ''), 1)
      ON CONFLICT DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER sends_recounted AFTER UPDATE OF mailing_id, status, category ON sends
  WHEN new.status IS NOT old.status OR new.category IS NOT old.category OR new.mailing_id IS NOT old.mailing_id
  BEGIN
    UPDATE mailing_counts SET n = n - 1
      WHERE mailing_id = old.mailing_id AND status = old.status AND category = coalesce(old.category, '');
    INSERT INTO mailing_counts (mailing_id, status, category, n) VALUES (new.mailing_id, new.status, coalesce(new.category, ''), 1)
      ON CONFLICT DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER sends_uncounted AFTER DELETE ON sends BEGIN
    UPDATE mailing_counts SET n = n - 1
      WHERE mailing_id = old.mailing_id AND status = old.status AND category = coalesce(old.category, '');
  END;
  -- One events row per send and kind (a repeat updates it): rows counted are sends counted.
  CREATE TABLE mailing_events (
    mailing_id INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (mailing_id, kind)
  ) WITHOUT ROWID;
  INSERT INTO mailing_events (mailing_id, kind, n)
    SELECT s.mailing_id, e.kind, count(*) FROM events e JOIN sends s ON s.id = e.send_id GROUP BY 1, 2;
  CREATE TRIGGER events_counted AFTER INSERT ON events BEGIN
    INSERT INTO mailing_events (mailing_id, kind, n) SELECT mailing_id, new.kind, 1 FROM sends WHERE id = new.send_id
      ON CONFLICT DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER events_uncounted AFTER DELETE ON events BEGIN
    UPDATE mailing_events SET n = n - 1
      WHERE mailing_id = (SELECT mailing_id FROM sends WHERE id = old.send_id) AND kind = old.kind;
  END;
  `,
  // 18: where the next prune of a mailing's content starts. A send still queued or deferred
  // when its window was pruned keeps its message then, and is sent later: the next prune
  // starts at the oldest such send instead of where the last one stopped.
  // Prunes made before this version did not record it: the first prune after starts over.
  `
  ALTER TABLE prunes ADD COLUMN held_from INTEGER;
  UPDATE prunes SET held_from = 0 WHERE what = 'messages';
  `,
];
