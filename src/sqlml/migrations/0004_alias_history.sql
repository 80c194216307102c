-- Where each alias pointed, deployment by deployment (DEPLOY MODEL ... ROLLBACK moves an
-- alias back to the version it pointed at before). A dropped version leaves the history
-- with its rows. The aliases that exist now start their history at their current version.
CREATE TABLE model_alias_history (
    model   TEXT NOT NULL,
    alias   TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (model, alias, seq),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version) ON DELETE CASCADE
);

INSERT INTO model_alias_history (model, alias, seq, version)
SELECT model, alias, 1, version FROM model_aliases;
