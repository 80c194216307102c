-- Models compiled to SQL (`sqlml compile --save`): one expression per version, dialect and
-- kind, so tools that only speak SQL (a dbt-postgres macro) can inline them.
CREATE TABLE model_compiled (
    model      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    dialect    TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('predict', 'proba')),
    expression TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (model, version, dialect, kind),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version) ON DELETE CASCADE
);
