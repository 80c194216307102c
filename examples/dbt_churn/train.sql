-- Trains the models the dbt project scores with, from the `customers` seed:
--   dbt seed
--   sqlml sql --database target/dbt_churn.duckdb "$(cat train.sql)"
-- Running it again starts the models' version history afresh.
DROP MODEL IF EXISTS churn;
CREATE MODEL churn
  OPTIONS (task = 'classification', algorithm = 'logistic', target = 'churned',
           exclude = 'customer_id')
  AS SELECT * FROM customers;
CREATE OR REPLACE MODEL churn
  OPTIONS (task = 'classification', target = 'churned', exclude = 'customer_id',
           min_data_in_leaf = 5)
  AS SELECT * FROM customers;
DEPLOY MODEL churn VERSION 2 AS prod;
DROP MODEL IF EXISTS spend;
CREATE MODEL spend
  OPTIONS (task = 'regression', target = 'monthly_spend', exclude = ('customer_id', 'churned'),
           min_data_in_leaf = 5)
  AS SELECT * FROM customers WHERE monthly_spend IS NOT NULL
