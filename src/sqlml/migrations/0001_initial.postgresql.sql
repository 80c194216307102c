-- The model catalog: models, their versions (with lineage), artifacts and aliases.
CREATE TABLE models (
    name         TEXT PRIMARY KEY,
    task         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    last_version INTEGER NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE model_versions (
    model            TEXT NOT NULL REFERENCES models (name) ON DELETE CASCADE,
    version          INTEGER NOT NULL,
    algorithm        TEXT NOT NULL,
    task             TEXT NOT NULL,
    target           TEXT NOT NULL,
    classes          JSONB NOT NULL,
    features         JSONB NOT NULL,
    hyperparameters  JSONB NOT NULL,
    metrics          JSONB NOT NULL,
    training_sql     TEXT NOT NULL,
    row_count        BIGINT NOT NULL,
    data_fingerprint TEXT NOT NULL,
    library_versions JSONB NOT NULL,
    artifact_format  TEXT NOT NULL,
    sha256           TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (model, version)
);

CREATE TABLE model_artifacts (
    model   TEXT NOT NULL,
    version INTEGER NOT NULL,
    data    BYTEA NOT NULL,
    PRIMARY KEY (model, version),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version) ON DELETE CASCADE
);

CREATE TABLE model_aliases (
    model   TEXT NOT NULL,
    alias   TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version) ON DELETE CASCADE
);
