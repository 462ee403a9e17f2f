package directory

// migrations brings a database from schema version i to i+1 (PRAGMA
// user_version counts the steps applied). Never edit a released step: add one.
var migrations = []string{
	// 1: the learning directory, the mirrors, runs and audit events.
	`
CREATE TABLE people (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	match_key       TEXT NOT NULL UNIQUE,
	user_name       TEXT NOT NULL DEFAULT '',
	email           TEXT NOT NULL DEFAULT '',
	given_name      TEXT NOT NULL DEFAULT '',
	family_name     TEXT NOT NULL DEFAULT '',
	display_name    TEXT NOT NULL DEFAULT '',
	title           TEXT NOT NULL DEFAULT '',
	department      TEXT NOT NULL DEFAULT '',
	employee_number TEXT NOT NULL DEFAULT '',
	manager         TEXT NOT NULL DEFAULT '',
	cost_center     TEXT NOT NULL DEFAULT '',
	active          INTEGER NOT NULL,
	created_at      TIMESTAMP NOT NULL,
	updated_at      TIMESTAMP NOT NULL,
	deactivated_at  TIMESTAMP
);
CREATE TABLE identities (
	source      TEXT NOT NULL,
	external_id TEXT NOT NULL,
	person_id   INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
	PRIMARY KEY (source, external_id)
) WITHOUT ROWID;
CREATE INDEX identities_person ON identities(person_id);
CREATE TABLE groups (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	source      TEXT NOT NULL,
	external_id TEXT NOT NULL,
	name        TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	created_at  TIMESTAMP NOT NULL,
	updated_at  TIMESTAMP NOT NULL,
	UNIQUE (source, external_id)
);
CREATE TABLE memberships (
	group_id  INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
	person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
	PRIMARY KEY (group_id, person_id)
) WITHOUT ROWID;
CREATE INDEX memberships_person ON memberships(person_id);
CREATE TABLE pools (
	name       TEXT PRIMARY KEY,
	seats      INTEGER NOT NULL,
	waiting    INTEGER NOT NULL DEFAULT 0,
	updated_at TIMESTAMP NOT NULL
);
CREATE TABLE assignments (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	pool          TEXT NOT NULL,
	person_id     INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
	granted_at    TIMESTAMP NOT NULL,
	revoked_at    TIMESTAMP,
	revoke_reason TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX assignments_held ON assignments(pool, person_id) WHERE revoked_at IS NULL;
CREATE INDEX assignments_person ON assignments(person_id);
CREATE TABLE mirrors (
	source     TEXT PRIMARY KEY,
	cursor     TEXT NOT NULL DEFAULT '',
	full_at    TIMESTAMP,
	fetched_at TIMESTAMP
);
CREATE TABLE mirror_users (
	source          TEXT NOT NULL,
	external_id     TEXT NOT NULL,
	user_name       TEXT NOT NULL,
	email           TEXT NOT NULL,
	given_name      TEXT NOT NULL,
	family_name     TEXT NOT NULL,
	display_name    TEXT NOT NULL,
	title           TEXT NOT NULL,
	department      TEXT NOT NULL,
	employee_number TEXT NOT NULL,
	manager         TEXT NOT NULL,
	cost_center     TEXT NOT NULL,
	status          TEXT NOT NULL,
	PRIMARY KEY (source, external_id)
) WITHOUT ROWID;
CREATE TABLE mirror_groups (
	source      TEXT NOT NULL,
	external_id TEXT NOT NULL,
	name        TEXT NOT NULL,
	description TEXT NOT NULL,
	-- the members' external ids, one a line (see encodeMembers)
	members     TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (source, external_id)
);
CREATE TABLE runs (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	trigger    TEXT NOT NULL,
	started_at TIMESTAMP NOT NULL,
	ended_at   TIMESTAMP NOT NULL,
	result     TEXT NOT NULL,
	sources    TEXT NOT NULL DEFAULT '[]',
	summary    TEXT NOT NULL DEFAULT '{}',
	problems   TEXT NOT NULL DEFAULT '[]',
	error      TEXT NOT NULL DEFAULT ''
);
CREATE TABLE audit_events (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	at          TIMESTAMP NOT NULL,
	action      TEXT NOT NULL,
	object_type TEXT NOT NULL,
	object_id   TEXT NOT NULL,
	before      TEXT NOT NULL DEFAULT '',
	after       TEXT NOT NULL DEFAULT ''
);
`,
	// 2: blocked runs keep the plan they refused; audit events by run.
	`
ALTER TABLE runs ADD COLUMN plan TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_events_run ON audit_events(run_id);
`,
	// 3: incremental reconcile. Runs say how they planned; mirror rows keep
	// their match keys (indexed) and content hashes; inactive people are
	// found by when they were deactivated; the marks of the last full
	// reconcile. Rows written before keep hash 0 and empty keys until the
	// first full reconcile fills them in (backfillMirror).
	`
ALTER TABLE runs ADD COLUMN reconcile TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN full_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE mirror_users ADD COLUMN email_key TEXT NOT NULL DEFAULT '';
ALTER TABLE mirror_users ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
ALTER TABLE mirror_users ADD COLUMN hash INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mirror_groups ADD COLUMN hash INTEGER NOT NULL DEFAULT 0;
CREATE INDEX mirror_users_email_key ON mirror_users(email_key);
CREATE INDEX mirror_users_name_key ON mirror_users(name_key);
CREATE INDEX people_deactivated ON people(deactivated_at) WHERE active = 0;
CREATE TABLE reconcile_marks (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	full_at    TIMESTAMP,
	rules_hash TEXT NOT NULL DEFAULT '',
	converged  INTEGER NOT NULL DEFAULT 0
);
`,
	// 4: the resources SCIM sources push (see scim.go): the resource as
	// pushed, the keys the IdPs look resources up by, group members.
	`
CREATE TABLE scim_resources (
	source      TEXT NOT NULL,
	type        TEXT NOT NULL,
	id          TEXT NOT NULL,
	-- lower-cased userName (users) or displayName (groups)
	name_key    TEXT NOT NULL,
	version     INTEGER NOT NULL,
	created_at  TIMESTAMP NOT NULL,
	modified_at TIMESTAMP NOT NULL,
	-- the resource as pushed, normalised, without id, meta and password
	body        TEXT NOT NULL,
	PRIMARY KEY (source, type, id)
);
CREATE UNIQUE INDEX scim_user_name ON scim_resources(source, name_key) WHERE type = 'User';
CREATE INDEX scim_name ON scim_resources(source, type, name_key);
CREATE INDEX scim_order ON scim_resources(source, type);
CREATE TABLE scim_keys (
	source TEXT NOT NULL,
	type   TEXT NOT NULL,
	attr   TEXT NOT NULL,
	key    TEXT NOT NULL,
	id     TEXT NOT NULL,
	PRIMARY KEY (source, type, attr, key, id)
) WITHOUT ROWID;
CREATE INDEX scim_keys_id ON scim_keys(source, type, id);
CREATE TABLE scim_members (
	source   TEXT NOT NULL,
	group_id TEXT NOT NULL,
	member   TEXT NOT NULL,
	PRIMARY KEY (source, group_id, member)
) WITHOUT ROWID;
CREATE INDEX scim_members_member ON scim_members(source, member);
`,
	// 5: the change log of pushed sources (see scim.go): every accepted
	// push records the mirror rows it changed, in its transaction; the next
	// applied run reads them to reconcile incrementally and deletes them.
	`
CREATE TABLE mirror_changes (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	source TEXT NOT NULL,
	-- 'user' or 'group'
	kind   TEXT NOT NULL,
	id     TEXT NOT NULL
);
CREATE INDEX mirror_changes_source ON mirror_changes(source, seq);
`,
	// 6: the SCIM read view (scimread.go). touched_at is when a person's
	// groups or seats, or a group's members, last changed, stamped by the
	// commit that changes them (touched.go; it only moves forward);
	// meta.lastModified is the later of it and updated_at. Indexes for the
	// lookups applications make: userName and email case-insensitively, and
	// what changed since.
	`
ALTER TABLE people ADD COLUMN touched_at TIMESTAMP;
ALTER TABLE groups ADD COLUMN touched_at TIMESTAMP;
CREATE INDEX people_user_name_nocase ON people(user_name COLLATE NOCASE);
CREATE INDEX people_email_nocase ON people(email COLLATE NOCASE);
CREATE INDEX people_modified ON people(max(updated_at, coalesce(touched_at, updated_at)));
CREATE INDEX groups_modified ON groups(max(updated_at, coalesce(touched_at, updated_at)));
`,
	// 7: the raw attributes of a mirrored user that the rules read
	// (sources[].map, scope.when), as JSON text; '' when they read none.
	// Plain SQL, valid on SQLite and PostgreSQL.
	`
ALTER TABLE mirror_users ADD COLUMN attrs TEXT NOT NULL DEFAULT '';
`,
	// 8: what an incremental run counts, kept by the commit that changes
	// it (counts.go) instead of counted every run: 'active' (the active
	// people) and 'pool:<name>' (the seats held in a pool). Filled once
	// from the rows of the directory as it is.
	`
CREATE TABLE directory_counts (
	name TEXT PRIMARY KEY,
	n    INTEGER NOT NULL
);
INSERT INTO directory_counts (name, n) SELECT 'active', count(*) FROM people WHERE active = 1;
INSERT INTO directory_counts (name, n)
	SELECT 'pool:' || pool, count(*) FROM assignments WHERE revoked_at IS NULL GROUP BY pool;
`,
}
