-- Who created each model: the served user whose CREATE MODEL made it (NULL when it was
-- created locally, or before owners were recorded). A trainer may replace only the
-- models they own; an admin any.
ALTER TABLE models ADD COLUMN owner TEXT;
