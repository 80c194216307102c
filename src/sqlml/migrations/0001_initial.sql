-- The model catalog: models, their versions (with lineage), artifacts and aliases.
CREATE TABLE models (
    name         TEXT PRIMARY KEY,
    task         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    last_version INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL
);

CREATE TABLE model_versions (
    model            TEXT NOT NULL REFERENCES models (name) ON DELETE CASCADE,
    version          INTEGER NOT NULL,
    algorithm        TEXT NOT NULL,
    task             TEXT NOT NULL,
    target           TEXT NOT NULL,
    classes          TEXT NOT NULL,
    features         TEXT NOT NULL,
    hyperparameters  TEXT NOT NULL,
    metrics          TEXT NOT NULL,
    training_sql     TEXT NOT NULL,
    row_count        INTEGER NOT NULL,
    data_fingerprint TEXT NOT NULL,
    library_versions TEXT NOT NULL,
    artifact_format  TEXT NOT NULL,
    sha256           TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (model, version)
);

CREATE TABLE model_artifacts (
    model   TEXT NOT NULL,
    version INTEGER NOT NULL,
    data    BLOB NOT NULL,
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
