-- Trains the churn model from the `customers` seed, read from PostgreSQL (pg.customers):
--   sqlml --catalog "$URI" --postgres "$URI" sql "$(cat train.sql)"
-- Running it again starts the model's version history afresh. 200 rows need few, small
-- trees; fewer trees also make a shorter compiled expression.
DROP MODEL IF EXISTS churn;
CREATE MODEL churn
  OPTIONS (task = 'classification', target = 'churned', exclude = 'customer_id',
           num_iterations = 30, num_leaves = 8, min_data_in_leaf = 5)
  AS SELECT * FROM pg.customers
